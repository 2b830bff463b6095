"""The ledger-only API answers as the full one does for what needs only the ledger."""

from __future__ import annotations

import pytest

from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger


def test_customers_round_trip_with_the_frozen_clock(api: ApiClient) -> None:
    created = api.customer("acme", netPaymentTermDays=15)
    assert created["netPaymentTermDays"] == 15
    assert api.ok("GET", "/customers/acme")["externalId"] == "acme"
    assert api.clock.now() == DEFAULT_NOW


def test_the_tenant_key_is_required(api: ApiClient) -> None:
    response = api.get("/customers", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
