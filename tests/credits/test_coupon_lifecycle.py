"""Coupons through the HTTP API: applied-coupon overrides of amount, percentage and
frequency billed by real bill runs (exact amounts), update rules, deactivate, delete,
list filters, and tenant isolation of each operation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.credits.conftest import bill, invoices_of
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger


def month(api: ApiClient, start: str, end: str) -> None:
    """Close one month: the clock just after its end, then its bill run."""
    api.clock.set(datetime.fromisoformat(end).replace(hour=9, tzinfo=UTC))
    bill(api, start, end)


def flat_plan(api: ApiClient) -> None:
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "flat",
            "name": "Flat",
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "100",
            "charges": [],
        },
    )


def subscribe(api: ApiClient, customer: str) -> None:
    api.customer(customer)
    api.ok(
        "POST",
        "/subscriptions",
        json={"customerId": customer, "planCode": "flat", "startDate": "2026-10-01"},
    )


def discounts(invoices: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(invoice["discountTotal"], invoice["total"]) for invoice in invoices]


def test_overrides_are_billed_exactly_and_only_for_their_customer(api: ApiClient) -> None:
    flat_plan(api)
    for customer in ("acme", "bob", "carol"):
        subscribe(api, customer)
    api.ok(
        "POST",
        "/coupons",
        json={"code": "tenoff", "type": "percentage", "percentage": "10", "frequency": "once"},
    )
    api.ok(
        "POST",
        "/coupons",
        json={"code": "five", "type": "fixed", "amount": "5", "currency": "USD"},
    )
    # acme: 25 % for two invoices instead of 10 % once; carol: the coupon's own terms.
    acme = api.ok(
        "POST",
        "/customers/acme/coupons",
        json={
            "couponCode": "tenoff",
            "percentageRate": "25",
            "frequency": "recurring",
            "frequencyDuration": 2,
        },
    )
    assert (acme["percentage"], acme["frequency"], acme["frequencyDuration"]) == (
        "25",
        "recurring",
        2,
    )
    assert acme["periodsRemaining"] == 2
    carol = api.ok("POST", "/applied-coupons", json={"customerId": "carol", "couponCode": "tenoff"})
    assert (carol["customerId"], carol["percentage"], carol["frequency"]) == ("carol", "10", "once")
    # bob: 7.50 off every invoice instead of 5.00 once.
    bob = api.ok(
        "POST",
        "/customers/bob/coupons",
        json={"couponCode": "five", "amount": "7.50", "frequency": "forever"},
    )
    assert (bob["amount"], bob["amountRemaining"], bob["frequency"]) == ("7.5", "7.5", "forever")

    month(api, "2026-10-01", "2026-11-01")
    month(api, "2026-11-01", "2026-12-01")
    month(api, "2026-12-01", "2027-01-01")
    assert discounts(invoices_of(api, "acme")) == [
        ("25.00", "75.00"),
        ("25.00", "75.00"),
        ("0.00", "100.00"),
    ]
    assert discounts(invoices_of(api, "bob")) == [("7.50", "92.50")] * 3
    assert discounts(invoices_of(api, "carol")) == [
        ("10.00", "90.00"),
        ("0.00", "100.00"),
        ("0.00", "100.00"),
    ]
    [discount] = [ln for ln in invoices_of(api, "acme")[0]["lines"] if ln["type"] == "DISCOUNT"]
    assert discount["amount"] == "-25.00"
    applied = {
        (a["customerId"], a["couponCode"]): (a["status"], a["periodsRemaining"])
        for a in api.ok("GET", "/applied-coupons")["data"]
    }
    assert applied == {
        ("acme", "tenoff"): ("terminated", 0),
        ("carol", "tenoff"): ("terminated", None),
        ("bob", "five"): ("active", None),
    }


def test_deactivate_stops_new_applications_and_applied_ones_go_on(api: ApiClient) -> None:
    flat_plan(api)
    subscribe(api, "acme")
    subscribe(api, "bob")
    api.ok(
        "POST",
        "/coupons",
        json={
            "code": "ten",
            "type": "fixed",
            "amount": "10",
            "currency": "USD",
            "frequency": "forever",
        },
    )
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "ten"})
    shown = api.ok("POST", "/coupons/ten/deactivate")
    assert shown["status"] == "inactive"
    error = api.error("POST", "/customers/bob/coupons", 409, json={"couponCode": "ten"})
    assert error["code"] == "coupon_inactive"
    assert [
        c["code"] for c in api.ok("GET", "/coupons", params={"status": "inactive"})["data"]
    ] == ["ten"]
    assert api.ok("GET", "/coupons", params={"status": "active"})["data"] == []
    month(api, "2026-10-01", "2026-11-01")
    assert discounts(invoices_of(api, "acme")) == [("10.00", "90.00")]
    assert discounts(invoices_of(api, "bob")) == [("0.00", "100.00")]
    # PATCH {status: active} takes new customers again.
    assert api.ok("PATCH", "/coupons/ten", json={"status": "active"})["status"] == "active"
    api.ok("POST", "/customers/bob/coupons", json={"couponCode": "ten"})


def test_delete_terminates_applications_and_keeps_history(api: ApiClient) -> None:
    flat_plan(api)
    subscribe(api, "acme")
    api.ok(
        "POST",
        "/coupons",
        json={
            "code": "ten",
            "type": "fixed",
            "amount": "10",
            "currency": "USD",
            "frequency": "forever",
        },
    )
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "ten"})
    month(api, "2026-10-01", "2026-11-01")
    response = api.delete("/coupons/ten")
    assert response.status_code == 204
    api.error("GET", "/coupons/ten", 404)
    assert api.ok("GET", "/coupons")["data"] == []
    api.error("PATCH", "/coupons/ten", 404, json={"name": "x"})
    api.error("DELETE", "/coupons/ten", 404)
    # Its code stays taken; the application is terminated and shown in the history.
    again = {"code": "ten", "type": "percentage", "percentage": "5"}
    assert api.error("POST", "/coupons", 409, json=again)["code"] == "duplicate"
    [applied] = api.ok("GET", "/customers/acme/coupons")["data"]
    assert (applied["couponCode"], applied["status"]) == ("ten", "terminated")
    month(api, "2026-11-01", "2026-12-01")
    assert discounts(invoices_of(api, "acme")) == [("10.00", "90.00"), ("0.00", "100.00")]
    # A refreshed draft gives its use back, but never revives a deleted coupon.
    october = invoices_of(api, "acme")[0]
    refreshed = api.ok("POST", f"/invoices/{october['id']}/refresh")
    assert (refreshed["discountTotal"], refreshed["total"]) == ("0.00", "100.00")
    [applied] = api.ok("GET", "/customers/acme/coupons")["data"]
    assert applied["status"] == "terminated"


def test_update_rules(api: ApiClient) -> None:
    api.customer("acme")
    api.ok(
        "POST",
        "/coupons",
        json={"code": "pct", "type": "percentage", "percentage": "10", "name": "Ten"},
    )
    # Never applied: every term may change, under the rules of creation.
    changed = api.ok(
        "PATCH",
        "/coupons/pct",
        json={
            "name": "Fifteen",
            "description": "Launch offer",
            "percentageRate": "15",
            "frequency": "recurring",
            "frequencyDuration": 3,
            "expiresAt": "2027-01-01",
            "planCodes": ["flat"],
        },
    )
    assert (changed["name"], changed["description"], changed["percentage"]) == (
        "Fifteen",
        "Launch offer",
        "15",
    )
    assert (changed["frequency"], changed["frequencyDuration"]) == ("recurring", 3)
    assert changed["expiresAt"] == "2027-01-02T00:00:00Z"  # a date: through its end
    assert changed["appliesTo"] == {"planCodes": ["flat"], "metricCodes": []}
    for body, status in [
        ({"percentage": "0"}, 422),
        ({"percentage": "101"}, 422),
        ({"amount": "5"}, 422),
        ({"frequency": "recurring", "frequencyDuration": None}, 422),
        ({"name": ""}, 422),
        ({"status": "archived"}, 422),
        ({"currency": "EUR"}, 422),
    ]:
        api.error("PATCH", "/coupons/pct", status, json=body)
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "pct"})
    # Applied: its terms are frozen; name, description, expiry and status are not.
    for body in ({"percentage": "20"}, {"frequency": "forever"}, {"planCodes": []}):
        error = api.error("PATCH", "/coupons/pct", 409, json=body)
        assert error["code"] == "coupon_applied"
    assert api.ok("PATCH", "/coupons/pct", json={"expiresAt": None})["expiresAt"] is None
    assert api.ok("PATCH", "/coupons/pct", json={"description": None})["description"] is None
    assert api.ok("GET", "/coupons/pct")["percentage"] == "15"


def test_override_validation_and_expiry(api: ApiClient) -> None:
    api.customer("acme")
    api.ok("POST", "/coupons", json={"code": "pct", "type": "percentage", "percentage": "10"})
    api.ok(
        "POST", "/coupons", json={"code": "fix", "type": "fixed", "amount": "5", "currency": "USD"}
    )
    for body in [
        {"couponCode": "pct", "amount": "5"},
        {"couponCode": "fix", "percentage": "5"},
        {"couponCode": "pct", "percentage": "0"},
        {"couponCode": "pct", "percentage": "150"},
        {"couponCode": "fix", "amount": "0"},
        {"couponCode": "pct", "frequency": "recurring"},
        {"couponCode": "pct", "frequency": "weekly"},
        {"couponCode": "pct", "frequencyDuration": 0},
    ]:
        api.error("POST", "/customers/acme/coupons", 422, json=body)
    assert api.ok("GET", "/applied-coupons")["data"] == []
    api.ok(
        "POST",
        "/coupons",
        json={
            "code": "old",
            "type": "percentage",
            "percentage": "10",
            "expiresAt": "2026-11-01T09:00:00Z",
        },
    )
    error = api.error("POST", "/customers/acme/coupons", 409, json={"couponCode": "old"})
    assert error["code"] == "coupon_expired"
    api.clock.set(datetime(2026, 10, 31, tzinfo=UTC))
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "old"})
    api.error("POST", "/applied-coupons", 404, json={"customerId": "nobody", "couponCode": "pct"})


def test_list_filters(api: ApiClient) -> None:
    api.customer("acme")
    api.customer("bob")
    api.ok("POST", "/coupons", json={"code": "p1", "type": "percentage", "percentage": "10"})
    api.ok(
        "POST",
        "/coupons",
        json={
            "code": "f1",
            "type": "fixed",
            "amount": "5",
            "currency": "USD",
            "frequency": "forever",
        },
    )
    api.ok("POST", "/coupons/p1/deactivate")

    def codes(**params: str) -> list[str]:
        return [c["code"] for c in api.ok("GET", "/coupons", params=params)["data"]]

    assert codes() == ["f1", "p1"]
    assert codes(type="fixed") == ["f1"]
    assert codes(type="percentage", status="inactive") == ["p1"]
    assert codes(frequency="forever") == ["f1"]
    api.error("GET", "/coupons", 422, params={"status": "gone"})
    api.ok("PATCH", "/coupons/p1", json={"status": "active"})
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "p1"})
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "f1"})
    removed = api.ok("POST", "/customers/bob/coupons", json={"couponCode": "f1"})
    api.delete(f"/customers/bob/coupons/{removed['id']}")

    def applied(**params: str) -> list[tuple[str, str, str]]:
        data = api.ok("GET", "/applied-coupons", params=params)["data"]
        return sorted((a["customerId"], a["couponCode"], a["status"]) for a in data)

    assert applied(customerId="acme") == [("acme", "f1", "active"), ("acme", "p1", "active")]
    assert applied(couponCode="f1") == [("acme", "f1", "active"), ("bob", "f1", "removed")]
    assert applied(status="removed") == [("bob", "f1", "removed")]
    assert applied(customerId="nobody") == []
    api.error("GET", "/applied-coupons", 422, params={"status": "gone"})


def test_tenant_isolation(api: ApiClient, other: ApiClient) -> None:
    api.customer("acme")
    api.ok("POST", "/coupons", json={"code": "pct", "type": "percentage", "percentage": "10"})
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "pct"})
    other.customer("acme")
    other.error("PATCH", "/coupons/pct", 404, json={"name": "mine"})
    other.error("POST", "/coupons/pct/deactivate", 404)
    other.error("DELETE", "/coupons/pct", 404)
    other.error("POST", "/applied-coupons", 422, json={"customerId": "acme", "couponCode": "pct"})
    assert other.ok("GET", "/applied-coupons")["data"] == []
    assert other.ok("GET", "/coupons", params={"status": "active"})["data"] == []
    shown = api.ok("GET", "/coupons/pct")
    assert (shown["name"], shown["status"]) == ("pct", "active")
    assert len(api.ok("GET", "/applied-coupons")["data"]) == 1
