"""GET/PUT /billing-entity and the customer's postal address, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.documents.builders import BUYER, SELLER, buyer, seller
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger


def test_none_until_put_then_the_entity_normalized(api: ApiClient) -> None:
    error = api.error("GET", "/billing-entity", 404)
    assert error["code"] == "not_found"
    body = api.ok("PUT", "/billing-entity", json={**SELLER, "country": "ch"})
    assert body == {
        "legalName": "Meterline AG",
        "addressLine1": "Bahnhofstrasse 1",
        "addressLine2": "Postfach 12",
        "city": "Zürich",
        "postalCode": "8001",
        "country": "CH",
        "taxId": "CHE-123.456.789 MWST",
        "email": "billing@meterline.example",
        "iban": "CH9300762011623852957",
        "updatedAt": "2026-11-01T09:00:00Z",
    }
    assert api.ok("GET", "/billing-entity") == body


def test_a_put_replaces_the_whole_entity(api: ApiClient) -> None:
    seller(api)
    api.clock.advance(timedelta(days=1))
    required = {k: SELLER[k] for k in ("legalName", "addressLine1", "city", "postalCode")}
    body = api.ok("PUT", "/billing-entity", json={**required, "country": "DE"})
    assert body["addressLine2"] is None
    assert (body["taxId"], body["email"], body["iban"]) == (None, None, None)
    assert (body["country"], body["updatedAt"]) == ("DE", "2026-11-02T09:00:00Z")


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"country": "XX"}, "invalid_country", None),
        ({"country": "DEU"}, "validation_error", "country"),
        ({"iban": "CH93 0076 2011 6238 5295 8"}, "invalid_iban", None),
        ({"iban": "not an iban"}, "invalid_iban", None),
        ({"email": "billing at meterline"}, "invalid_email", None),
        ({"legalName": "   "}, "validation_error", None),
        ({"legalName": None}, "validation_error", "legalName"),
        ({"vatNumber": "X"}, "validation_error", "vatNumber"),
    ],
)
def test_refusals(api: ApiClient, change: dict[str, object], code: str, field: str | None) -> None:
    error = api.error("PUT", "/billing-entity", 422, json={**SELLER, **change})
    assert error["code"] == code
    if field is not None:
        assert [d["field"] for d in error["details"]] == [field]
    api.error("GET", "/billing-entity", 404)


def test_a_missing_required_field_is_a_422(api: ApiClient) -> None:
    body = {k: v for k, v in SELLER.items() if k != "city"}
    error = api.error("PUT", "/billing-entity", 422, json=body)
    assert [d["field"] for d in error["details"]] == ["city"]


def test_customer_address_and_tax_id(api: ApiClient) -> None:
    created = buyer(api, addressLine2="  ")
    assert {k: created[k] for k in ("addressLine1", "addressLine2", "city", "postalCode")} == {
        "addressLine1": "ul. Piotrkowska 104",
        "addressLine2": None,  # blank is none
        "city": "Łódź",
        "postalCode": "90-001",
    }
    assert created["taxId"] == BUYER["taxId"]
    patched = api.ok("PATCH", "/customers/lodz", json={"addressLine2": "Lokal 5", "taxId": None})
    assert (patched["addressLine2"], patched["taxId"]) == ("Lokal 5", None)
    assert (patched["addressLine1"], patched["city"]) == ("ul. Piotrkowska 104", "Łódź")
    assert api.ok("GET", "/customers/lodz") == patched


def test_customer_without_address(api: ApiClient) -> None:
    created = api.customer("acme")
    fields = ("addressLine1", "addressLine2", "city", "postalCode", "taxId")
    assert [created[k] for k in fields] == [None] * 5
