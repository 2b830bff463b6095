"""A subscription's own charges through the HTTP API (SQLite and PostgreSQL, events in
the session's ClickHouse engine): overrides.addCharges, removeCharges and per-charge
filters, billed by a bill run next to a subscription of the same plan without them, a
draft refresh, the usage read-out, quotas, PATCH, the refusals, the list filter, the
plan cascade and tenant isolation (docs/subscription-lifecycle.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from invoicing.quotas import QuotaWatch
from tests.charge_overrides.conftest import send
from tests.helpers.ledger_api import ApiClient
from tests.subscriptions.conftest import bill

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]

OCTOBER = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
EU, US = {"region": "eu"}, {"region": "us"}
GB = {"metric": "gb", "model": "per_unit", "properties": {"unitAmount": "3"}, "hardCap": "5"}
OWN = {
    "removeCharges": ["storage"],
    "charges": {"calls": {"filters": {"region": ["eu"]}}},
    "addCharges": [GB],
}


def catalog(api: ApiClient) -> dict[str, Any]:
    """calls and storage on the plan (10 a month); gb only on subscriptions' own charges."""
    for code in ("calls", "storage", "gb"):
        api.ok("POST", "/metrics", json={"code": code, "name": code, "aggregation": "sum"})
    plan: dict[str, Any] = api.ok("POST", "/plans", json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly", "baseFee": "10",
        "charges": [
            {"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "0.5"}},
            {"metric": "storage", "model": "per_unit", "properties": {"unitAmount": "2"}},
        ],
    })  # fmt: skip
    return plan


def subscribe(api: ApiClient, customer: str, overrides: dict[str, Any] | None = None) -> Any:
    api.customer(customer)
    body: dict[str, Any] = {"customerId": customer, "planCode": "pro",
                            "startDate": "2026-10-01T00:00:00Z"}  # fmt: skip
    if overrides is not None:
        body["overrides"] = overrides
    return api.ok("POST", "/subscriptions", json=body)


def usage(api: ApiClient, clickhouse: Any, customer: str) -> None:
    """calls: 10 in the EU, 20 in the US; storage 5; gb 2."""
    send(api, clickhouse, customer, "calls", ("c1", "4", EU), ("c2", "20", US), ("c3", "6", EU))
    send(api, clickhouse, customer, "storage", ("s1", "5", {}))
    send(api, clickhouse, customer, "gb", ("g1", "2", {}))


def invoice_of(api: ApiClient, customer: str) -> dict[str, Any]:
    (summary,) = api.ok("GET", "/invoices", params={"customerId": customer})["data"]
    invoice: dict[str, Any] = api.ok("GET", f"/invoices/{summary['id']}")
    return invoice


def lines(invoice: dict[str, Any]) -> list[tuple[str, str | None, str, str, str]]:
    return sorted(
        (ln["type"], ln["metric"], ln["quantity"], ln["unitAmount"], ln["amount"])
        for ln in invoice["lines"]
    )


