"""The ledger database of a test: a clean PostgreSQL schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def empty_postgres_schema(url: str) -> None:
    """Drop every table of the database's public schema (its test database only)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# -- a fresh, migrated ledger per test, without running every migration per test -----
#
# Running all the migrations costs 1–2 s a database, and most tests want a fresh
# ledger: that was a large part of the suite's time. The migrations run once per
# process instead; each test then gets a copy of that state.

_sqlite_template: dict[str, Path] = {}
_postgres_state: dict[str, tuple[str, frozenset[str]]] = {}


def fresh_sqlite_ledger(path: Path, template_dir: Path) -> str:
    """A migrated SQLite ledger at `path`: a copy (SQLite's backup API, consistent under
    WAL) of one database migrated once per process in `template_dir`."""
    from infra.migrate import migrate_ledger

    template = _sqlite_template.get("ledger")
    if template is None:
        template = template_dir / "ledger-template.sqlite3"
        migrate_ledger(f"sqlite:///{template}")
        _sqlite_template["ledger"] = template
    source = sqlite3.connect(template)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return f"sqlite:///{path}"


def fresh_postgres_ledger(url: str) -> str:
    """The test database at `url`, migrated and empty. After one migration per process
    every later call truncates the tables (identities restarted) when the schema is
    still exactly what the migrations made (same tables, same head); a test that
    dropped, downgraded or added tables gets the schema rebuilt from nothing."""
    from sqlalchemy import create_engine, inspect, text

    from infra.migrate import migrate_ledger

    known = _postgres_state.get(url)
    if known is not None:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                tables = frozenset(inspect(conn).get_table_names())
                head, expected = known
                versions: list[str] = []
                if "alembic_version" in tables:
                    versions = list(
                        conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                    )
                if tables == expected and versions == [head]:
                    names = ", ".join(f'"{t}"' for t in sorted(tables - {"alembic_version"}))
                    conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                    return url
        finally:
            engine.dispose()
    empty_postgres_schema(url)
    migrate_ledger(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = frozenset(inspect(conn).get_table_names())
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    _postgres_state[url] = (head, tables)
    return url
