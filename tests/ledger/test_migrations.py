"""Ledger migrations: complete, idempotent, and in step with invoicing.models.

Runs on SQLite and (with METERLINE_TEST_POSTGRES_URL) on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect, text

from infra.migrate import alembic_config, migrate_ledger
from invoicing.db import make_engine
from invoicing.models import Base
from tests.helpers.ledger import empty_postgres_schema

pytestmark = pytest.mark.ledger

ALEMBIC_TABLE = "alembic_version"


@pytest.fixture
def empty_url(ledger_backend: str, tmp_path: Path) -> str:
    """A ledger database with no tables at all (not migrated)."""
    if ledger_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    url = os.environ["METERLINE_TEST_POSTGRES_URL"]
    empty_postgres_schema(url)
    return url


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    eng = make_engine(empty_url)
    yield eng
    eng.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _diff(engine: Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_migrate_creates_every_model_table(empty_url: str, engine: Engine) -> None:
    assert _tables(engine) == set()
    migrate_ledger(empty_url)

    engine.dispose()  # forget any cached schema of the empty database
    inspector = inspect(engine)
    models = set(Base.metadata.tables)
    assert _tables(engine) - {ALEMBIC_TABLE} == models
    for name, table in Base.metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == set(table.columns.keys()), name
        pk = set(inspector.get_pk_constraint(name)["constrained_columns"])
        assert pk == {c.name for c in table.primary_key.columns}, name


def test_migrate_is_idempotent(empty_url: str, engine: Engine) -> None:
    migrate_ledger(empty_url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES ('ten_x', 'x', :t)"),
            {"t": "2026-10-01 00:00:00"},
        )
        before = conn.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalars().all()

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    # migrate_ledger builds its own engine: listen on every engine of the process.
    event.listen(Engine, "before_cursor_execute", record)
    try:
        migrate_ledger(empty_url)
    finally:
        event.remove(Engine, "before_cursor_execute", record)

    changes = [
        s
        for s in statements
        if s.lstrip().split(None, 1)[0].upper() in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE"}
    ]
    assert changes == [], "a second migrate_ledger changed the schema"
    with engine.connect() as conn:
        after = conn.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalars().all()
        kept = conn.execute(text("SELECT name FROM tenants WHERE id = 'ten_x'")).scalar_one()
    assert after == before and len(after) == 1
    assert kept == "x"


def test_database_is_at_the_single_head(empty_url: str, engine: Engine) -> None:
    # Two engineers adding a migration on the same parent would leave two heads.
    heads = ScriptDirectory.from_config(alembic_config(empty_url)).get_heads()
    assert len(heads) == 1, f"the ledger migrations have several heads: {heads}"
    migrate_ledger(empty_url)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    assert tuple(current) == tuple(heads)


def test_models_and_migrations_agree(empty_url: str, engine: Engine) -> None:
    """A model change without a migration (or the reverse) shows up here."""
    migrate_ledger(empty_url)
    assert _diff(engine, Base.metadata) == []


def test_the_comparison_would_see_a_model_change(empty_url: str, engine: Engine) -> None:
    # Guard for the test above: a drifted copy of the models must produce differences.
    migrate_ledger(empty_url)
    drifted = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["invoices"].append_column(sa.Column("po_number", sa.String(40)))
    sa.Table("refunds", drifted, sa.Column("id", sa.String(40), primary_key=True))
    diff = _diff(engine, drifted)
    ops = {(d[0], getattr(d[-1], "name", None)) for d in diff if isinstance(d, tuple)}
    assert ("add_column", "po_number") in ops
    assert ("add_table", "refunds") in ops