def readout(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((m["metric"], m["quantity"], m["amount"]) for m in body["metrics"])


OWN_LINES = [
    ("CHARGE", None, "1", "10", "10.00"),
    ("USAGE_FEE", "calls", "10", "0.5", "5.00"),  # the EU calls only
    ("USAGE_FEE", "gb", "2", "3", "6.00"),  # the added charge; storage is removed
]
PLAN_LINES = [
    ("CHARGE", None, "1", "10", "10.00"),
    ("USAGE_FEE", "calls", "30", "0.5", "15.00"),
    ("USAGE_FEE", "storage", "5", "2", "10.00"),
]


def test_a_bill_run_bills_each_subscription_its_own_charges(
    api: ApiClient, clickhouse: Any
) -> None:
    catalog(api)
    own = subscribe(api, "acme", OWN)
    subscribe(api, "beta")
    usage(api, clickhouse, "acme")
    usage(api, clickhouse, "beta")
    # What the subscription shows: the added charge with its generated id.
    added = own["overrides"]["addCharges"][0]
    assert added["id"].startswith("ch_") and added["metric"] == "gb"
    assert (added["hardCap"], added["filters"], added["payInAdvance"]) == ("5", {}, False)
    assert own["overrides"]["removeCharges"] == ["storage"]
    # The current period's read-outs, before the bill run.
    assert readout(api.ok("GET", "/customers/acme/usage")) == [
        ("calls", "10", "5.00"), ("gb", "2", "6.00"),
    ]  # fmt: skip
    assert readout(api.ok("GET", "/customers/beta/usage")) == [
        ("calls", "30", "15.00"), ("storage", "5", "10.00"),
    ]  # fmt: skip
    quota = api.ok("GET", "/customers/acme/quota/gb")
    assert (quota["used"], quota["cap"], quota["remaining"]) == ("2", "5", "3")
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 2
    acme, beta = invoice_of(api, "acme"), invoice_of(api, "beta")
    assert lines(acme) == OWN_LINES and acme["total"] == "21.00"
    assert lines(beta) == PLAN_LINES and beta["total"] == "35.00"
    gb_line = next(ln for ln in acme["lines"] if ln["metric"] == "gb")
    assert gb_line["chargeId"] == added["id"]
    # The read-out of the billed period says what the invoices say.
    assert readout(api.ok("GET", "/customers/acme/usage", params=OCTOBER)) == [
        ("calls", "10", "5.00"), ("gb", "2", "6.00"),
    ]  # fmt: skip
    # A draft refresh bills the same charges: a later EU call counts, a US one does not.
    send(api, clickhouse, "acme", "calls", ("c4", "2", EU), ("c5", "100", US))
    refreshed = api.ok("POST", f"/invoices/{acme['id']}/refresh")
    assert lines(refreshed) == [
        ("CHARGE", None, "1", "10", "10.00"),
        ("USAGE_FEE", "calls", "12", "0.5", "6.00"),
        ("USAGE_FEE", "gb", "2", "3", "6.00"),
    ]
    assert refreshed["total"] == "22.00"


def test_an_added_charge_may_bill_a_plan_metric_under_other_filters(
    api: ApiClient, clickhouse: Any
) -> None:
    catalog(api)
    us_calls = {"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "1"},
                "filters": {"region": ["us"]}}  # fmt: skip
    subscribe(api, "acme", {"charges": {"calls": {"filters": {"region": ["eu"]}}},
                            "addCharges": [us_calls]})  # fmt: skip
    usage(api, clickhouse, "acme")
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    bill(api, "2026-10-01", "2026-10-31")
    assert lines(invoice_of(api, "acme")) == [
        ("CHARGE", None, "1", "10", "10.00"),
        ("USAGE_FEE", "calls", "10", "0.5", "5.00"),
        ("USAGE_FEE", "calls", "20", "1", "20.00"),
        ("USAGE_FEE", "storage", "5", "2", "10.00"),
    ]


def test_filters_override_of_nothing_bills_every_event(api: ApiClient, clickhouse: Any) -> None:
    api.ok("POST", "/metrics", json={"code": "calls", "name": "calls", "aggregation": "sum"})
    api.ok("POST", "/plans", json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
        "charges": [{"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "1"},
                     "filters": {"region": ["eu"]}}],
    })  # fmt: skip
    subscribe(api, "acme", {"charges": {"calls": {"filters": {}}}})
    subscribe(api, "beta")
    for customer in ("acme", "beta"):
        send(api, clickhouse, customer, "calls", ("c1", "4", EU), ("c2", "20", US))
    assert readout(api.ok("GET", "/customers/acme/usage")) == [("calls", "24", "24.00")]
    assert readout(api.ok("GET", "/customers/beta/usage")) == [("calls", "4", "4.00")]


