"""Invoice custom sections through the HTTP API on SQLite and PostgreSQL: CRUD, the
refusals, tenant isolation, which sections an invoice gets, and the copy an invoice
keeps from finalize on (docs/invoice-custom-sections.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers.ledger_api import ApiClient
from tests.subscriptions.conftest import bill, plan, subscribe

pytestmark = pytest.mark.ledger

PATH = "/invoice-custom-sections"


def section(api: ApiClient, code: str, **fields: Any) -> dict[str, Any]:
    body = {"code": code, "name": code.title(), "details": f"Details of {code}.", **fields}
    result: dict[str, Any] = api.ok("POST", PATH, json=body)
    return result


def shown(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["code"], s["displayName"], s["details"]) for s in invoice["customSections"]]


def one_off(api: ApiClient, customer: str = "acme") -> dict[str, Any]:
    body = {
        "customerId": customer,
        "currency": "USD",
        "lines": [{"description": "Consulting", "quantity": "2", "unitAmount": "50"}],
    }
    result: dict[str, Any] = api.ok("POST", "/invoices", json=body)
    return result


# -- CRUD ------------------------------------------------------------------------------


def test_a_section_round_trips_and_patches(api: ApiClient) -> None:
    created = section(
        api,
        "bank",
        displayName="Bank details",
        description="How to pay us",
        details="IBAN CH93 0076 2011 6238 5295 7\nBIC UBSWCHZH80A",
        appliesToAll=True,
    )
    assert {k: v for k, v in created.items() if k != "id"} == {
        "code": "bank",
        "name": "Bank",
        "displayName": "Bank details",
        "description": "How to pay us",
        "details": "IBAN CH93 0076 2011 6238 5295 7\nBIC UBSWCHZH80A",
        "appliesToAll": True,
        "createdAt": "2026-11-01T09:00:00Z",
        "updatedAt": "2026-11-01T09:00:00Z",
    }
    assert api.ok("GET", f"{PATH}/bank") == created
    api.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    patched = api.ok(
        "PATCH", f"{PATH}/bank", json={"displayName": None, "details": "New", "appliesToAll": False}
    )
    assert (patched["displayName"], patched["details"], patched["appliesToAll"]) == (
        None,
        "New",
        False,
    )
    assert (patched["name"], patched["description"]) == ("Bank", "How to pay us")
    assert patched["updatedAt"] == "2026-11-02T00:00:00Z"
    assert api.ok("GET", f"{PATH}/bank") == patched


def test_lists_page_newest_first_and_filter(api: ApiClient) -> None:
    for i, code in enumerate(("a", "b", "c")):
        api.clock.set(api.clock.now().replace(minute=i))
        section(api, code, appliesToAll=code != "b")
    first = api.ok("GET", PATH, params={"limit": 2})
    assert [s["code"] for s in first["data"]] == ["c", "b"]
    rest = api.ok("GET", PATH, params={"limit": 2, "cursor": first["nextCursor"]})
    assert ([s["code"] for s in rest["data"]], rest["nextCursor"]) == (["a"], None)
    only = api.ok("GET", PATH, params={"appliesToAll": "true"})["data"]
    assert [s["code"] for s in only] == ["c", "a"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "bad code"}, "code"),
        ({"code": ""}, "code"),
        ({"code": "x" * 101}, "code"),
        ({"details": ""}, "details"),
        ({"details": "   \n  "}, "details"),
        ({"details": "x" * 4001}, "details"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"displayName": "d" * 201}, "displayName"),
        ({"description": "d" * 1001}, "description"),
        ({"appliesToAll": "maybe"}, "appliesToAll"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_sections_are_422(api: ApiClient, body: dict[str, Any], field: str) -> None:
    sent = {"code": "legal", "name": "Legal", "details": "Text", **body}
    error = api.error("POST", PATH, 422, json=sent)
    assert field in str(error)
    assert api.ok("GET", PATH)["data"] == []


def test_bad_patches_are_422_and_change_nothing(api: ApiClient) -> None:
    before = section(api, "legal")
    for body in ({"details": " "}, {"code": "other"}, {"name": ""}, {"details": "x" * 4001}):
        api.error("PATCH", f"{PATH}/legal", 422, json=body)
    assert api.ok("GET", f"{PATH}/legal") == before
    api.error("PATCH", f"{PATH}/nope", 404, json={"name": "N"})


def test_delete_is_soft_and_the_code_stays_taken(api: ApiClient) -> None:
    section(api, "legal")
    assert (
        api.error("POST", PATH, 409, json={"code": "legal", "name": "L", "details": "D"})["code"]
        == "duplicate"
    )
    assert api.delete(f"{PATH}/legal").status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        api.error(method, f"{PATH}/legal", 404, **({"json": {}} if method == "PATCH" else {}))
    assert api.ok("GET", PATH)["data"] == []
    again = api.error("POST", PATH, 409, json={"code": "legal", "name": "L", "details": "D"})
    assert again["code"] == "invoice_custom_section_deleted"


def test_another_tenants_key_gets_404(api: ApiClient, other: ApiClient) -> None:
    section(api, "legal", appliesToAll=True)
    other.error("GET", f"{PATH}/legal", 404)
    other.error("PATCH", f"{PATH}/legal", 404, json={"name": "Mine"})
    other.error("DELETE", f"{PATH}/legal", 404)
    assert other.ok("GET", PATH)["data"] == []
    # Nor can another tenant's customer list it, nor its invoices print it.
    error = other.error(
        "POST",
        "/customers",
        422,
        json={
            "externalId": "x",
            "name": "X",
            "currency": "USD",
            "invoiceCustomSectionCodes": ["legal"],
        },
    )
    assert error["code"] == "unknown_invoice_custom_section"
    other.customer("acme")
    assert one_off(other)["customSections"] == []
    # The same code in the other tenant is its own section.
    mine = section(other, "legal", details="Other's")
    assert api.ok("GET", f"{PATH}/legal")["details"] == "Details of legal."
    assert mine["details"] == "Other's"


# -- the customer's choice -------------------------------------------------------------


def test_customer_fields_round_trip_and_refuse_unknown_codes(api: ApiClient) -> None:
    section(api, "a")
    section(api, "b")
    created = api.customer("acme", invoiceCustomSectionCodes=["b", "a"])
    assert (created["invoiceCustomSectionCodes"], created["skipInvoiceCustomSections"]) == (
        ["b", "a"],
        False,
    )
    plain = api.customer("plain")
    assert (plain["invoiceCustomSectionCodes"], plain["skipInvoiceCustomSections"]) == ([], False)
    patched = api.ok("PATCH", "/customers/acme", json={"skipInvoiceCustomSections": True})
    assert (patched["invoiceCustomSectionCodes"], patched["skipInvoiceCustomSections"]) == (
        ["b", "a"],
        True,
    )
    for codes, code in (
        (["a", "zzz"], "unknown_invoice_custom_section"),
        (["a", "a"], "validation_error"),
        ([f"c{i}" for i in range(21)], "validation_error"),
    ):
        error = api.error(
            "PATCH", "/customers/acme", 422, json={"invoiceCustomSectionCodes": codes}
        )
        assert error["code"] == code
    assert api.ok("GET", "/customers/acme")["invoiceCustomSectionCodes"] == ["b", "a"]
    assert (
        api.ok("PATCH", "/customers/acme", json={"invoiceCustomSectionCodes": []})[
            "invoiceCustomSectionCodes"
        ]
        == []
    )
    # A deleted section leaves every customer's list.
    api.ok("PATCH", "/customers/plain", json={"invoiceCustomSectionCodes": ["a", "b"]})
    api.delete(f"{PATH}/a")
    assert api.ok("GET", "/customers/plain")["invoiceCustomSectionCodes"] == ["b"]
    error = api.error("PATCH", "/customers/plain", 422, json={"invoiceCustomSectionCodes": ["a"]})
    assert error["code"] == "unknown_invoice_custom_section"


def test_which_sections_an_invoice_gets(api: ApiClient) -> None:
    section(api, "legal", displayName="Legal notice", appliesToAll=True)
    api.clock.set(api.clock.now().replace(minute=1))
    section(api, "bank", appliesToAll=True)
    section(api, "eu", details="Reverse charge: Art. 196 VAT Directive.")
    api.customer("defaults")
    api.customer("own", invoiceCustomSectionCodes=["eu", "legal"])
    api.customer("skips", invoiceCustomSectionCodes=["eu"], skipInvoiceCustomSections=True)
    # No list of its own: every appliesToAll section, oldest first, display name or name.
    assert shown(one_off(api, "defaults")) == [
        ("legal", "Legal notice", "Details of legal."),
        ("bank", "Bank", "Details of bank."),
    ]
    # Its own list, in its order, whatever appliesToAll says.
    assert shown(one_off(api, "own")) == [
        ("eu", "Eu", "Reverse charge: Art. 196 VAT Directive."),
        ("legal", "Legal notice", "Details of legal."),
    ]
    # Skipping wins over any list.
    assert shown(one_off(api, "skips")) == []


def test_a_draft_follows_the_sections_and_finalize_freezes_its_copy(api: ApiClient) -> None:
    section(api, "legal", appliesToAll=True, details="v1")
    api.customer("acme")
    draft = one_off(api)
    assert shown(draft) == [("legal", "Legal", "v1")]
    # A change shows on the DRAFT at finalize (one-off drafts are not refreshed).
    api.ok("PATCH", f"{PATH}/legal", json={"details": "v2", "displayName": "Terms"})
    api.clock.advance(timedelta(minutes=1))
    section(api, "bank", appliesToAll=True)
    issued = api.ok("POST", f"/invoices/{draft['id']}/finalize")
    assert shown(issued) == [
        ("legal", "Terms", "v2"),
        ("bank", "Bank", "Details of bank."),
    ]
    # From now on the copy is frozen: PATCH, DELETE, the customer's choice change nothing.
    api.ok("PATCH", f"{PATH}/legal", json={"details": "v3"})
    api.delete(f"{PATH}/bank")
    api.ok("PATCH", "/customers/acme", json={"skipInvoiceCustomSections": True})
    assert shown(api.ok("GET", f"/invoices/{draft['id']}")) == shown(issued)
    api.ok("POST", f"/invoices/{draft['id']}/payments", json={"amount": issued["amountDue"]})
    assert shown(api.ok("GET", f"/invoices/{draft['id']}")) == shown(issued)


def test_bill_run_drafts_refresh_their_copy_until_finalize(api: ApiClient) -> None:
    section(api, "legal", appliesToAll=True, details="v1")
    plan(api, "pro", "31")
    api.customer("acme")
    api.customer("bare", skipInvoiceCustomSections=True)
    subscribe(api, "acme", "pro", "2026-10-01")
    subscribe(api, "bare", "pro", "2026-10-01")
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 2
    rows = api.ok("GET", "/invoices")["data"]
    by_customer = {r["customerId"]: api.ok("GET", f"/invoices/{r['id']}") for r in rows}
    acme, bare = by_customer["acme"], by_customer["bare"]
    assert (acme["status"], shown(acme)) == ("DRAFT", [("legal", "Legal", "v1")])
    assert shown(bare) == []
    api.ok("PATCH", f"{PATH}/legal", json={"details": "v2"})
    assert shown(api.ok("GET", f"/invoices/{acme['id']}")) == [("legal", "Legal", "v1")]
    refreshed = api.ok("POST", f"/invoices/{acme['id']}/refresh")
    assert shown(refreshed) == [("legal", "Legal", "v2")]
    assert refreshed["total"] == "31.00"
    finalized = api.ok("POST", f"/invoices/{acme['id']}/finalize")
    assert shown(finalized) == [("legal", "Legal", "v2")]
    api.ok("PATCH", f"{PATH}/legal", json={"details": "v3"})
    # Refresh is refused after finalize, and the copy stays.
    api.error("POST", f"/invoices/{acme['id']}/refresh", 409)
    assert shown(api.ok("GET", f"/invoices/{acme['id']}")) == [("legal", "Legal", "v2")]
    # A re-run creates no second invoice, and no second copy.
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 0
    assert len(api.ok("GET", f"/invoices/{acme['id']}")["customSections"]) == 1


def test_termination_and_wallet_invoices_carry_the_sections(api: ApiClient) -> None:
    section(api, "legal", appliesToAll=True)
    plan(api, "pro", "31")
    sub = subscribe(api, "acme", "pro", "2026-11-01")
    api.clock.set(datetime(2026, 11, 15, 12, tzinfo=UTC))
    ended = api.ok("POST", f"/subscriptions/{sub}/terminate")
    (final_id,) = ended["finalInvoiceIds"]
    assert shown(api.ok("GET", f"/invoices/{final_id}")) == [
        ("legal", "Legal", "Details of legal.")
    ]
    wallet = api.ok(
        "POST", "/wallets", json={"customerId": "acme", "rateAmount": "1", "paidCredits": "10"}
    )
    txs = api.ok("GET", f"/wallets/{wallet['id']}/transactions")["data"]
    (paid,) = [t for t in txs if t["grant"] == "paid"]
    credit = api.ok("GET", f"/invoices/{paid['invoiceId']}")
    assert (credit["type"], credit["status"]) == ("credit", "OPEN")
    assert shown(credit) == [("legal", "Legal", "Details of legal.")]


def test_a_regenerated_invoice_takes_the_sections_of_now(api: ApiClient) -> None:
    section(api, "legal", appliesToAll=True, details="v1")
    api.customer("acme")
    invoice = one_off(api)
    api.ok("POST", f"/invoices/{invoice['id']}/finalize")
    api.ok("POST", f"/invoices/{invoice['id']}/void")
    api.ok("PATCH", f"{PATH}/legal", json={"details": "v2"})
    assert shown(api.ok("GET", f"/invoices/{invoice['id']}")) == [("legal", "Legal", "v1")]
    fresh = api.ok("POST", f"/invoices/{invoice['id']}/regenerate")
    assert (fresh["status"], shown(fresh)) == ("DRAFT", [("legal", "Legal", "v2")])


def test_invoices_without_sections_show_an_empty_list(api: ApiClient) -> None:
    api.customer("acme")
    invoice = one_off(api)
    assert invoice["customSections"] == []
    listed = api.ok("GET", "/invoices")["data"]
    assert [i["customSections"] for i in listed] == [[]]
