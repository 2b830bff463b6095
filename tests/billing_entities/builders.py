"""Builders of the billing-entity tests: two sellers in two countries."""

from __future__ import annotations

from typing import Any

from tests.helpers.ledger_api import ApiClient

ACME = {
    "code": "acme-de",
    "name": "Acme Germany",
    "legalName": "Acme GmbH",
    "addressLine1": "Friedrichstraße 10",
    "city": "Berlin",
    "postalCode": "10117",
    "country": "DE",
    "taxId": "DE123456789",
    "email": "billing@acme.example",
    "invoicePrefix": "ACME",
}

NORTH = {
    "code": "north",
    "name": "Acme Nordic",
    "legalName": "Acme Nordic AB",
    "addressLine1": "Drottninggatan 1",
    "city": "Stockholm",
    "postalCode": "111 51",
    "country": "SE",
}


def entity(api: ApiClient, base: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.ok("POST", "/billing-entities", json={**(base or ACME), **fields})
    return result
