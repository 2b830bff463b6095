"""The ledger database of a test: a clean PostgreSQL schema."""

from __future__ import annotations


def empty_postgres_schema(url: str) -> None:
    """Drop every table of the database's public schema (its test database only)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
