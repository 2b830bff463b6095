"""`api` and `other`: two tenants' clients of the API over one fresh ledger, on each
backend; `bill`: a bill run through POST /bill-runs, waited for."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import ApiClient, ledger_api


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path) as client:
        client.runtime.usage = InMemoryUsage()  # bill runs read usage; these plans have none
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    """A second tenant of the same ledger (its own app and runtime)."""
    (tmp_path / "other").mkdir()
    with ledger_api(ledger_url, tmp_path / "other") as client:
        yield client


def bill(api: ApiClient, start: str, end: str) -> dict[str, Any]:
    """Run the bill run of [start, end) through the API and wait for it to end."""
    run = api.ok("POST", "/bill-runs", json={"periodStart": start, "periodEnd": end})
    deadline = time.monotonic() + 30
    while True:
        status: dict[str, Any] = api.ok("GET", f"/bill-runs/{run['id']}")
        if status["status"] in ("completed", "failed"):
            assert status["status"] == "completed", status
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def invoices_of(api: ApiClient, customer: str) -> list[dict[str, Any]]:
    """The customer's invoices, oldest first."""
    data: list[dict[str, Any]] = api.ok("GET", "/invoices", params={"customerId": customer})["data"]
    return sorted(data, key=lambda invoice: invoice["periodStart"])
