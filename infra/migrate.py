"""Numbered, idempotent schema migrations of the ledger (Alembic) and ClickHouse."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

LEDGER_DIR = Path(__file__).parent / "ledger"
CLICKHOUSE_DIR = Path(__file__).parent / "clickhouse"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(LEDGER_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return cfg


def migrate_ledger(database_url: str) -> None:
    """Bring the ledger schema to the newest revision (a no-op when it is there)."""
    command.upgrade(alembic_config(database_url), "head")


def clickhouse_migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every ClickHouse migration, in order."""
    found = []
    for path in sorted(CLICKHOUSE_DIR.glob("*.sql")):
        match = re.match(r"(\d+)_(.+)\.sql$", path.name)
        if match:
            found.append((int(match.group(1)), match.group(2), path.read_text()))
    return found


def migrate_clickhouse(client: Any, database: str) -> list[str]:
    """Apply the ClickHouse migrations not yet recorded; returns the names applied.

    Each file is one concern, its statements `IF NOT EXISTS`, so re-running one that
    was interrupted after some statements is harmless.
    """
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {
        int(row[0])
        for row in client.query(f"SELECT version FROM {database}.schema_migrations").result_rows
    }
    applied = []
    for number, name, sql in clickhouse_migrations():
        if number in done:
            continue
        for statement in _split_sql(sql.replace("{db}", database)):
            client.command(statement)
        client.command(
            f"INSERT INTO {database}.schema_migrations (version, name) VALUES ({number}, '{name}')"
        )
        applied.append(f"{number:04d}_{name}")
    return applied


def _split_sql(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
