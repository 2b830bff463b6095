"""ClickHouse migration files (infra/clickhouse/*.sql) as text: numbered uniquely, and
every statement guarded so that a migration can be re-run statement by statement.

Pure: the files are read, not applied (tests/infra/test_clickhouse_migrations.py
applies them to chDB).
"""

from __future__ import annotations

import re

import pytest

from infra.migrate import _split_sql, clickhouse_migrations


def test_migrations_are_numbered_uniquely() -> None:
    numbers = [number for number, _, _ in clickhouse_migrations()]
    assert numbers, "no ClickHouse migrations found"
    assert len(numbers) == len(set(numbers)), f"two files share a number: {numbers}"
    assert numbers == sorted(numbers)


def test_every_statement_is_if_not_exists() -> None:
    for number, name, sql in clickhouse_migrations():
        statements = _split_sql(sql)
        assert statements, f"{number:04d}_{name} has no statement"
        for statement in statements:
            flat = " ".join(statement.split()).upper()
            where = f"{number:04d}_{name}: {flat[:80]}"
            if flat.startswith("CREATE "):
                assert re.match(
                    r"CREATE (TABLE|MATERIALIZED VIEW|VIEW|DATABASE|DICTIONARY) IF NOT EXISTS ",
                    flat,
                ), where
            elif flat.startswith("ALTER TABLE "):
                # Every ADD clause of the ALTER must be guarded.
                adds = re.findall(
                    r"\bADD (COLUMN|INDEX|PROJECTION|CONSTRAINT)( IF NOT EXISTS)?", flat
                )
                assert adds, where
                assert all(guard for _, guard in adds), where
            else:
                pytest.fail(f"unexpected statement kind in {where}")
            assert "{db}." in statement or flat.startswith("CREATE DATABASE"), (
                f"{where}: tables must be qualified with {{db}}"
            )
