"""PATCH /plans/{code} with and without cascade, and DELETE (archive), through the HTTP
API on SQLite and PostgreSQL, with bill runs across the change and exact amounts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

OCT_10 = datetime(2026, 10, 10, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
OCTOBER = ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
NOVEMBER = ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")


def catalog(api: ApiClient) -> dict[str, Any]:
    api.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "sum"})
    plan: dict[str, Any] = api.ok("POST", "/plans", json={
        "code": "basic", "name": "Basic", "currency": "USD", "interval": "monthly",
        "baseFee": "10", "charges": [{"metric": "calls", "model": "per_unit",
                                      "properties": {"unitAmount": "0.5"}}],
    })  # fmt: skip
    return plan


def subscribe(
    api: ApiClient, customer: str, start: str = "2026-10-01T00:00:00Z", **extra: Any
) -> str:
    api.customer(customer)
    body = {"customerId": customer, "planCode": "basic", "startDate": start, **extra}
    sub_id = str(api.ok("POST", "/subscriptions", json=body)["id"])
    # 30 calls in October and 40 in November, for every customer.
    api.runtime.usage.add(customer, "calls", OCT_10, "30", OCT_10)
    api.runtime.usage.add(customer, "calls", NOV_10, "40", NOV_10)
    return sub_id


def bill(api: ApiClient, period: tuple[str, str], at: str) -> None:
    api.clock.set(datetime.fromisoformat(at))
    run = api.ok("POST", "/bill-runs", json={"periodStart": period[0], "periodEnd": period[1]})
    for _ in range(400):
        status = api.ok("GET", f"/bill-runs/{run['id']}")
        if status["status"] in ("completed", "failed"):
            assert status["status"] == "completed" and status["failed"] == 0, status
            return
        time.sleep(0.05)
    raise AssertionError("the bill run did not finish")


def billed(api: ApiClient, customer: str) -> dict[str, list[tuple[str, str, str]]]:
    """Per period start: (type, unit amount, amount) of each line, and the total."""
    out = {}
    for summary in api.ok("GET", "/invoices", params={"customerId": customer})["data"]:
        invoice = api.ok("GET", f"/invoices/{summary['id']}")
        lines = [(line["type"], line["unitAmount"], line["amount"]) for line in invoice["lines"]]
        out[invoice["periodStart"][:7]] = [*sorted(lines), ("TOTAL", "", invoice["total"])]
    return out


OLD_OCT = [("CHARGE", "10", "10.00"), ("USAGE_FEE", "0.5", "15.00"), ("TOTAL", "", "25.00")]
OLD_NOV = [("CHARGE", "10", "10.00"), ("USAGE_FEE", "0.5", "20.00"), ("TOTAL", "", "30.00")]
NEW_NOV = [("CHARGE", "20", "20.00"), ("USAGE_FEE", "1", "40.00"), ("TOTAL", "", "60.00")]

NEW_PRICES = {
    "baseFee": "20",
    "charges": [{"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "1"}}],
}


def test_patch_changes_what_it_sends_and_shows_it(api: ApiClient) -> None:
    created = catalog(api)
    charge_id = created["charges"][0]["id"]
    patched = api.ok("PATCH", "/plans/basic", json={
        "name": "Basic 2", "amount": "12.5", "trialDays": 3, "minimumCommitment": "5",
        "charges": [{"id": charge_id, "metric": "calls", "model": "per_unit",
                     "properties": {"unitAmount": "0.25"}}],
        "fixedCharges": [{"name": "Support", "amount": "3"}],
        "usageThresholds": [{"amount": "100"}],
    })  # fmt: skip
    assert (patched["name"], patched["baseFee"], patched["trialDays"]) == ("Basic 2", "12.5", 3)
    assert patched["minimumCommitment"] == "5"
    assert patched["charges"][0]["id"] == charge_id
    assert patched["charges"][0]["properties"] == {"unitAmount": "0.25"}
    assert [f["name"] for f in patched["fixedCharges"]] == ["Support"]
    assert patched["usageThresholds"] == [{"amount": "100", "recurring": False}]
    assert (patched["currency"], patched["interval"], patched["description"]) == (
        "USD", "monthly", None,
    )  # fmt: skip
    assert api.ok("GET", "/plans/basic") == patched
    cleared = api.ok("PATCH", "/plans/basic", json={"minimumCommitment": None})
    assert cleared["minimumCommitment"] is None and cleared["baseFee"] == "12.5"


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "EUR"},
        {"interval": "yearly"},
        {"code": "other"},
        {"baseFee": "-1"},
        {"baseFee": "1", "amount": "2"},
        {"trialDays": -1},
        {"minimumCommitment": "10", "maximumSpend": "5"},
        {"charges": [{"metric": "nope", "model": "per_unit", "properties": {"unitAmount": "1"}}]},
        {"charges": [{"metric": "calls", "model": "per_unit", "properties": {}}]},
        {"entitlements": [{"feature": "nope"}]},
        {"usageThresholds": [{"amount": "0"}]},
    ],
)
def test_bad_patches_are_422_and_change_nothing(api: ApiClient, body: dict[str, Any]) -> None:
    before = catalog(api)
    api.error("PATCH", "/plans/basic", 422, json=body)
    assert api.ok("GET", "/plans/basic") == before


def test_without_cascade_subscriptions_keep_the_plan_as_it_was(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme")
    api.ok("PATCH", "/plans/basic", json=NEW_PRICES)
    # Subscribed after the change: the new definition.
    subscribe(api, "late", start="2026-11-01T00:00:00Z")
    bill(api, OCTOBER, "2026-11-01T00:05:00+00:00")
    bill(api, NOVEMBER, "2026-12-01T00:05:00+00:00")
    assert billed(api, "acme") == {"2026-10": OLD_OCT, "2026-11": OLD_NOV}
    assert billed(api, "late") == {"2026-11": NEW_NOV}


def test_with_cascade_subscriptions_without_overrides_follow_next_period(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme")
    subscribe(api, "custom", overrides={"baseFee": "7"})
    api.ok("PATCH", "/plans/basic", json={**NEW_PRICES, "cascade": True})
    bill(api, OCTOBER, "2026-11-01T00:05:00+00:00")
    bill(api, NOVEMBER, "2026-12-01T00:05:00+00:00")
    # October is billed as it started; November on the new prices.
    assert billed(api, "acme") == {"2026-10": OLD_OCT, "2026-11": NEW_NOV}
    # A subscription with overrides keeps the old definition (with its override).
    seven = [("CHARGE", "7", "7.00"), ("USAGE_FEE", "0.5", "15.00"), ("TOTAL", "", "22.00")]
    seven_nov = [("CHARGE", "7", "7.00"), ("USAGE_FEE", "0.5", "20.00"), ("TOTAL", "", "27.00")]
    assert billed(api, "custom") == {"2026-10": seven, "2026-11": seven_nov}


def test_a_second_cascade_in_the_same_period_keeps_the_period_as_it_started(
    api: ApiClient,
) -> None:
    catalog(api)
    subscribe(api, "acme")
    api.ok("PATCH", "/plans/basic", json={"baseFee": "15", "cascade": True})
    api.ok("PATCH", "/plans/basic", json={**NEW_PRICES, "cascade": True})
    bill(api, OCTOBER, "2026-11-01T00:05:00+00:00")
    bill(api, NOVEMBER, "2026-12-01T00:05:00+00:00")
    assert billed(api, "acme") == {"2026-10": OLD_OCT, "2026-11": NEW_NOV}


def test_a_no_cascade_patch_after_a_cascade_keeps_what_followed(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme")
    # Follows from November (base 20, unit 1) ...
    api.ok("PATCH", "/plans/basic", json={**NEW_PRICES, "cascade": True})
    # ... and keeps that for good when the plan changes again without cascade.
    api.ok("PATCH", "/plans/basic", json={"baseFee": "99"})
    bill(api, OCTOBER, "2026-11-01T00:05:00+00:00")
    bill(api, NOVEMBER, "2026-12-01T00:05:00+00:00")
    assert billed(api, "acme") == {"2026-10": OLD_OCT, "2026-11": NEW_NOV}


def test_an_entitlement_or_name_only_patch_pins_nothing_it_need_not(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme")
    api.ok("POST", "/features", json={"code": "sso", "name": "SSO"})
    patched = api.ok("PATCH", "/plans/basic", json={"entitlements": [{"feature": "sso"}]})
    assert [e["feature"] for e in patched["entitlements"]] == ["sso"]
    assert [
        e["feature"] for e in api.ok("GET", "/customers/acme/entitlements")["entitlements"]
    ] == ["sso"]
    # Entitlements are not billed: the subscription still follows the plan row.
    api.ok("PATCH", "/plans/basic", json={**NEW_PRICES, "cascade": True})
    bill(api, OCTOBER, "2026-11-01T00:05:00+00:00")
    bill(api, NOVEMBER, "2026-12-01T00:05:00+00:00")
    assert billed(api, "acme") == {"2026-10": OLD_OCT, "2026-11": NEW_NOV}


def test_archive_hides_the_plan_refuses_new_subscriptions_and_bills_the_rest(
    api: ApiClient,
) -> None:
    catalog(api)
    subscribe(api, "acme")
    api.ok("POST", "/plans", json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
    })  # fmt: skip
    assert api.delete("/plans/basic").status_code == 204
    assert [p["code"] for p in api.ok("GET", "/plans")["data"]] == ["pro"]
    archived = api.ok("GET", "/plans", params={"archived": "true"})["data"]
    assert [(p["code"], p["archivedAt"]) for p in archived] == [("basic", "2026-10-15T12:00:00Z")]
    assert api.ok("GET", "/plans/basic")["archivedAt"] == "2026-10-15T12:00:00Z"
    assert api.ok("GET", "/plans/pro")["archivedAt"] is None
    api.customer("beta")
    error = api.error("POST", "/subscriptions", 409, json={
        "customerId": "beta", "planCode": "basic", "startDate": "2026-10-01T00:00:00Z",
    })  # fmt: skip
    assert error["code"] == "plan_archived"
    assert api.error("DELETE", "/plans/basic", 409)["code"] == "plan_archived"
    assert api.error("PATCH", "/plans/basic", 409, json={"baseFee": "1"})["code"] == "plan_archived"
    api.error("DELETE", "/plans/nope", 404)
    # The customer portal offers it no more either.
    token = api.ok("POST", "/customers/acme/portal-url")["token"]
    offered = api.get("/account/plans", headers={"Authorization": f"Bearer {token}"})
    assert [p["code"] for p in offered.json()["data"]] == ["pro"]
    bill(api, OCTOBER, "2026-11-01T00:05:00+00:00")
    assert billed(api, "acme") == {"2026-10": OLD_OCT}


def test_a_metric_an_earlier_version_charges_cannot_be_deleted(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme")
    api.ok("PATCH", "/plans/basic", json={"charges": []})
    assert "earlier versions" in api.error("DELETE", "/metrics/calls", 409)["message"]


def test_tenants_cannot_patch_or_archive_each_others_plans(
    api: ApiClient, other: ApiClient
) -> None:
    before = catalog(api)
    other.error("PATCH", "/plans/basic", 404, json={"baseFee": "1"})
    other.error("DELETE", "/plans/basic", 404)
    assert other.ok("GET", "/plans", params={"archived": "true"})["data"] == []
    assert api.ok("GET", "/plans/basic") == before
    api.ok("DELETE", "/plans/basic")
    assert other.ok("GET", "/plans", params={"archived": "true"})["data"] == []
