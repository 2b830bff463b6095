"""The dashboard's session and its boundaries, over HTTP (no browser needed): the
cookie's flags over https, expiry on the runtime's clock, a revoked key, a forged
cookie, no open redirect, and another tenant's invoices out of reach."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from invoicing.db import transaction
from invoicing.models import ApiKey
from invoicing.tenants import create_tenant
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.ledger


def _client(board: Dashboard, base_url: str = "http://testserver") -> TestClient:
    return TestClient(board.api.app, base_url=base_url, follow_redirects=False)


def _sign_in(client: TestClient, tenant_id: str, api_key: str, next: str = "") -> str:
    """Signs in; returns the session's CSRF token (from a page, as a browser gets it)."""
    answer = client.post(
        "/dashboard/sign-in", data={"tenant_id": tenant_id, "api_key": api_key, "next": next}
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/dashboard/invoices")
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found
    return found.group(1)


def test_cookie_flags_over_https(seeded: Dashboard) -> None:
    with _client(seeded, "https://dash.example") as client:
        answer = client.post(
            "/dashboard/sign-in",
            data={"tenant_id": seeded.api.tenant_id, "api_key": seeded.api.api_key},
        )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("meterline_dashboard=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/dashboard", "max-age=28800"} <= flags
    assert seeded.api.api_key not in cookie


def test_refusals_and_the_end_of_a_session(seeded: Dashboard) -> None:
    api = seeded.api
    with _client(seeded) as client:
        wrong = client.post("/dashboard/sign-in", data={"tenant_id": api.tenant_id, "api_key": "x"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        empty = client.post("/dashboard/sign-in", data={"tenant_id": "", "api_key": ""})
        assert empty.status_code == 422
        other_site = client.post(
            "/dashboard/sign-in",
            data={"tenant_id": api.tenant_id, "api_key": api.api_key},
            headers={"Origin": "https://evil.example"},
        )
        assert other_site.status_code == 403 and "set-cookie" not in other_site.headers

        # No open redirect: `next` may only name a dashboard page.
        answer = client.post(
            "/dashboard/sign-in",
            data={
                "tenant_id": api.tenant_id,
                "api_key": api.api_key,
                "next": "https://evil.example/",
            },
        )
        assert answer.headers["location"] == "/dashboard/usage"
        assert client.get("/dashboard/revenue").status_code == 200
        assert client.get("/dashboard/data/bill-runs").json() == {"data": []}

        # A forged cookie is no session.
        client.cookies.set("meterline_dashboard", "gAAAAAforged", path="/dashboard")
        assert client.get("/dashboard/revenue").status_code == 303
        assert client.get("/dashboard/data/usage").status_code == 401
        client.cookies.clear()

        _sign_in(client, api.tenant_id, api.api_key)
        api.clock.advance(timedelta(hours=8, minutes=1))  # past the session's lifetime
        expired = client.get("/dashboard/revenue")
        assert expired.status_code == 303
        assert expired.headers["location"] == "/dashboard/sign-in?next=/dashboard/revenue"

        _sign_in(client, api.tenant_id, api.api_key)
        with transaction(api.runtime.sessions) as session:
            for key in session.query(ApiKey).filter_by(tenant_id=api.tenant_id):
                key.revoked_at = api.clock.now()
        assert client.get("/dashboard/revenue").status_code == 303  # revoked: signed out


def test_another_tenants_invoices_are_out_of_reach(seeded: Dashboard) -> None:
    with transaction(seeded.api.runtime.sessions) as session:
        other = create_tenant(session, "other")
    with _client(seeded) as client:
        token = _sign_in(client, other.tenant_id, other.api_key)
        listed = client.get("/dashboard/invoices")
        assert seeded.draft_id not in listed.text and "INV-000001" not in listed.text
        assert "No invoices" in listed.text
        assert "Globex" not in client.get("/dashboard/customers").text

        pdf = client.get(f"/dashboard/invoices/{seeded.paid_id}/pdf")
        assert pdf.status_code == 404
        finalize = client.post(
            f"/dashboard/invoices/{seeded.draft_id}/finalize", data={"csrf_token": token}
        )
        assert finalize.status_code == 303
        assert "error=not_found" in finalize.headers["location"]
        void = client.post(f"/dashboard/invoices/{seeded.paid_id}/void", data={"csrf_token": token})
        assert "error=not_found" in void.headers["location"]
        shown = client.get(finalize.headers["location"])
        assert "The action was refused (not_found)" in shown.text
    assert seeded.api.ok("GET", f"/invoices/{seeded.draft_id}")["status"] == "DRAFT"
    assert seeded.api.ok("GET", f"/invoices/{seeded.paid_id}")["status"] == "PAID"


def test_actions_without_a_session_change_nothing(seeded: Dashboard) -> None:
    with _client(seeded) as client:
        answer = client.post(f"/dashboard/invoices/{seeded.draft_id}/finalize", data={})
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/dashboard/sign-in")
        assert client.get(f"/dashboard/invoices/{seeded.paid_id}/pdf").status_code == 303
    assert seeded.api.ok("GET", f"/invoices/{seeded.draft_id}")["status"] == "DRAFT"
