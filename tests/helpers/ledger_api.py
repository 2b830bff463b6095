"""The HTTP API over the ledger alone: no Kafka, no ClickHouse.

The invoice lifecycle (payments, credit notes, one-off invoices, documents, dunning)
needs only the ledger, so its API tests run in-process (FastAPI's TestClient) on
SQLite and PostgreSQL, with a clock the test moves. Usage-reading routes are not
served by this runtime (its usage store is absent).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from core.clock import FrozenClock
from invoicing.db import make_engine, make_sessionmaker, transaction
from invoicing.tenants import create_tenant

DEFAULT_NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def ledger_runtime(url: str, data_dir: Path, clock: FrozenClock, **settings: Any) -> Any:
    """A `meterline.runtime.Runtime` over the ledger at `url` whose start and stop touch
    neither Kafka nor ClickHouse."""
    from meterline.runtime import Runtime
    from meterline.settings import Settings

    class LedgerRuntime(Runtime):
        async def start(self, *, api: bool = True, worker: bool = True) -> None:
            return None

        async def stop(self) -> None:
            return None

    engine = make_engine(url)
    return LedgerRuntime(
        settings=Settings(data_dir=data_dir, database_url=url, **settings),
        engine=engine,
        sessions=make_sessionmaker(engine),
        clickhouse=None,
        usage=None,  # type: ignore[arg-type]
        clock=clock,
    )


class ApiClient(TestClient):
    """A tenant's client: `/api/v1` prefix and credentials on every call."""

    def __init__(self, app: Any, runtime: Any, tenant_id: str, api_key: str) -> None:
        super().__init__(
            app,
            base_url="http://testserver/api/v1",
            headers={"Authorization": f"Bearer {api_key}", "X-Tenant-Id": tenant_id},
        )
        self.runtime = runtime
        self.tenant_id = tenant_id
        self.api_key = api_key

    @property
    def clock(self) -> FrozenClock:
        clock: FrozenClock = self.runtime.clock
        return clock

    def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send and insist on a 2xx; returns the JSON body (None when empty)."""
        response = self.request(method, url, **kwargs)
        assert response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def error(self, method: str, url: str, status: int, **kwargs: Any) -> dict[str, Any]:
        """Send and insist on `status`; returns the `error` object of the body."""
        response = self.request(method, url, **kwargs)
        assert response.status_code == status, (
            f"{method} {url}: {response.status_code} {response.text}"
        )
        body: dict[str, Any] = response.json()["error"]
        return body

    def draft(self, customer: str = "acme", total: str = "100.00", *, index: int = 0) -> str:
        """A DRAFT invoice of `customer` (external id) with one CHARGE line of `total`,
        written to the ledger as a bill run would; returns its id."""
        from invoicing import catalog
        from tests.ledger import add_draft

        with transaction(self.runtime.sessions) as session:
            row = catalog.get_customer(session, self.tenant_id, customer)
            return add_draft(
                session, self.tenant_id, row.id, total, currency=row.currency, index=index
            ).id

    def open_invoice(
        self, customer: str = "acme", total: str = "100.00", index: int = 0
    ) -> dict[str, Any]:
        """A DRAFT finalized through the API (OPEN, numbered, due after the terms)."""
        invoice_id = self.draft(customer, total, index=index)
        result: dict[str, Any] = self.ok("POST", f"/invoices/{invoice_id}/finalize")
        return result

    def customer(self, external_id: str = "acme", **fields: Any) -> dict[str, Any]:
        body = {"externalId": external_id, "name": external_id.title(), "currency": "USD"}
        body.update(fields)
        result: dict[str, Any] = self.ok("POST", "/customers", json=body)
        return result


@contextmanager
def ledger_api(
    url: str, data_dir: Path, *, now: datetime = DEFAULT_NOW, **settings: Any
) -> Iterator[ApiClient]:
    """A new tenant's client of the API over the migrated ledger at `url`; the clock is
    frozen at `now` (move it with `client.clock.set(...)` / `.advance(...)`)."""
    from api.app import create_app

    runtime = ledger_runtime(url, data_dir, FrozenClock(now), **settings)
    try:
        with transaction(runtime.sessions) as session:
            creds = create_tenant(session, "test")
        app = create_app(runtime, with_worker=False)
        with ApiClient(app, runtime, creds.tenant_id, creds.api_key) as client:
            yield client
    finally:
        runtime.close()
