"""Fixtures of the portal tests: a tenant's client over a fresh ledger, a second tenant
of the same server, and clients that hold a customer's portal token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoicing.db import transaction
from invoicing.tenants import create_tenant
from tests.helpers.ledger_api import ApiClient, ledger_api

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
SECRET = "portal-tests-secret"


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=NOW, secret_key=SECRET) as client:
        yield client


@pytest.fixture
def other(api: ApiClient) -> ApiClient:
    """A second tenant of the same server (same ledger, same signing key)."""
    with transaction(api.runtime.sessions) as session:
        creds = create_tenant(session, "other")
    return ApiClient(api.app, api.runtime, creds.tenant_id, creds.api_key)


class Account(TestClient):
    """The account API as a customer's portal token reaches it: no tenant header."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(
            app,
            base_url="http://testserver/api/v1",
            headers={"Authorization": f"Bearer {token}"},
        )
        self.token = token

    def ok(self, url: str, **kwargs: Any) -> Any:
        response = self.get(url, **kwargs)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text}"
        return response.json()

    def error(self, url: str, status: int, **kwargs: Any) -> dict[str, Any]:
        response = self.get(url, **kwargs)
        assert response.status_code == status, f"GET {url}: {response.status_code} {response.text}"
        body: dict[str, Any] = response.json()["error"]
        return body


def portal_url(api: ApiClient, customer: str, **body: Any) -> dict[str, Any]:
    """POST /customers/{customer}/portal-url (201) with `body`; its response."""
    response = api.post(f"/customers/{customer}/portal-url", json=body or None)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def account(api: ApiClient, customer: str, **body: Any) -> Account:
    """A client of the account API with a fresh portal token of `customer`."""
    return Account(api.app, portal_url(api, customer, **body)["token"])


def browser(api: ApiClient) -> TestClient:
    """A client of the portal pages (no credentials; it keeps cookies, follows nothing)."""
    return TestClient(api.app, base_url="http://testserver", follow_redirects=False)


def seed(api: ApiClient, *, wallet: bool = True) -> dict[str, Any]:
    """A catalog, two USD customers (acme subscribed, with an OPEN and a DRAFT invoice
    and a wallet; globex with an OPEN invoice); the ids a test needs."""
    api.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "count"})
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "49",
            "charges": [
                {
                    "metric": "calls",
                    "model": "per_unit",
                    "properties": {"unitAmount": "0.01"},
                    "includedQuantity": "1000",
                    "hardCap": "5000",
                }
            ],
        },
    )
    api.ok(
        "POST",
        "/plans",
        json={"code": "euro", "name": "Euro", "currency": "EUR", "interval": "monthly"},
    )
    api.customer("acme")
    api.customer("globex")
    subscription = api.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01"},
    )
    acme_open = api.open_invoice("acme", "120.00")
    acme_draft = api.draft("acme", "7.00", index=1)
    globex_open = api.open_invoice("globex", "300.00", index=2)
    if wallet:
        api.ok("POST", "/wallets", json={"customerId": "acme", "name": "Prepaid", "credits": "25"})
    return {
        "subscription": subscription["id"],
        "acme_open": acme_open["id"],
        "acme_draft": acme_draft,
        "globex_open": globex_open["id"],
    }
