"""Raw bulk writes to the ledger for the benchmarks: COPY on PostgreSQL, executemany on SQLite.

The bill-run benchmark uses them twice: to load its customers and subscriptions fast
(setup, not timed), and for the floor, a plain bulk insert of the rows a bill run wrote,
with none of the application's work around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Table, create_engine, text
from sqlalchemy.engine import make_url


def ledger_schema(url: str) -> str:
    """The schema the ledger lives in: the first of the URL's search_path, else public.

    e.g. `…/db?options=-csearch_path%3Dbench_quick` keeps a quick run apart from another
    run's ledger in the same database.
    """
    options = str(make_url(url).query.get("options") or "")
    found = re.search(r"search_path\s*=\s*([A-Za-z_][A-Za-z0-9_]*)", options)
    return found.group(1) if found else "public"


def clean_postgres(url: str) -> None:
    """Drop and recreate the ledger's schema: the benchmark starts from an empty ledger."""
    schema = ledger_schema(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()


def native_rows(
    engine: Engine, table: Table, rows: Iterable[Mapping[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows as the driver takes them (the columns' own bind processing),
    so a raw insert stores exactly what an SQLAlchemy insert would."""
    dialect = engine.dialect
    columns = [c.name for c in table.columns]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns]
    out = [
        tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, (row.get(name) for name in columns), strict=True)
        )
        for row in rows
    ]
    return columns, out


def raw_insert(
    connection: Any, dialect: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert rows in one transaction on a raw DBAPI connection; returns how many.

    PostgreSQL: one COPY through psycopg's `cursor.copy`. SQLite: one executemany.
    """
    names = ", ".join(f'"{c}"' for c in columns)
    count = 0
    if dialect == "postgresql":
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        connection.commit()
        return count
    marks = ", ".join("?" for _ in columns)
    batch = list(rows)
    cursor = connection.cursor()
    try:
        # The engine's SQLite connections are in autocommit mode (SQLAlchemy issues BEGIN
        # itself): without an explicit transaction every row would be its own commit.
        cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()
    return len(batch)


def driver_connection(engine: Engine) -> tuple[Any, Any]:
    """(pooled connection to close, the driver's own connection: sqlite3 or psycopg)."""
    pooled = engine.raw_connection()
    return pooled, pooled.driver_connection
