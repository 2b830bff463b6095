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
