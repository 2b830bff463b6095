"""Customers through the HTTP API: metadata (bounded, merged by PATCH), search and
filters on GET /customers, soft delete (subscriptions end, invoices stay, the externalId
stays taken), and tenant isolation of each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.credits.conftest import bill, invoices_of
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger


def ids(api: ApiClient, **params: Any) -> list[str]:
    data = api.ok("GET", "/customers", params=params)["data"]
    return [customer["externalId"] for customer in data]


def test_metadata_is_bounded_and_merged(api: ApiClient) -> None:
    created = api.customer("acme", metadata={"crm": "42", "tier": "gold"})
    assert created["metadata"] == {"crm": "42", "tier": "gold"}
    assert api.customer("bare")["metadata"] == {}
    patched = api.ok(
        "PATCH", "/customers/acme", json={"metadata": {"tier": "silver", "crm": None, "new": "1"}}
    )
    assert patched["metadata"] == {"tier": "silver", "new": "1"}
    assert api.ok("GET", "/customers/acme")["metadata"] == {"tier": "silver", "new": "1"}
    assert api.ok("PATCH", "/customers/acme", json={"name": "Acme Inc"})["metadata"] == {
        "tier": "silver",
        "new": "1",
    }
    too_many = {f"k{i}": "v" for i in range(51)}
    for metadata in (
        too_many,
        {"x" * 41: "v"},
        {"": "v"},
        {"a[b]": "v"},
        {"k": "v" * 501},
        {"k": 1},
        ["k"],
    ):
        api.error(
            "POST",
            "/customers",
            422,
            json={"externalId": "bad", "name": "Bad", "currency": "USD", "metadata": metadata},
        )
        api.error("PATCH", "/customers/acme", 422, json={"metadata": metadata})
    api.error("GET", "/customers/bad", 404)
    # 49 kept + 1 new = 50 is the most; one more is refused.
    fifty = api.ok("PATCH", "/customers/acme", json={"metadata": {f"k{i}": "v" for i in range(48)}})
    assert len(fifty["metadata"]) == 50
    api.error("PATCH", "/customers/acme", 422, json={"metadata": {"one_more": "v"}})


def test_search_and_filters(api: ApiClient) -> None:
    api.customer(
        "acme-fr",
        name="Acme SARL",
        email="billing@acme.fr",
        country="FR",
        currency="EUR",
        metadata={"tier": "gold", "crm": "7"},
    )
    api.customer(
        "bolt",
        name="Bolt GmbH",
        email="ap@bolt.de",
        country="DE",
        currency="EUR",
        metadata={"tier": "silver"},
    )
    api.customer("cosmo", name="Cosmo 100%_Inc", country="US", metadata={"tier": "gold"})
    assert ids(api) == ["cosmo", "bolt", "acme-fr"]
    assert ids(api, country="fr") == ["acme-fr"]
    assert ids(api, currency="eur") == ["bolt", "acme-fr"]
    assert ids(api, **{"metadata[tier]": "gold"}) == ["cosmo", "acme-fr"]
    assert ids(api, **{"metadata[tier]": "gold", "metadata[crm]": "7"}) == ["acme-fr"]
    assert ids(api, **{"metadata[nope]": "gold"}) == []
    assert ids(api, q="ACME") == ["acme-fr"]  # name, any case
    assert ids(api, q="bolt.de") == ["bolt"]  # email
    assert ids(api, q="osm") == ["cosmo"]  # externalId
    assert ids(api, q="100%_") == ["cosmo"]  # LIKE wildcards are plain characters
    assert ids(api, q="%") == ["cosmo"]
    assert ids(api, q="_") == ["cosmo"]
    assert ids(api, q="acme", currency="USD") == []
    assert ids(api, currency="EUR", **{"metadata[tier]": "silver"}) == ["bolt"]
    first = api.ok("GET", "/customers", params={"currency": "EUR", "limit": 1})
    rest = api.ok("GET", "/customers", params={"currency": "EUR", "cursor": first["nextCursor"]})
    assert [c["externalId"] for c in first["data"] + rest["data"]] == ["bolt", "acme-fr"]
    api.error("GET", "/customers", 422, params={"country": "France"})
    api.error("GET", "/customers", 422, params={"currency": "EURO"})


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


def test_delete_ends_subscriptions_and_keeps_invoices(api: ApiClient) -> None:
    flat_plan(api)
    api.customer("acme")
    api.customer("keep")
    for customer in ("acme", "keep"):
        api.ok(
            "POST",
            "/subscriptions",
            json={"customerId": customer, "planCode": "flat", "startDate": "2026-09-01"},
        )
    api.ok(
        "POST",
        "/coupons",
        json={"code": "pct", "type": "percentage", "percentage": "10", "frequency": "forever"},
    )
    api.ok("POST", "/customers/acme/coupons", json={"couponCode": "pct"})
    api.clock.set(datetime(2026, 10, 1, 9, tzinfo=UTC))
    bill(api, "2026-09-01", "2026-10-01")
    [september] = invoices_of(api, "acme")
    assert september["total"] == "90.00"
    api.ok("POST", f"/invoices/{september['id']}/finalize")

    api.clock.set(datetime(2026, 10, 16, tzinfo=UTC))
    assert api.delete("/customers/acme").status_code == 204
    api.error("GET", "/customers/acme", 404)
    api.error("PATCH", "/customers/acme", 404, json={"name": "x"})
    api.error("DELETE", "/customers/acme", 404)
    api.error("POST", "/customers/acme/coupons", 404, json={"couponCode": "pct"})
    api.error(
        "POST",
        "/subscriptions",
        404,
        json={"customerId": "acme", "planCode": "flat", "startDate": "2026-11-01"},
    )
    assert ids(api) == ["keep"]
    [subscription] = api.ok("GET", "/subscriptions", params={"customerId": "acme"})["data"]
    assert (subscription["status"], subscription["endDate"]) == (
        "terminated",
        "2026-10-16T00:00:00Z",
    )
    [applied] = api.ok("GET", "/applied-coupons", params={"customerId": "acme"})["data"]
    assert applied["status"] == "removed"
    # The final invoice was issued by the deletion: what it used up to then (15 of 31
    # days of 100.00 = 48.39), with the coupon it still had (10%: 4.84).
    september, october = invoices_of(api, "acme")
    assert (october["periodStart"], october["periodEnd"]) == (
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",  # the period; its fee prorated to the deletion
    )
    assert (october["subtotal"], october["discountTotal"], october["total"]) == (
        "48.39",
        "4.84",
        "43.55",
    )
    [deleted] = [a for a in api.ok("GET", "/activity")["data"] if a["action"] == "customer.deleted"]
    assert deleted["changes"] == {"terminatedSubscriptions": 1, "finalInvoiceIds": [october["id"]]}
    # Its invoices stay; October's bill run bills nothing more of it.
    api.clock.set(datetime(2026, 11, 1, 9, tzinfo=UTC))
    bill(api, "2026-10-01", "2026-11-01")
    assert [i["id"] for i in invoices_of(api, "acme")] == [september["id"], october["id"]]
    assert (september["status"], september["total"]) == ("OPEN", "90.00")
    assert api.ok("GET", f"/invoices/{september['id']}")["customerId"] == "acme"
    assert [i["total"] for i in invoices_of(api, "keep")] == ["100.00", "100.00"]
    # Its externalId stays taken.
    error = api.error(
        "POST", "/customers", 409, json={"externalId": "acme", "name": "Acme", "currency": "USD"}
    )
    assert error["code"] == "customer_deleted"
    api.error("GET", "/customers/nobody", 404)
    api.error("DELETE", "/customers/nobody", 404)


def test_delete_without_a_final_invoice_leaves_it_to_the_bill_run(api: ApiClient) -> None:
    flat_plan(api)
    api.customer("acme")
    api.ok("POST", "/subscriptions",
           json={"customerId": "acme", "planCode": "flat", "startDate": "2026-10-01"})  # fmt: skip
    api.clock.set(datetime(2026, 10, 16, tzinfo=UTC))
    assert api.delete("/customers/acme", params={"finalInvoice": "false"}).status_code == 204
    assert invoices_of(api, "acme") == []
    api.clock.set(datetime(2026, 11, 1, 9, tzinfo=UTC))
    bill(api, "2026-10-01", "2026-11-01")
    [october] = invoices_of(api, "acme")
    assert (october["periodEnd"], october["total"]) == ("2026-11-01T00:00:00Z", "48.39")


def test_delete_brings_a_scheduled_end_to_now(api: ApiClient) -> None:
    """A subscription terminated with a later `at` is not billed past the deletion."""
    flat_plan(api)
    api.customer("acme")
    start = {"customerId": "acme", "planCode": "flat", "startDate": "2026-10-01"}
    sub = api.ok("POST", "/subscriptions", json=start)
    api.clock.set(datetime(2026, 10, 10, tzinfo=UTC))
    api.ok("POST", f"/subscriptions/{sub['id']}/terminate",
           json={"at": "2026-10-28T00:00:00Z", "finalInvoice": False})  # fmt: skip
    api.clock.set(datetime(2026, 10, 16, tzinfo=UTC))
    assert api.delete("/customers/acme").status_code == 204
    [ended] = api.ok("GET", "/subscriptions", params={"customerId": "acme"})["data"]
    assert (ended["status"], ended["endDate"]) == ("terminated", "2026-10-16T00:00:00Z")
    api.clock.set(datetime(2026, 11, 1, 9, tzinfo=UTC))
    bill(api, "2026-10-01", "2026-11-01")
    [october] = invoices_of(api, "acme")
    assert (october["periodEnd"], october["total"]) == ("2026-11-01T00:00:00Z", "48.39")


def test_a_deleted_customer_is_gone_from_every_customer_lookup(api: ApiClient) -> None:
    flat_plan(api)
    api.customer("acme")
    api.ok("POST", "/subscriptions",
           json={"customerId": "acme", "planCode": "flat", "startDate": "2026-10-01"})  # fmt: skip
    api.ok("POST", "/wallets", json={"customerId": "acme", "credits": "10"})
    api.ok("GET", "/customers/acme/entitlements")
    api.clock.set(datetime(2026, 10, 16, tzinfo=UTC))
    assert api.delete("/customers/acme").status_code == 204
    for method, url, body in (
        ("GET", "/customers/acme/entitlements", None),
        ("GET", "/customers/acme/usage", None),
        ("GET", "/wallets?customerId=acme", None),
        ("POST", "/wallets", {"customerId": "acme", "credits": "5"}),
        ("POST", "/customers/acme/checkout-url", {}),
    ):
        assert api.error(method, url, 404, json=body)["code"] == "not_found", url


def test_tenant_isolation(api: ApiClient, other: ApiClient) -> None:
    api.customer("acme", country="FR", metadata={"tier": "gold"})
    other.error("DELETE", "/customers/acme", 404)
    other.error("PATCH", "/customers/acme", 404, json={"metadata": {"tier": "none"}})
    assert other.ok("GET", "/customers", params={"q": "acme"})["data"] == []
    assert other.ok("GET", "/customers", params={"metadata[tier]": "gold"})["data"] == []
    assert other.ok("GET", "/customers", params={"country": "FR"})["data"] == []
    # The other tenant may use the same externalId, and deleting its own leaves ours.
    other.customer("acme")
    assert other.delete("/customers/acme").status_code == 204
    assert api.ok("GET", "/customers/acme")["metadata"] == {"tier": "gold"}
    assert ids(api, q="acme") == ["acme"]


def test_delete_terminates_the_wallets(api: ApiClient) -> None:
    """A deleted customer's wallets end (balance forfeited, pending paid top-up voided):
    no recurring top-up may invoice it after the deletion."""
    api.customer("acme")
    granted = api.ok("POST", "/wallets", json={"customerId": "acme", "grantedCredits": "10"})
    paid = api.ok("POST", "/wallets", json={"customerId": "acme", "paidCredits": "20"})
    [topup_invoice] = invoices_of(api, "acme")
    api.clock.set(datetime(2026, 10, 16, tzinfo=UTC))
    assert api.delete("/customers/acme").status_code == 204
    for wallet, forfeited in ((granted, ["10.00"]), (paid, [])):
        row = api.ok("GET", f"/wallets/{wallet['id']}")
        assert (row["status"], row["balance"]) == ("terminated", "0.00")
        assert row["terminatedAt"] == "2026-10-16T00:00:00Z"
        outbound = api.ok("GET", f"/wallets/{wallet['id']}/transactions",
                          params={"type": "outbound"})["data"]  # fmt: skip
        assert [t["amount"] for t in outbound if t["type"] == "forfeit"] == forfeited
    assert api.ok("GET", f"/invoices/{topup_invoice['id']}")["status"] == "VOID"
