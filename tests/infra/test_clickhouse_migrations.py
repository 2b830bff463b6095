"""ClickHouse schema migrations (infra/clickhouse/*.sql): idempotent, re-runnable
statement by statement, and producing the tables the pipeline relies on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from infra.migrate import _split_sql, clickhouse_migrations, migrate_clickhouse

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def fresh_db(clickhouse: Any) -> Iterator[str]:
    """A database of its own on the session's chDB engine, dropped afterwards."""
    name = f"mig_{os.urandom(4).hex()}"
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


def _versions(client: Any, database: str) -> list[tuple[int, int]]:
    # No FINAL: a second INSERT of a version would show up as a count of 2.
    rows = client.query(
        f"SELECT version, count() FROM {database}.schema_migrations GROUP BY version "
        "ORDER BY version"
    ).result_rows
    return [(int(v), int(n)) for v, n in rows]


def _tables(client: Any, database: str) -> dict[str, tuple[str, str, str]]:
    rows = client.query(
        "SELECT name, engine, sorting_key, create_table_query FROM system.tables "
        "WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return {name: (engine, key, ddl) for name, engine, key, ddl in rows}


def test_migrate_from_empty_then_again_is_a_no_op(clickhouse: Any, fresh_db: str) -> None:
    files = clickhouse_migrations()
    applied = migrate_clickhouse(clickhouse, fresh_db)
    assert applied == [f"{number:04d}_{name}" for number, name, _ in files]
    assert _versions(clickhouse, fresh_db) == [(number, 1) for number, _, _ in files]

    assert migrate_clickhouse(clickhouse, fresh_db) == []
    assert _versions(clickhouse, fresh_db) == [(number, 1) for number, _, _ in files]


def test_rerunning_every_statement_is_harmless(clickhouse: Any, fresh_db: str) -> None:
    """A migration interrupted after some statements is simply applied again."""
    migrate_clickhouse(clickhouse, fresh_db)
    before = _tables(clickhouse, fresh_db)
    for _, _, sql in clickhouse_migrations():
        for statement in _split_sql(sql.replace("{db}", fresh_db)):
            clickhouse.command(statement)
    assert _tables(clickhouse, fresh_db) == before


def test_session_database_is_fully_migrated(clickhouse: Any) -> None:
    from tests.conftest import CH_DATABASE

    files = clickhouse_migrations()
    assert migrate_clickhouse(clickhouse, CH_DATABASE) == []
    assert _versions(clickhouse, CH_DATABASE) == [(number, 1) for number, _, _ in files]


def test_tables_and_engines(clickhouse: Any, fresh_db: str) -> None:
    migrate_clickhouse(clickhouse, fresh_db)
    tables = _tables(clickhouse, fresh_db)

    engine, key, ddl = tables["usage_events"]
    assert engine == "ReplacingMergeTree"
    assert key == "tenant_id, event_id"
    assert "ReplacingMergeTree(version)" in ddl
    assert "PARTITION BY" not in ddl  # duplicates must share a partition to collapse

    engine, key, _ = tables["usage_hourly"]
    assert engine == "AggregatingMergeTree"
    assert key.startswith("tenant_id")

    engine, _, ddl = tables["usage_hourly_mv"]
    assert engine == "MaterializedView"
    assert f"TO {fresh_db}.usage_hourly" in ddl
    assert f"FROM {fresh_db}.usage_events" in ddl

    assert tables["rejected_events"][0] == "MergeTree"
    assert tables["schema_migrations"][0] == "ReplacingMergeTree"


def test_usage_events_dedupe_and_the_view_rolls_up(clickhouse: Any, fresh_db: str) -> None:
    migrate_clickhouse(clickhouse, fresh_db)
    columns = ["tenant_id", "event_id", "customer_id", "metric", "ts", "value", "properties",
               "ingested_at", "version"]  # fmt: skip
    insert = (
        f"INSERT INTO {fresh_db}.usage_events ({', '.join(columns)}) VALUES "
        "('t1', 'e1', 'acme', 'calls', '2026-10-01 10:05:00', 1, map(), now64(6), 3), "
        "('t1', 'e1', 'acme', 'calls', '2026-10-01 10:06:00', 5, map(), now64(6), 2), "
        "('t1', 'e2', 'acme', 'calls', '2026-10-01 10:30:00', 2, map(), now64(6), 1), "
        "('t2', 'e1', 'acme', 'calls', '2026-10-01 10:05:00', 7, map(), now64(6), 1)"
    )
    clickhouse.command(insert)
    rows = clickhouse.query(
        f"SELECT tenant_id, event_id, toString(value) FROM {fresh_db}.usage_events FINAL "
        "ORDER BY tenant_id, event_id"
    ).result_rows
    # One row per (tenant, event id); the highest version (the first copy accepted) wins.
    assert [tuple(r) for r in rows] == [("t1", "e1", "1"), ("t1", "e2", "2"), ("t2", "e1", "7")]

    hourly = clickhouse.query(
        f"SELECT tenant_id, uniqExactMerge(events) FROM {fresh_db}.usage_hourly "
        "GROUP BY tenant_id ORDER BY tenant_id"
    ).result_rows
    assert [tuple(r) for r in hourly] == [("t1", 2), ("t2", 1)]
