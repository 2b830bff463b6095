"""The portal link and the account API over the ledger (SQLite and PostgreSQL): what a
customer's token reads, what it is refused, and that it never reaches another customer
or another tenant."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import orjson
import pytest

from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.portal.conftest import NOW, Account, account, portal_url, seed

pytestmark = pytest.mark.ledger


# -- the portal link -------------------------------------------------------------------


def test_portal_url_signs_a_token_of_one_customer_for_an_hour_by_default(api: ApiClient) -> None:
    seed(api)
    body = portal_url(api, "acme")
    assert set(body) == {"url", "token", "expiresAt"}
    assert body["expiresAt"] == "2026-11-10T13:00:00Z"
    assert body["token"].startswith("mlp1.")
    assert body["url"].startswith("http://127.0.0.1:8080/portal?token=mlp1.")
    assert body["token"] != portal_url(api, "acme")["token"]  # a nonce each time


def test_portal_url_lifetime_is_bounded(api: ApiClient) -> None:
    seed(api)
    assert portal_url(api, "acme", expiresInMinutes=5)["expiresAt"] == "2026-11-10T12:05:00Z"
    week = portal_url(api, "acme", expiresInMinutes=7 * 24 * 60)["expiresAt"]
    assert week == "2026-11-17T12:00:00Z"
    for bad in (0, -1, 7 * 24 * 60 + 1, "soon"):
        error = api.error("POST", "/customers/acme/portal-url", 422, json={"expiresInMinutes": bad})
        assert error["code"] == "validation_error" and "expiresInMinutes" in error["message"]
    error = api.error("POST", "/customers/acme/portal-url", 422, json={"lifetime": 5})
    assert "lifetime" in error["message"]


def test_portal_url_needs_the_tenants_key_and_customer(api: ApiClient) -> None:
    seed(api)
    assert api.error("POST", "/customers/nobody/portal-url", 404)["code"] == "not_found"
    response = api.post("/customers/acme/portal-url", headers={"Authorization": ""})
    assert response.status_code == 401
    token = portal_url(api, "acme")["token"]
    # A portal token cannot make portal links (or do anything else a tenant does).
    response = api.post("/customers/acme/portal-url", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


# -- what the token reads --------------------------------------------------------------


def test_subscription_is_the_current_one_with_its_plan(api: ApiClient) -> None:
    ids = seed(api)
    body = account(api, "acme").ok("/account/subscription")
    assert body["customer"] == {
        "externalId": "acme",
        "name": "Acme",
        "email": None,
        "currency": "USD",
    }
    assert body["subscription"]["id"] == ids["subscription"]
    assert body["subscription"]["status"] == "active"
    assert body["plan"]["code"] == "pro" and body["plan"]["baseFee"] == "49"
    assert body["plan"]["charges"][0]["includedQuantity"] == "1000"
    # Without a subscription: the customer, and nulls.
    assert account(api, "globex").ok("/account/subscription")["subscription"] is None


def test_invoices_are_the_customers_own_issued_ones(api: ApiClient) -> None:
    ids = seed(api)
    acme = account(api, "acme")
    listed = acme.ok("/account/invoices")
    assert [i["id"] for i in listed["data"]] == [ids["acme_open"]]  # no DRAFT, no globex
    assert listed["data"][0]["total"] == "120.00" and listed["data"][0]["status"] == "OPEN"
    assert acme.ok("/account/invoices?status=open")["data"][0]["id"] == ids["acme_open"]
    assert acme.ok("/account/invoices?status=PAID")["data"] == []
    one = acme.ok(f"/account/invoices/{ids['acme_open']}")
    assert one["customerId"] == "acme" and one["lines"][0]["amount"] == "120.00"
    # Another customer's invoice and a DRAFT answer as an id that does not exist.
    for hidden in (ids["globex_open"], ids["acme_draft"], "inv_nope"):
        error = acme.error(f"/account/invoices/{hidden}", 404)
        assert error == {
            "code": "not_found",
            "message": f"invoice {hidden!r} not found",
            "details": None,
        }
        assert acme.error(f"/account/invoices/{hidden}/pdf", 404)["code"] == "not_found"
    globex = account(api, "globex")
    assert [i["id"] for i in globex.ok("/account/invoices")["data"]] == [ids["globex_open"]]


def test_invoice_pages_follow_the_cursor(api: ApiClient) -> None:
    seed(api)
    for index in range(3, 6):
        api.open_invoice("acme", "1.00", index=index)
    acme = account(api, "acme")
    first = acme.ok("/account/invoices?limit=2")
    second = acme.ok(f"/account/invoices?limit=2&cursor={first['nextCursor']}")
    assert len(first["data"]) == 2 and len(second["data"]) == 2 and second["nextCursor"] is None
    assert acme.error("/account/invoices?cursor=%%%", 422)["code"] == "validation_error"


def test_invoice_pdf_is_the_document(api: ApiClient) -> None:
    ids = seed(api)
    response = account(api, "acme").get(f"/account/invoices/{ids['acme_open']}/pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response.headers["cache-control"] == "no-store"


def test_wallet_and_plans(api: ApiClient) -> None:
    seed(api)
    acme = account(api, "acme")
    wallets = acme.ok("/account/wallet")["data"]
    assert [(w["name"], w["balance"], w["currency"]) for w in wallets] == [
        ("Prepaid", "25.00", "USD")
    ]
    assert account(api, "globex").ok("/account/wallet")["data"] == []
    # Plans on offer: the tenant's, in the customer's currency.
    assert [p["code"] for p in acme.ok("/account/plans")["data"]] == ["pro"]


def test_usage_without_a_usage_store_is_a_clear_503(api: ApiClient) -> None:
    seed(api)
    error = account(api, "acme").error("/account/usage", 503)
    assert error["code"] == "usage_unavailable"
    assert "usage store" in error["message"]


# -- what the token is refused ---------------------------------------------------------


def _tampered(token: str, **changes: Any) -> str:
    version, payload, signature = token.split(".")
    body = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    forged = base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()
    return f"{version}.{forged}.{signature}"


def test_a_tenant_key_does_not_open_the_account_api(api: ApiClient) -> None:
    seed(api)
    for url in ("/account/subscription", "/account/invoices", "/account/usage"):
        response = api.get(url)  # the tenant's key and X-Tenant-Id
        assert response.status_code == 403, url
        error = response.json()["error"]
        assert error["code"] == "portal_token_required"
        assert "portal-url" in error["message"]


def test_missing_malformed_forged_or_tampered_tokens_are_401(api: ApiClient) -> None:
    seed(api)
    acme = account(api, "acme")
    token = acme.token
    globex_id = _customer_id(api, "globex")
    cases = {
        "": "unauthorized",
        "Basic abc": "unauthorized",
        "Bearer ": "unauthorized",
        "Bearer nonsense": "invalid_token",
        "Bearer mlp1.": "invalid_token",
        "Bearer mlp1.e30.!!!": "invalid_token",
        f"Bearer {token}x": "invalid_token",
        f"Bearer {token[:-2]}": "invalid_token",
        f"Bearer {_tampered(token, c=globex_id)}": "invalid_token",
        f"Bearer {_tampered(token, exp=4_102_444_800)}": "invalid_token",
        f"Bearer mlp2.{token.split('.', 1)[1]}": "invalid_token",
    }
    for header, code in cases.items():
        response = acme.get("/account/subscription", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == code, header


def test_a_token_of_another_servers_key_is_invalid(ledger_url: str, tmp_path: Any) -> None:
    with ledger_api(ledger_url, tmp_path / "a", now=NOW, secret_key="one") as a:
        a.customer("acme")
        token = portal_url(a, "acme")["token"]
        with ledger_api(ledger_url, tmp_path / "b", now=NOW, secret_key="two") as b:
            error = Account(b.app, token).error("/account/subscription", 401)
            assert error["code"] == "invalid_token"
        assert Account(a.app, token).ok("/account/subscription")["customer"]["externalId"]


def test_an_expired_token_is_refused_with_its_expiry(api: ApiClient) -> None:
    seed(api)
    acme = account(api, "acme", expiresInMinutes=5)
    api.clock.advance(timedelta(minutes=4, seconds=59))
    acme.ok("/account/subscription")
    api.clock.advance(timedelta(seconds=1))
    error = acme.error("/account/subscription", 401)
    assert error["code"] == "token_expired"
    assert "2026-11-10T12:05:00Z" in error["message"]


def test_a_portal_token_opens_no_tenant_endpoint(api: ApiClient) -> None:
    ids = seed(api)
    token = portal_url(api, "acme")["token"]
    as_customer = {"Authorization": f"Bearer {token}"}
    with_tenant = {**as_customer, "X-Tenant-Id": api.tenant_id}
    for url in ("/customers", "/invoices", f"/invoices/{ids['acme_open']}", "/customers/acme"):
        for headers in (as_customer, with_tenant):
            response = api.get(url, headers=headers)
            assert response.status_code == 401, (url, headers)
            assert response.json()["error"]["code"] == "portal_token_not_accepted"


# -- tenant isolation ------------------------------------------------------------------


def test_another_tenant_never_reaches_this_tenants_customers(
    api: ApiClient, other: ApiClient
) -> None:
    ids = seed(api)
    # The other tenant has a customer of the same external id, with its own invoice.
    other.customer("acme")
    theirs = other.open_invoice("acme", "9.00")
    assert other.error("POST", "/customers/globex/portal-url", 404)["code"] == "not_found"
    # With this tenant's id in the header, the other's key is refused (its tenant's key).
    response = other.post("/customers/acme/portal-url", headers={"X-Tenant-Id": api.tenant_id})
    assert response.status_code == 403
    their_acme = account(other, "acme")
    assert [i["id"] for i in their_acme.ok("/account/invoices")["data"]] == [theirs["id"]]
    assert their_acme.ok("/account/wallet")["data"] == []
    assert their_acme.ok("/account/plans")["data"] == []
    assert their_acme.ok("/account/subscription")["subscription"] is None
    for invoice_id in (ids["acme_open"], ids["globex_open"]):
        assert their_acme.error(f"/account/invoices/{invoice_id}", 404)["code"] == "not_found"
        assert their_acme.error(f"/account/invoices/{invoice_id}/pdf", 404)["code"] == "not_found"
    # And this tenant's acme sees none of theirs.
    mine = account(api, "acme")
    assert theirs["id"] not in {i["id"] for i in mine.ok("/account/invoices")["data"]}
    assert mine.error(f"/account/invoices/{theirs['id']}", 404)["code"] == "not_found"
    # A token re-pointed at the other tenant's customer does not verify.
    other_acme_id = _customer_id(other, "acme")
    forged = _tampered(mine.token, t=other.tenant_id, c=other_acme_id)
    assert Account(api.app, forged).error("/account/invoices", 401)["code"] == "invalid_token"


def _customer_id(api: ApiClient, external_id: str) -> str:
    customer: dict[str, Any] = api.ok("GET", f"/customers/{external_id}")
    return str(customer["id"])
