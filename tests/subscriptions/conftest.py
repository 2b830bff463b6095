"""A ledger API client whose usage store is an empty in-memory one (fixed-fee plans)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import ApiClient, ledger_api

OCT_15 = datetime(2026, 10, 15, tzinfo=UTC)


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=OCT_15) as client:
        client.runtime.usage = InMemoryUsage()
        yield client


def plan(api: ApiClient, code: str, base_fee: str, **extra: Any) -> None:
    body = {"code": code, "name": code.title(), "currency": "USD", "interval": "monthly"}
    api.ok("POST", "/plans", json={**body, "baseFee": base_fee, **extra})


def subscribe(api: ApiClient, customer: str, plan_code: str, start: str) -> str:
    if api.get(f"/customers/{customer}").status_code == 404:
        api.customer(customer)
    body = {"customerId": customer, "planCode": plan_code, "startDate": start}
    sub_id: str = api.ok("POST", "/subscriptions", json=body)["id"]
    return sub_id


def bill(api: ApiClient, start: str, end: str) -> dict[str, Any]:
    """A bill run through the API, waited for; returns its final state."""
    run = api.ok("POST", "/bill-runs", json={"periodStart": start, "periodEnd": end})
    deadline = time.monotonic() + 60
    while True:
        state: dict[str, Any] = api.ok("GET", f"/bill-runs/{run['id']}")
        if state["status"] in ("completed", "failed") or time.monotonic() > deadline:
            assert state["status"] == "completed" and state["failed"] == 0, state
            return state
        time.sleep(0.05)


def lines(invoice: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (ln["type"], ln["amount"], ln["periodStart"], ln["periodEnd"]) for ln in invoice["lines"]
    ]


def invoices_of(api: ApiClient, subscription_id: str) -> list[dict[str, Any]]:
    rows = api.ok("GET", "/invoices", params={"limit": 500})["data"]
    full = [api.ok("GET", f"/invoices/{r['id']}") for r in rows]
    mine = [i for i in full if i["subscriptionId"] == subscription_id]
    return sorted(mine, key=lambda i: i["periodStart"])
