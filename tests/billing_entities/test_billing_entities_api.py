"""Billing entities through the HTTP API (docs/billing-entities.md): CRUD and its
refusals, customers attached to one, invoice numbers per entity, archive, tenant
isolation. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.billing_entities.builders import ACME, NORTH, entity
from tests.documents.builders import SELLER, seller
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger


def test_create_then_read_and_list_the_first_is_the_default(api: ApiClient) -> None:
    created = entity(api)
    assert created == {
        "code": "acme-de",
        "name": "Acme Germany",
        "isDefault": True,  # a tenant's first entity is its default
        "invoicePrefix": "ACME",
        "taxCodes": [],
        "legalName": "Acme GmbH",
        "addressLine1": "Friedrichstraße 10",
        "addressLine2": None,
        "city": "Berlin",
        "postalCode": "10117",
        "country": "DE",
        "taxId": "DE123456789",
        "email": "billing@acme.example",
        "iban": None,
        "createdAt": "2026-11-01T09:00:00Z",
        "updatedAt": "2026-11-01T09:00:00Z",
        "archivedAt": None,
    }
    assert api.ok("GET", "/billing-entities/acme-de") == created
    # The singular resource is the default entity, in its old shape.
    legacy = api.ok("GET", "/billing-entity")
    assert (legacy["legalName"], legacy["country"], legacy["taxId"]) == (
        "Acme GmbH",
        "DE",
        "DE123456789",
    )

    api.clock.advance(timedelta(minutes=1))
    north = entity(api, NORTH)
    assert (north["isDefault"], north["invoicePrefix"]) == (False, "NORTH")  # from the code
    listed = api.ok("GET", "/billing-entities")
    assert [e["code"] for e in listed["data"]] == ["north", "acme-de"]  # newest first
    assert listed["nextCursor"] is None
    page = api.ok("GET", "/billing-entities", params={"limit": 1})
    assert [e["code"] for e in page["data"]] == ["north"]
    rest = api.ok("GET", "/billing-entities", params={"limit": 1, "cursor": page["nextCursor"]})
    assert [e["code"] for e in rest["data"]] == ["acme-de"]


def test_a_name_alone_is_an_entity_and_documents_use_the_name(api: ApiClient) -> None:
    body = entity(api, {"code": "bare", "name": "Bare Ltd"})
    assert (body["legalName"], body["country"], body["invoicePrefix"]) == (None, None, "BARE")
    assert api.ok("GET", "/billing-entity")["legalName"] == "Bare Ltd"


def test_patch_changes_what_is_sent_and_moves_the_default(api: ApiClient) -> None:
    entity(api)
    entity(api, NORTH)
    api.ok("POST", "/taxes", json={"code": "std19", "name": "Std", "rate": "19"})
    api.clock.advance(timedelta(hours=1))
    patched = api.ok(
        "PATCH",
        "/billing-entities/acme-de",
        json={"name": "Acme DE", "email": None, "taxCodes": ["std19"], "invoicePrefix": "AC-DE"},
    )
    assert (patched["name"], patched["email"], patched["taxCodes"]) == ("Acme DE", None, ["std19"])
    assert (patched["invoicePrefix"], patched["legalName"]) == ("AC-DE", "Acme GmbH")
    assert patched["updatedAt"] == "2026-11-01T10:00:00Z"

    moved = api.ok("PATCH", "/billing-entities/north", json={"isDefault": True})
    assert moved["isDefault"] is True
    assert api.ok("GET", "/billing-entities/acme-de")["isDefault"] is False
    assert api.ok("GET", "/billing-entity")["legalName"] == "Acme Nordic AB"
    error = api.error("PATCH", "/billing-entities/north", 422, json={"isDefault": False})
    assert error["code"] == "default_required"


def test_put_billing_entity_edits_the_default_and_creates_it_first(api: ApiClient) -> None:
    seller(api)  # no entity yet: PUT creates the default, code `default`, prefix INV
    [created] = api.ok("GET", "/billing-entities")["data"]
    assert (created["code"], created["isDefault"], created["invoicePrefix"]) == (
        "default",
        True,
        "INV",
    )
    assert created["legalName"] == "Meterline AG"
    entity(api)
    api.ok("PUT", "/billing-entity", json={**SELLER, "legalName": "Meterline Schweiz AG"})
    assert api.ok("GET", "/billing-entities/default")["legalName"] == "Meterline Schweiz AG"
    assert api.ok("GET", "/billing-entities/acme-de")["legalName"] == "Acme GmbH"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"code": "a b"}, "validation_error"),
        ({"country": "XX"}, "invalid_country"),
        ({"taxCodes": ["nope"]}, "unknown_tax"),
        ({"invoicePrefix": "!!"}, "invalid_prefix"),
        ({"email": "not mail"}, "invalid_email"),
        ({"iban": "DE00 1234"}, "invalid_iban"),
        ({"name": ""}, "validation_error"),
        ({"vatNumber": "X"}, "validation_error"),
    ],
)
def test_refusals_are_422(api: ApiClient, change: dict[str, Any], code: str) -> None:
    error = api.error("POST", "/billing-entities", 422, json={**ACME, **change})
    assert error["code"] == code
    assert api.ok("GET", "/billing-entities")["data"] == []


def test_a_missing_name_and_unknown_codes(api: ApiClient) -> None:
    body = {k: v for k, v in ACME.items() if k != "name"}
    error = api.error("POST", "/billing-entities", 422, json=body)
    assert [d["field"] for d in error["details"]] == ["name"]
    assert api.error("GET", "/billing-entities/nope", 404)["code"] == "billing_entity_not_found"
    api.error("PATCH", "/billing-entities/nope", 404, json={"name": "x"})
    api.error("DELETE", "/billing-entities/nope", 404)


def test_duplicates_are_409(api: ApiClient) -> None:
    entity(api)
    assert api.error("POST", "/billing-entities", 409, json=ACME)["code"] == (
        "billing_entity_exists"
    )
    taken = api.error("POST", "/billing-entities", 409, json={**NORTH, "invoicePrefix": "acme"})
    assert taken["code"] == "invoice_prefix_taken"
    entity(api, NORTH)
    error = api.error("PATCH", "/billing-entities/north", 409, json={"invoicePrefix": "ACME"})
    assert error["code"] == "invoice_prefix_taken"


def test_customers_belong_to_one(api: ApiClient) -> None:
    entity(api)
    entity(api, NORTH)
    assert api.customer("plain")["billingEntityCode"] == "acme-de"  # the default
    assert api.customer("nordic", billingEntityCode="north")["billingEntityCode"] == "north"
    assert api.ok("GET", "/customers/nordic")["billingEntityCode"] == "north"
    body = {"externalId": "x", "name": "X", "currency": "USD", "billingEntityCode": "nope"}
    assert api.error("POST", "/customers", 422, json=body)["code"] == "unknown_billing_entity"

    # With drafts only, a customer moves and its drafts with it.
    draft = api.draft("plain")
    assert api.ok("GET", f"/invoices/{draft}")["billingEntityCode"] == "acme-de"
    moved = api.ok("PATCH", "/customers/plain", json={"billingEntityCode": "north"})
    assert moved["billingEntityCode"] == "north"
    assert api.ok("GET", f"/invoices/{draft}")["billingEntityCode"] == "north"
    finalized = api.ok("POST", f"/invoices/{draft}/finalize")
    assert (finalized["number"], finalized["billingEntityCode"]) == ("NORTH-000001", "north")

    # Once it has a finalized invoice, its seller is fixed.
    error = api.error("PATCH", "/customers/plain", 409, json={"billingEntityCode": "acme-de"})
    assert error["code"] == "billing_entity_locked"
    same = api.ok("PATCH", "/customers/plain", json={"billingEntityCode": "north"})
    assert same["billingEntityCode"] == "north"
    assert api.ok("GET", "/customers/plain")["billingEntityCode"] == "north"


def test_each_entity_numbers_its_own_invoices(api: ApiClient) -> None:
    seller(api)  # the default: prefix INV, the tenant's sequence
    entity(api)
    entity(api, NORTH)
    api.customer("home")
    api.customer("acme", billingEntityCode="acme-de")
    api.customer("nordic", billingEntityCode="north")

    def finalize(customer: str, index: int) -> tuple[str, str]:
        body = api.open_invoice(customer, index=index)
        return body["number"], body["billingEntityCode"]

    assert finalize("acme", 0) == ("ACME-000001", "acme-de")
    assert finalize("home", 0) == ("INV-000001", "default")
    assert finalize("acme", 1) == ("ACME-000002", "acme-de")
    assert finalize("nordic", 0) == ("NORTH-000001", "north")
    assert finalize("home", 1) == ("INV-000002", "default")

    # A prefix with numbers issued under it stays.
    error = api.error("PATCH", "/billing-entities/acme-de", 409, json={"invoicePrefix": "ACM"})
    assert error["code"] == "invoice_prefix_locked"
    # A later default change moves neither customers nor issued invoices.
    api.ok("PATCH", "/billing-entities/north", json={"isDefault": True})
    assert api.ok("GET", "/customers/home")["billingEntityCode"] == "default"
    assert finalize("home", 2) == ("INV-000003", "default")
    assert api.customer("newcomer")["billingEntityCode"] == "north"


def test_a_tenant_without_entities_numbers_inv_then_pins_to_its_first(api: ApiClient) -> None:
    api.customer("early")
    before = api.open_invoice("early")
    assert (before["number"], before["billingEntityCode"]) == ("INV-000001", None)
    entity(api)  # the first entity: the default, and every customer so far is its
    assert api.ok("GET", "/customers/early")["billingEntityCode"] == "acme-de"
    after = api.open_invoice("early", index=1)
    assert (after["number"], after["billingEntityCode"]) == ("ACME-000001", "acme-de")


def test_archive_is_refused_for_the_default_and_while_customers_belong(api: ApiClient) -> None:
    entity(api)
    entity(api, NORTH)
    error = api.error("DELETE", "/billing-entities/acme-de", 409)
    assert error["code"] == "billing_entity_default"
    api.customer("nordic", billingEntityCode="north")
    error = api.error("DELETE", "/billing-entities/north", 409)
    assert (error["code"], error["details"]) == ("billing_entity_in_use", {"customers": ["nordic"]})

    api.ok("DELETE", "/customers/nordic")
    api.clock.advance(timedelta(days=1))
    response = api.delete("/billing-entities/north")
    assert response.status_code == 204
    assert api.delete("/billing-entities/north").status_code == 204  # already archived
    assert [e["code"] for e in api.ok("GET", "/billing-entities")["data"]] == ["acme-de"]
    archived = api.ok("GET", "/billing-entities", params={"archived": "true"})["data"]
    assert [(e["code"], e["archivedAt"]) for e in archived] == [("north", "2026-11-02T09:00:00Z")]
    body = {"externalId": "late", "name": "Late", "currency": "USD", "billingEntityCode": "north"}
    assert api.error("POST", "/customers", 422, json=body)["code"] == "billing_entity_archived"
    error = api.error("PATCH", "/billing-entities/north", 409, json={"isDefault": True})
    assert error["code"] == "billing_entity_archived"
    # The code and prefix stay taken.
    assert api.error("POST", "/billing-entities", 409, json=NORTH)["code"] == (
        "billing_entity_exists"
    )


def test_another_tenant_sees_none_of_them(api: ApiClient, other: ApiClient) -> None:
    entity(api)
    api.customer("acme")
    assert other.error("GET", "/billing-entities/acme-de", 404)["code"] == (
        "billing_entity_not_found"
    )
    other.error("PATCH", "/billing-entities/acme-de", 404, json={"name": "Mine"})
    other.error("DELETE", "/billing-entities/acme-de", 404)
    assert other.ok("GET", "/billing-entities")["data"] == []
    other.error("GET", "/billing-entity", 404)
    body = {"externalId": "x", "name": "X", "currency": "USD", "billingEntityCode": "acme-de"}
    assert other.error("POST", "/customers", 422, json=body)["code"] == "unknown_billing_entity"
    # Codes and prefixes are the tenant's own: the other may use the same.
    mine = entity(other)
    assert (mine["code"], mine["invoicePrefix"], mine["isDefault"]) == ("acme-de", "ACME", True)
    other.customer("acme")
    assert other.open_invoice("acme")["number"] == "ACME-000001"
    assert api.open_invoice("acme")["number"] == "ACME-000001"
    assert api.ok("GET", "/billing-entities/acme-de")["name"] == "Acme Germany"