def test_patch_changes_the_charges_billed_from_then_on(api: ApiClient, clickhouse: Any) -> None:
    catalog(api)
    sub = subscribe(api, "acme")
    usage(api, clickhouse, "acme")
    patched = api.ok("PATCH", f"/subscriptions/{sub['id']}", json={"overrides": OWN})
    added_id = patched["overrides"]["addCharges"][0]["id"]
    assert readout(api.ok("GET", "/customers/acme/usage")) == [
        ("calls", "10", "5.00"), ("gb", "2", "6.00"),
    ]  # fmt: skip
    # Sent back with its id, the added charge keeps it; its price changes.
    again = {**OWN, "addCharges": [{**GB, "id": added_id, "properties": {"unitAmount": "4"}}]}
    patched = api.ok("PATCH", f"/subscriptions/{sub['id']}", json={"overrides": again})
    assert patched["overrides"]["addCharges"][0]["id"] == added_id
    assert readout(api.ok("GET", "/customers/acme/usage")) == [
        ("calls", "10", "5.00"), ("gb", "2", "8.00"),
    ]  # fmt: skip
    # Overrides replaced by none: the plan's charges again.
    api.ok("PATCH", f"/subscriptions/{sub['id']}", json={"overrides": {}})
    assert readout(api.ok("GET", "/customers/acme/usage")) == [
        ("calls", "30", "15.00"), ("storage", "5", "10.00"),
    ]  # fmt: skip


BAD = [
    ({"removeCharges": ["nope"]}, "removeCharges[0]"),
    ({"removeCharges": "storage"}, "removeCharges"),
    ({"removeCharges": [1]}, "removeCharges"),
    ({"removeCharges": ["storage"], "charges": {"storage": {"hardCap": "1"}}}, "removed"),
    ({"charges": {"calls": {"filters": {"region": []}}}}, "filters.region"),
    ({"charges": {"calls": {"filters": {"region": "eu"}}}}, "filters.region"),
    ({"charges": {"calls": {"filters": ["eu"]}}}, "filters"),
    ({"charges": {"calls": {"filters": {"region": [1]}}}}, "filters.region"),
    ({"addCharges": {"metric": "gb"}}, "addCharges"),
    ({"addCharges": ["gb"]}, "addCharges[0]"),
    ({"addCharges": [{**GB, "metric": "nope"}]}, "addCharges[0].metric"),
    ({"addCharges": [{**GB, "model": "magic"}]}, "addCharges[0].model"),
    ({"addCharges": [{**GB, "properties": {}}]}, "addCharges[0].properties"),
    ({"addCharges": [{**GB, "hardCap": "-1"}]}, "addCharges[0].hardCap"),
    ({"addCharges": [{**GB, "hardCap": "lots"}]}, "addCharges[0].hardCap"),
    ({"addCharges": [{**GB, "price": "1"}]}, "price"),
    ({"addCharges": [{"model": "per_unit", "properties": {"unitAmount": "1"}}]}, "metric"),
    ({"addCharges": [{**GB, "filters": {"region": []}}]}, "addCharges[0].filters.region"),
    ({"addCharges": [{**GB, "metric": "calls"}]}, "already billed"),
    ({"addCharges": [GB, GB]}, "addCharges[1]"),
    ({"addCharges": [{**GB, "id": "x"}, {**GB, "id": "x", "filters": {"a": ["b"]}}]}, "id"),
    ({"addCharges": [{**GB, "rollover": {"expiryPeriods": 0}}]}, "expiryPeriods"),
]


@pytest.mark.parametrize(("overrides", "says"), BAD)
def test_bad_own_charges_are_422_on_create_and_patch(
    api: ApiClient, overrides: dict[str, Any], says: str
) -> None:
    catalog(api)
    api.customer("acme")
    body = {"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01T00:00:00Z"}
    error = api.error("POST", "/subscriptions", 422, json={**body, "overrides": overrides})
    assert says in error["message"], error
    assert api.ok("GET", "/subscriptions")["data"] == []
    sub = api.ok("POST", "/subscriptions", json=body)
    error = api.error("PATCH", f"/subscriptions/{sub['id']}", 422, json={"overrides": overrides})
    assert says in error["message"], error
    assert api.ok("GET", f"/subscriptions/{sub['id']}")["overrides"] == {}


