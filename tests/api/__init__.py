"""API tests in process: the FastAPI app over a real, migrated ledger database.

The runtime here holds only what catalog, customer, credit and invoice routes use (the
ledger, a frozen clock, settings); routes that need Kafka or ClickHouse are tested in
tests/e2e against the live stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.clock import FrozenClock
from invoicing.db import make_engine, make_sessionmaker
from invoicing.secrets import SecretBox
from invoicing.tax.service import TaxService
from invoicing.tenants import create_tenant

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class ApiSettings:
    max_events_per_request: int = 10_000
    events_topic: str = "usage-events"
    invoice_due_days: int = 30
    # Seals payment-provider and ERP secrets at rest (a fixed test key).
    secrets: SecretBox = field(default_factory=lambda: SecretBox.from_passphrase("api tests"))


@dataclass
class LedgerRuntime:
    """An `api.ports.ApiRuntime` over the ledger alone."""

    sessions: sessionmaker[Session]
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(NOW))
    settings: ApiSettings = field(default_factory=ApiSettings)
    tax: TaxService = field(default_factory=TaxService)
    usage: Any = None
    clickhouse: Any = None
    bootstrap: str | None = None
    producer: Any = None
    stream_stats: Any = None
    billing_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1)
    )
    background: set[Any] = field(default_factory=set)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    async def start(self, *, api: bool = True, worker: bool = True) -> None:
        return None

    async def stop(self) -> None:
        return None

    def close(self) -> None:
        self.billing_executor.shutdown()


@contextmanager
def api_client(url: str) -> Iterator[tuple[TestClient, LedgerRuntime]]:
    """A client authenticated as a fresh tenant, and the runtime behind the app."""
    from api.app import create_app

    engine = make_engine(url)
    runtime = LedgerRuntime(make_sessionmaker(engine))
    try:
        with runtime.session() as session:
            creds = create_tenant(session, "api-tests")
        headers = {"Authorization": f"Bearer {creds.api_key}", "X-Tenant-Id": creds.tenant_id}
        with TestClient(create_app(runtime), headers=headers) as client:
            client.base_url = client.base_url.join("/api/v1")
            yield client, runtime
    finally:
        runtime.close()
        engine.dispose()
