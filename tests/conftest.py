"""Shared fixtures: one real Kafka broker and one chDB engine per session.

chDB allows one engine path per process, so every test that touches ClickHouse uses
the session's path (`clickhouse`, `stack`) and isolates itself by tenant id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterline.clickhouse import connect_and_migrate

pytest_plugins = ["tests.kafka_plugin"]

CH_DATABASE = "meterline"


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
def ledger_url(ledger_backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated ledger database (SQLite file or a clean PostgreSQL schema)."""
    from sqlalchemy import create_engine, text

    from infra.migrate import migrate_ledger

    if ledger_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        migrate_ledger(url)
        yield url
        return
    url = os.environ["METERLINE_TEST_POSTGRES_URL"]
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate_ledger(url)
    yield url


@dataclass
class Stack:
    """A running Meterline (API + stream worker) on real Kafka, chDB and SQLite."""

    base_url: str
    runtime: Any
    data_dir: Path

    def tenant(self, name: str = "test") -> TenantClient:
        from invoicing.tenants import create_tenant

        with self.runtime.session() as session:
            creds = create_tenant(session, name)
        return TenantClient(self, creds.tenant_id, creds.api_key)


class TenantClient(httpx.Client):
    def __init__(self, stack: Stack, tenant_id: str, api_key: str) -> None:
        super().__init__(
            base_url=f"{stack.base_url}/api/v1",
            headers={"Authorization": f"Bearer {api_key}", "X-Tenant-Id": tenant_id},
            timeout=60,
        )
        self.stack = stack
        self.tenant_id = tenant_id
        self.api_key = api_key

    def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send and insist on a 2xx; returns the JSON body."""
        response = self.request(method, url, **kwargs)
        assert response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def wait_events(self, count: int, timeout: float = 60) -> None:
        """Wait until this tenant has `count` distinct events in ClickHouse."""
        usage = self.stack.runtime.usage
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            seen = usage.event_count(self.tenant_id)
            if seen >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"only {seen} of {count} events reached ClickHouse")

    def bill(self, start: str, end: str, timeout: float = 120) -> dict[str, Any]:
        run = self.ok("POST", "/bill-runs", json={"periodStart": start, "periodEnd": end})
        deadline = time.monotonic() + timeout
        while run["status"] in ("pending", "running"):
            assert time.monotonic() < deadline, f"bill run still {run['status']}"
            time.sleep(0.05)
            run = self.ok("GET", f"/bill-runs/{run['id']}")
        return dict(run)