def test_a_plan_charge_may_be_removed_by_id_and_the_id_of_another_plan_is_unknown(
    api: ApiClient, clickhouse: Any
) -> None:
    plan = catalog(api)
    storage_id = next(c["id"] for c in plan["charges"] if c["metric"] == "storage")
    subscribe(api, "acme", {"removeCharges": [storage_id, "calls"]})
    usage(api, clickhouse, "acme")
    assert readout(api.ok("GET", "/customers/acme/usage")) == []
    api.customer("beta")
    error = api.error("POST", "/subscriptions", 422, json={
        "customerId": "beta", "planCode": "pro", "startDate": "2026-10-01T00:00:00Z",
        "overrides": {"removeCharges": ["ch_someone_else"]},
    })  # fmt: skip
    assert "ch_someone_else" in error["message"]


def test_own_charges_count_as_overridden_and_the_cascade_passes_them_by(
    api: ApiClient, clickhouse: Any
) -> None:
    catalog(api)
    added = subscribe(api, "acme", {"addCharges": [GB]})["id"]
    removed = subscribe(api, "beta", {"removeCharges": ["storage"]})["id"]
    plain = subscribe(api, "carl")["id"]
    listed = api.ok("GET", "/subscriptions", params={"overridden": "true"})["data"]
    assert sorted(s["id"] for s in listed) == sorted([added, removed])
    listed = api.ok("GET", "/subscriptions", params={"overridden": "false"})["data"]
    assert [s["id"] for s in listed] == [plain]
    api.ok("PATCH", "/plans/pro", json={"baseFee": "99", "cascade": True})
    for customer in ("acme", "beta", "carl"):
        send(api, clickhouse, customer, "calls", ("c1", "2", EU))
    api.clock.set(datetime(2026, 12, 1, 1, tzinfo=UTC))
    bill(api, "2026-11-01", "2026-11-30")
    fees = {
        c: next(ln["amount"] for ln in invoice_of(api, c)["lines"] if ln["type"] == "CHARGE")
        for c in ("acme", "beta", "carl")
    }
    assert fees == {"acme": "10.00", "beta": "10.00", "carl": "99.00"}


def test_the_stream_knows_an_added_charges_cap(api: ApiClient) -> None:
    catalog(api)
    watch = QuotaWatch(api.runtime.sessions, api.runtime.usage)
    assert watch.capped_metrics(api.tenant_id) == frozenset()
    subscribe(api, "acme", {"addCharges": [GB]})
    fresh = QuotaWatch(api.runtime.sessions, api.runtime.usage)  # no cached answer
    assert fresh.capped_metrics(api.tenant_id) == frozenset({"gb"})


def test_a_metric_an_added_charge_bills_is_not_deleted(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme", {"addCharges": [GB]})
    error = api.error("DELETE", "/metrics/gb", 409)
    assert "added by subscriptions" in error["message"]


def test_the_portal_plan_shows_the_subscriptions_own_charges(api: ApiClient) -> None:
    catalog(api)
    subscribe(api, "acme", OWN)
    response = api.post("/customers/acme/portal-url")
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    body = api.get("/account/subscription", headers={"Authorization": f"Bearer {token}",
                                                      "X-Tenant-Id": ""}).json()  # fmt: skip
    charges = {c["metric"]: c for c in body["plan"]["charges"]}
    assert sorted(charges) == ["calls", "gb"]
    assert charges["calls"]["filters"] == {"region": ["eu"]}
    assert charges["gb"]["hardCap"] == "5"


def test_added_charges_cannot_name_another_tenants_metric(api: ApiClient, other: ApiClient) -> None:
    catalog(api)
    other.ok("POST", "/metrics", json={"code": "theirs", "name": "T", "aggregation": "sum"})
    theirs = {**GB, "metric": "theirs"}
    api.customer("acme")
    error = api.error("POST", "/subscriptions", 422, json={
        "customerId": "acme", "planCode": "pro", "startDate": "2026-10-01T00:00:00Z",
        "overrides": {"addCharges": [theirs]},
    })  # fmt: skip
    assert "theirs" in error["message"]
    # And another tenant's key does not reach the subscription, nor change it.
    sub = api.ok("POST", "/subscriptions", json={
        "customerId": "acme", "planCode": "pro", "startDate": "2026-10-01T00:00:00Z",
    })  # fmt: skip
    other.error("PATCH", f"/subscriptions/{sub['id']}", 404, json={"overrides": OWN})
    assert api.ok("GET", f"/subscriptions/{sub['id']}")["overrides"] == {}
