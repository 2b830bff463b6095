"""Tax rates through the HTTP API: PATCH applies to what is rated from then on (issued
invoices keep their rate, exactly), DELETE refuses a rate in use (409 `tax_in_use`),
and tenant isolation of both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.credits.conftest import bill, invoices_of
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

VAT = {"code": "vat_fr", "name": "TVA", "rate": "20", "country": "FR"}


def test_a_new_rate_applies_to_later_invoices_only(api: ApiClient) -> None:
    api.ok("POST", "/taxes", json=VAT)
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "flat",
            "name": "Flat",
            "currency": "EUR",
            "interval": "monthly",
            "baseFee": "100",
            "charges": [],
        },
    )
    api.customer("acme", country="FR", currency="EUR")
    api.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "flat", "startDate": "2026-10-01"},
    )
    bill(api, "2026-10-01", "2026-11-01")
    [october] = invoices_of(api, "acme")
    assert (october["taxTotal"], october["total"]) == ("20.00", "120.00")
    api.ok("POST", f"/invoices/{october['id']}/finalize")

    changed = api.ok(
        "PATCH",
        "/taxes/vat_fr",
        json={"rate": "5.5", "name": "TVA réduite", "description": "Taux réduit"},
    )
    assert (changed["rate"], changed["name"], changed["description"]) == (
        "5.5",
        "TVA réduite",
        "Taux réduit",
    )
    assert api.ok("GET", "/taxes/vat_fr") == changed
    api.clock.set(datetime(2026, 12, 1, 9, tzinfo=UTC))
    bill(api, "2026-11-01", "2026-12-01")
    october, november = invoices_of(api, "acme")
    assert (november["taxTotal"], november["total"]) == ("5.50", "105.50")
    assert [line["taxRate"] for line in november["lines"]] == ["5.5"]
    # The issued invoice keeps the rate it was issued with.
    assert (october["status"], october["taxTotal"], october["total"]) == ("OPEN", "20.00", "120.00")
    assert [line["taxRate"] for line in october["lines"]] == ["20"]


def test_patch_rules(api: ApiClient) -> None:
    api.ok("POST", "/taxes", json={**VAT, "region": "Corse"})
    for body in (
        {"rate": "101"},
        {"rate": "-1"},
        {"rate": None},
        {"name": ""},
        {"country": None},  # the region would be left without its country
        {"country": "France"},
        {"code": "other"},
    ):
        api.error("PATCH", "/taxes/vat_fr", 422, json=body)
    shown = api.ok("PATCH", "/taxes/vat_fr", json={"region": None, "country": "fr"})
    assert (shown["country"], shown["region"], shown["rate"]) == ("FR", None, "20")
    api.error("PATCH", "/taxes/nope", 404, json={"rate": "1"})


def test_delete_refuses_a_rate_in_use(api: ApiClient) -> None:
    api.ok("POST", "/taxes", json=VAT)
    api.ok("POST", "/taxes", json={"code": "std", "name": "Standard", "rate": "5"})
    api.ok("POST", "/taxes", json={"code": "jp", "name": "JCT", "rate": "10", "country": "JP"})
    api.ok("POST", "/taxes", json={"code": "de", "name": "MwSt", "rate": "19", "country": "DE"})
    api.customer("acme", country="FR")
    api.customer("exempt", country="DE", taxExempt=True)
    # Nobody in Japan: not in use.
    assert api.delete("/taxes/jp").status_code == 204
    api.error("GET", "/taxes/jp", 404)
    # Customers of its country pay it.
    error = api.error("DELETE", "/taxes/vat_fr", 409)
    assert error["code"] == "tax_in_use"
    assert error["details"] == {"usedBy": ["customers in FR"]}
    # A default rate is in use while a customer has no local rate; exempt ones never count.
    assert api.delete("/taxes/std").status_code == 204
    api.ok("POST", "/taxes", json={"code": "std", "name": "Standard", "rate": "5"})
    api.customer("bob", country="US")
    assert api.error("DELETE", "/taxes/std", 409)["details"] == {"usedBy": ["customers in US"]}
    assert api.delete("/taxes/de").status_code == 204
    # An add-on naming it.
    api.ok("POST", "/taxes", json={"code": "jp", "name": "JCT", "rate": "10", "country": "JP"})
    api.ok(
        "POST",
        "/add-ons",
        json={
            "code": "setup",
            "name": "Setup",
            "amount": "50",
            "currency": "USD",
            "taxCodes": ["jp"],
        },
    )
    assert api.error("DELETE", "/taxes/jp", 409)["details"] == {"usedBy": ["add-on 'setup'"]}
    api.ok("PATCH", "/add-ons/setup", json={"taxCodes": []})
    assert api.delete("/taxes/jp").status_code == 204


def test_tenant_isolation(api: ApiClient, other: ApiClient) -> None:
    api.ok("POST", "/taxes", json=VAT)
    other.error("PATCH", "/taxes/vat_fr", 404, json={"rate": "1"})
    other.error("DELETE", "/taxes/vat_fr", 404)
    # The other tenant's French customers keep no rate of ours in use.
    other.customer("acme", country="FR")
    assert api.ok("GET", "/taxes/vat_fr")["rate"] == "20"
    assert api.delete("/taxes/vat_fr").status_code == 204
