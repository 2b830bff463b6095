"""GET /subscriptions filters (planCode, status, overridden) and the pending status of a
subscription that has not started (SQLite and PostgreSQL), tenant by tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.subscriptions.conftest import bill, invoices_of, lines, plan, subscribe

pytestmark = pytest.mark.ledger


def ids(api: ApiClient, **params: str) -> set[str]:
    return {s["id"] for s in api.ok("GET", "/subscriptions", params=params)["data"]}


def test_filters_and_pending(api: ApiClient, ledger_url: str, tmp_path: Path) -> None:
    plan(api, "basic", "31")
    plan(api, "premium", "62")
    live = subscribe(api, "acme", "basic", "2026-10-01")
    later = subscribe(api, "beta", "basic", "2026-11-01")
    custom = subscribe(api, "gamma", "premium", "2026-10-01")
    api.ok("PATCH", f"/subscriptions/{custom}", json={"overrides": {"baseFee": "50"}})
    ended = subscribe(api, "delta", "premium", "2026-10-01")
    api.ok("POST", f"/subscriptions/{ended}/terminate", json={"finalInvoice": False})

    assert api.ok("GET", f"/subscriptions/{later}")["status"] == "pending"
    assert ids(api, planCode="basic") == {live, later}
    assert ids(api, planCode="premium", status="active") == {custom}
    assert ids(api, status="pending") == {later}
    assert ids(api, status="active") == {live, custom}
    assert ids(api, status="terminated") == {ended}
    assert ids(api, overridden="true") == {custom}
    assert ids(api, overridden="false") == {live, later, ended}
    assert ids(api, planCode="basic", customerId="beta") == {later}
    assert ids(api, planCode="nope") == set()
    bad = api.error("GET", "/subscriptions", 422, params={"status": "paused"})
    assert bad["code"] == "validation_error"

    # Pending until its start, then active; billed from its start only.
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert api.ok("GET", f"/subscriptions/{later}")["status"] == "active"
    assert ids(api, status="pending") == set()
    bill(api, "2026-10-01", "2026-10-31")
    assert invoices_of(api, later) == []
    api.clock.set(datetime(2026, 12, 1, 1, tzinfo=UTC))
    bill(api, "2026-11-01", "2026-11-30")
    (november,) = invoices_of(api, later)
    assert lines(november) == [("CHARGE", "31.00", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")]

    with ledger_api(ledger_url, tmp_path / "other") as other:
        assert other.ok("GET", "/subscriptions", params={"planCode": "basic"})["data"] == []


def test_a_scheduled_change_shows_its_successor_pending(api: ApiClient) -> None:
    plan(api, "basic", "31")
    plan(api, "premium", "62")
    old = subscribe(api, "acme", "basic", "2026-10-01")
    body = {"planCode": "premium", "at": "periodEnd"}
    new = api.ok("POST", f"/subscriptions/{old}/change-plan", json=body)["subscription"]
    assert (new["status"], new["startDate"]) == ("pending", "2026-11-01T00:00:00Z")
    assert ids(api, status="pending") == {new["id"]}
