"""Shared fixtures: one real Kafka broker and one chDB engine per session (the live API
stack of the end-to-end tests is in tests/e2e/conftest.py).

chDB allows one engine path per process, so every test that touches ClickHouse uses
the session's path (`clickhouse`, `stack`) and isolates itself by tenant id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.clock import FrozenClock
from meterline.clickhouse import connect_and_migrate
from tests.helpers import guard
from tests.helpers.dates import at
from tests.helpers.ledger import fresh_postgres_ledger, fresh_sqlite_ledger
from tests.helpers.stack import CH_DATABASE, Stack, TenantClient

pytest_plugins = ["tests.kafka_plugin", "pytester"]

__all__ = ["CH_DATABASE", "Stack", "TenantClient"]


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def clickhouse(chdb_dir: Path) -> Any:
    """A migrated ClickHouse client on the session's in-process engine."""
    return connect_and_migrate(f"chdb://{chdb_dir}", CH_DATABASE)


def _ledger_urls(tmp: Path) -> list[tuple[str, str]]:
    urls = [("sqlite", f"sqlite:///{tmp / 'ledger.sqlite3'}")]
    if pg := os.environ.get("METERLINE_TEST_POSTGRES_URL"):
        urls.append(("postgres", pg))
    return urls


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Ledger tests run against SQLite always and PostgreSQL when CI provides one.
    if "ledger_backend" in metafunc.fixturenames:
        backends = ["sqlite"]
        if os.environ.get("METERLINE_TEST_POSTGRES_URL"):
            backends.append("postgres")
        metafunc.parametrize("ledger_backend", backends)


@pytest.fixture
def ledger_url(
    ledger_backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated ledger database (SQLite file or an emptied PostgreSQL schema);
    the migrations run once per process (tests/helpers/ledger.py)."""
    if ledger_backend == "sqlite":
        template_dir = tmp_path_factory.getbasetemp()
        yield fresh_sqlite_ledger(tmp_path / "ledger.sqlite3", template_dir)
        return
    yield fresh_postgres_ledger(os.environ["METERLINE_TEST_POSTGRES_URL"])


@pytest.fixture
def clock() -> FrozenClock:
    """A clock standing at 2026-11-03 00:00 UTC (after October's period) until moved."""
    return FrozenClock(at(2026, 11, 3))


# -- the guard: unmarked tests are pure ------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    guard.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # Before any fixture runs, so no broker starts for a test that would fail anyway.
    if found := guard.service_fixture(item):
        fixture, marker = found
        text = guard.message(item.nodeid, f"the `{fixture}` fixture", marker, verb="asks for")
        pytest.fail(text, pytrace=False)
    if guard.is_marked(item):
        return (yield)
    with guard.guarding(item.nodeid):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if guard.is_marked(item):
        return (yield)
    with guard.guarding(item.nodeid):
        return (yield)
