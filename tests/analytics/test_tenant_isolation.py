"""Tenant isolation: another tenant of the same ledger sees none of the seeded figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.analytics.conftest import NOW
from tests.analytics.test_revenue_analytics import RANGE, rows, seed
from tests.helpers.ledger_api import ApiClient, ledger_api

pytestmark = pytest.mark.ledger

ENDPOINTS = ("mrr", "gross-revenue", "invoice-collections", "invoiced-usage", "overdue-balances")


@pytest.fixture
def other(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path / "other", now=NOW) as client:
        yield client


def test_another_tenant_sees_none_of_the_figures(api: ApiClient, other: ApiClient) -> None:
    seed(api)
    for endpoint in ENDPOINTS:
        query = RANGE if endpoint != "overdue-balances" else ""
        assert rows(api, endpoint, query), endpoint  # the seeded tenant has figures
        assert rows(other, endpoint, query) == [], endpoint
        zeros = rows(other, endpoint, f"{query}&currency=USD")
        assert {r["amount"] for r in zeros} <= {"0.00"}, endpoint
        # The first tenant's customer is no customer of the other.
        other.error("GET", f"/analytics/{endpoint}?customerId=acme", 404)


def test_a_key_of_one_tenant_cannot_read_another(api: ApiClient, other: ApiClient) -> None:
    seed(api)
    for endpoint in ENDPOINTS:
        response = other.get(f"/analytics/{endpoint}", headers={"X-Tenant-Id": api.tenant_id})
        assert response.status_code == 403, endpoint
