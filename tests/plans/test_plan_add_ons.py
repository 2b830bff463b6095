"""Plans' fixed charges naming an add-on (API.md: `fixedCharges` may name an
`addOnCode`), through the HTTP API on SQLite and PostgreSQL: the add-on's name and
amount unless sent, its taxes on the bill run's lines (exact), refusals, and tenant
isolation of add-ons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.ledger_api import ApiClient
from tests.subscriptions.conftest import bill

pytestmark = pytest.mark.ledger


def taxes_and_add_ons(api: ApiClient) -> None:
    api.ok("POST", "/taxes", json={"code": "vat20", "name": "VAT", "rate": "20", "country": "FR"})
    api.ok("POST", "/taxes", json={"code": "reduced", "name": "Reduced", "rate": "5.5"})
    api.ok("POST", "/taxes", json={"code": "levy", "name": "Levy", "rate": "1.25"})
    add_on = {"currency": "USD"}
    api.ok("POST", "/add-ons", json={"code": "support", "name": "Support", "amount": "33.33",
                                     "taxCodes": ["reduced", "levy"], **add_on})  # fmt: skip
    api.ok("POST", "/add-ons", json={"code": "extra", "name": "Extra", "amount": "5", **add_on})
    api.ok("POST", "/add-ons", json={"code": "euro", "name": "Euro", "amount": "5",
                                     "currency": "EUR"})  # fmt: skip


def plan(api: ApiClient, fixed: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
            "baseFee": "10", "fixedCharges": fixed}  # fmt: skip
    created: dict[str, Any] = api.ok("POST", "/plans", json=body)
    return created


def charges(created: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(f["name"], f["amount"], f["addOnCode"]) for f in created["fixedCharges"]]


def test_a_fixed_charge_takes_the_add_ons_name_and_amount_unless_sent(api: ApiClient) -> None:
    taxes_and_add_ons(api)
    created = plan(api, [
        {"addOnCode": "support"},
        {"addOnCode": "extra", "name": "Extra seats", "amount": "7.5", "units": "2"},
        {"name": "Plain", "amount": "1"},
    ])  # fmt: skip
    assert charges(created) == [
        ("Support", "33.33", "support"), ("Extra seats", "7.5", "extra"), ("Plain", "1", None),
    ]  # fmt: skip
    assert api.ok("GET", "/plans/pro") == created
    patched = api.ok("PATCH", "/plans/pro", json={"fixedCharges": [{"addOnCode": "extra"}]})
    assert charges(patched) == [("Extra", "5", "extra")]


@pytest.mark.parametrize(
    ("fixed", "needle"),
    [
        ({"addOnCode": "nope"}, "nope"),
        ({"addOnCode": "euro"}, "EUR"),
        ({"name": "No amount"}, "amount"),
        ({"addOnCode": "extra", "amount": "-1"}, "amount"),
    ],
)
def test_bad_add_on_charges_are_422(api: ApiClient, fixed: dict[str, Any], needle: str) -> None:
    taxes_and_add_ons(api)
    body = {"code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
            "fixedCharges": [fixed]}  # fmt: skip
    error = api.error("POST", "/plans", 422, json=body)
    assert needle in error["message"]
    api.error("GET", "/plans/pro", 404)
    plan(api, [])
    api.error("PATCH", "/plans/pro", 422, json={"fixedCharges": [fixed]})
    assert api.ok("GET", "/plans/pro")["fixedCharges"] == []


def invoice_lines(api: ApiClient, customer: str) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    (summary,) = api.ok("GET", "/invoices", params={"customerId": customer})["data"]
    invoice: dict[str, Any] = api.ok("GET", f"/invoices/{summary['id']}")
    rows = [
        (ln["type"], ln["description"], ln["amount"], ln["taxRate"], ln["taxAmount"])
        for ln in invoice["lines"]
    ]
    return rows, invoice


def test_the_bill_run_taxes_add_on_charges_at_the_add_ons_rates(api: ApiClient) -> None:
    taxes_and_add_ons(api)
    plan(api, [{"addOnCode": "support"}, {"addOnCode": "extra"}])
    exempt = {"country": "FR", "taxExempt": True}
    for customer, fields in (("acme", {"country": "FR"}), ("free", exempt)):
        api.customer(customer, **fields)
        body = {"customerId": customer, "planCode": "pro", "startDate": "2026-10-01T00:00:00Z"}
        api.ok("POST", "/subscriptions", json=body)
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 2
    rows, invoice = invoice_lines(api, "acme")
    # The base fee and the add-on without taxes: the customer's FR 20 %. Support: its
    # own 5.5 % + 1.25 % = 6.75 % of 33.33 = 2.249775 → 2.25, instead of 20 %.
    assert sorted(rows) == [
        ("CHARGE", "Extra", "5.00", "20", "1.00"),
        ("CHARGE", "Pro base fee", "10.00", "20", "2.00"),
        ("CHARGE", "Support", "33.33", "6.75", "2.25"),
    ]
    assert (invoice["subtotal"], invoice["taxTotal"], invoice["total"]) == (
        "48.33", "5.25", "53.58",
    )  # fmt: skip
    # An exempt customer pays none, the add-on's taxes included.
    rows, invoice = invoice_lines(api, "free")
    assert {r[4] for r in rows} == {"0.00"} and invoice["total"] == "48.33"


def test_add_ons_are_the_tenants_own(api: ApiClient, other: ApiClient) -> None:
    taxes_and_add_ons(api)
    other.error("GET", "/add-ons/support", 404)
    other.error("PATCH", "/add-ons/support", 404, json={"amount": "1"})
    other.error("DELETE", "/add-ons/support", 404)
    assert other.ok("GET", "/add-ons")["data"] == []
    # Another tenant's plan cannot bill it, nor can its one-off invoices.
    body = {"code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
            "fixedCharges": [{"addOnCode": "support"}]}  # fmt: skip
    assert "support" in other.error("POST", "/plans", 422, json=body)["message"]
    other.customer("acme")
    one_off = {"customerId": "acme", "currency": "USD", "lines": [{"addOnCode": "support"}]}
    assert other.request("POST", "/invoices", json=one_off).status_code in (404, 422)
    assert api.ok("GET", "/add-ons/support")["amount"] == "33.33"
