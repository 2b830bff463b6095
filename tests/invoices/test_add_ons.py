"""Add-ons through the HTTP API: create, list, get, update, delete, and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers.ledger_api import ApiClient
from tests.invoices.one_off_builders import add_on, vat

pytestmark = pytest.mark.ledger


def test_an_add_on_round_trips_with_its_taxes(api: ApiClient) -> None:
    vat(api)
    created = add_on(api, description="One-time setup", taxCodes=["vat20"])
    assert created["code"] == "setup"
    assert created["name"] == "Setup"
    assert created["amount"] == "33.33"
    assert created["currency"] == "USD"
    assert created["description"] == "One-time setup"
    assert created["taxCodes"] == ["vat20"]
    assert created["createdAt"] == "2026-11-01T09:00:00Z"
    assert api.ok("GET", "/add-ons/setup") == created


def test_amounts_are_exact_and_numbers_are_accepted(api: ApiClient) -> None:
    assert add_on(api, "tiny", amount=0.1)["amount"] == "0.1"
    assert add_on(api, "fine", amount="0.000000000001")["amount"] == "0.000000000001"


def test_list_is_paginated_newest_first(api: ApiClient) -> None:
    for i, code in enumerate(("a", "b", "c")):
        api.clock.set(api.clock.now().replace(minute=i))
        add_on(api, code)
    first = api.ok("GET", "/add-ons", params={"limit": 2})
    assert [a["code"] for a in first["data"]] == ["c", "b"]
    assert first["nextCursor"]
    rest = api.ok("GET", "/add-ons", params={"limit": 2, "cursor": first["nextCursor"]})
    assert [a["code"] for a in rest["data"]] == ["a"]
    assert rest["nextCursor"] is None


def test_patch_changes_only_what_it_sends(api: ApiClient) -> None:
    vat(api)
    add_on(api, description="keep me")
    api.clock.advance(timedelta(minutes=5))
    patched = api.ok("PATCH", "/add-ons/setup", json={"amount": "40", "taxCodes": ["vat20"]})
    assert (patched["amount"], patched["taxCodes"], patched["name"]) == ("40", ["vat20"], "Setup")
    assert patched["description"] == "keep me"
    assert patched["updatedAt"] == "2026-11-01T09:05:00Z"
    cleared = api.ok("PATCH", "/add-ons/setup", json={"description": None, "taxCodes": []})
    assert (cleared["description"], cleared["taxCodes"]) == (None, [])


def test_delete_removes_it(api: ApiClient) -> None:
    add_on(api)
    assert api.delete("/add-ons/setup").status_code == 204
    api.error("GET", "/add-ons/setup", 404)
    api.error("DELETE", "/add-ons/setup", 404)
    api.error("PATCH", "/add-ons/setup", 404, json={"name": "x"})


def test_a_duplicate_code_is_a_conflict(api: ApiClient) -> None:
    add_on(api)
    error = api.error(
        "POST",
        "/add-ons",
        409,
        json={"code": "setup", "name": "Again", "amount": "1", "currency": "USD"},
    )
    assert error["code"] == "duplicate"
    assert "setup" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.0000000000001"}, "amount"),
        ({"amount": "1000000000000"}, "amount"),
        ({"currency": "ZZZ"}, "currency"),
        ({"taxCodes": ["nope"]}, "nope"),
        ({"unknownField": 1}, "unknownField"),
        ({"code": "bad code"}, "code"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_add_ons_are_refused(api: ApiClient, body: dict[str, object], field: str) -> None:
    request = {"code": "setup", "name": "Setup", "amount": "10", "currency": "USD", **body}
    error = api.error("POST", "/add-ons", 422, json=request)
    assert field in str(error)
    api.error("GET", "/add-ons/setup", 404)


def test_patch_refuses_what_creation_refuses(api: ApiClient) -> None:
    add_on(api)
    api.error("PATCH", "/add-ons/setup", 422, json={"taxCodes": ["nope"]})
    api.error("PATCH", "/add-ons/setup", 422, json={"amount": "-2"})
    api.error("PATCH", "/add-ons/setup", 422, json={"code": "other"})
    assert api.ok("GET", "/add-ons/setup")["amount"] == "33.33"
