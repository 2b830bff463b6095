"""The ledger database: engine, sessions and the exact money column type.

SQLite is the embedded default, PostgreSQL the production database; the same
models and migrations serve both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, Numeric, String, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from rating.money import EXACT


class Money(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC(38, 12) on PostgreSQL, canonical text on SQLite.

    SQLite has no exact decimal type (it would store a float), so there the value is
    kept as its decimal string and parsed back to Decimal on read.
    """

    impl = Numeric(38, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 12, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format(Decimal(value), "f")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        result = Decimal(value) if not isinstance(value, Decimal) else value
        # Strip the storage scale (NUMERIC(38,12) returns 12 decimals) but keep the
        # value exact; callers round for display with the currency rule.
        # Strip trailing zeros in the exact context: the default 28-digit one would round
        # a NUMERIC(38, 12) value of 26 integer digits.
        if result == result.to_integral_value(context=EXACT):
            return result.quantize(Decimal(1), context=EXACT)
        return result.normalize(context=EXACT)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def make_engine(url: str) -> Engine:
    """An engine for the ledger; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=json_dumps,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's own BEGIN take the write lock (see "begin" below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # BEGIN IMMEDIATE serializes writers up front, so two concurrent
            # transactions cannot both read a balance and then both write it.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, json_serializer=json_dumps)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits as one transaction, or rolls back on error."""
    with factory() as session, session.begin():
        yield session
