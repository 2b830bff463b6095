"""A running Meterline for end-to-end tests: the API on a free port over a `Runtime`."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CH_DATABASE = "meterline"


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


def stack_settings(
    data_dir: Path, kafka_bootstrap: str, chdb_dir: Path, label: str = "", **extra: Any
) -> Any:
    """Settings of a test stack: own topics and group (a shared external broker stays
    clean), the session's chDB path, a SQLite ledger in `data_dir`."""
    from meterline.settings import Settings

    suffix = f"{label}-{os.urandom(3).hex()}" if label else os.urandom(3).hex()
    return Settings(
        data_dir=data_dir,
        kafka_bootstrap=kafka_bootstrap,
        clickhouse_dsn=f"chdb://{chdb_dir}",
        clickhouse_database=CH_DATABASE,
        database_url=f"sqlite:///{data_dir / 'ledger.sqlite3'}",
        events_topic=f"usage-events-{suffix}",
        dlq_topic=f"usage-events-dlq-{suffix}",
        alerts_topic=f"usage-alerts-{suffix}",
        quota_topic=f"quota-exceeded-{suffix}",
        billing_events_topic=f"billing-events-{suffix}",
        consumer_group=f"meterline-test-{suffix}",
        sink_batch_seconds=0.05,
        **extra,
    )


@contextmanager
def serving(runtime: Any, data_dir: Path) -> Iterator[Stack]:
    """The API over `runtime` on a free local port until the block ends; closes the runtime."""
    import uvicorn

    from api.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive(), "the API server died while starting"
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    try:
        yield Stack(f"http://127.0.0.1:{port}", runtime, data_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        runtime.close()
