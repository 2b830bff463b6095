"""Flutterwave Standard pages and Flutterwave's webhooks, through the HTTP API, against a
local server that checks and answers as Flutterwave documents
(tests/helpers/flutterwave_server.py): `POST /invoices/{id}/payment-url` makes a hosted
page under our tx_ref; the customer pays on it; the `charge.completed` webhook posted to
`POST /payment-providers/{id}/webhooks` pays the invoice, once. Also: a failed payment on
the page, a refund Flutterwave reports failed, and the checks of `verif-hash`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers.flutterwave_server import (
    PAYMENTS,
    SECRET_HASH,
    SECRET_KEY,
    TOKEN,
    FakeFlutterwave,
    fake_flutterwave,
)
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

EMAIL = "billing@acme.example"
DECLINING = "flw-t1nf-declines-m03k"


@pytest.fixture
def flutterwave() -> Iterator[FakeFlutterwave]:
    with fake_flutterwave() as server:
        server.add_card(TOKEN, EMAIL)
        server.add_card(DECLINING, EMAIL, declines=True)
        yield server


@pytest.fixture
def provider(api: ApiClient, flutterwave: FakeFlutterwave) -> str:
    config = {"secretKey": SECRET_KEY, "secretHash": SECRET_HASH, "baseUrl": flutterwave.url}
    created = api.ok(
        "POST", "/payment-providers", json={"provider": "flutterwave", "config": config}
    )
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """Flutterwave, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _unpaid(api: ApiClient, total: str = "123.45") -> str:
    """An OPEN invoice: the card on file declined at finalize."""
    api.customer(
        "acme", email=EMAIL, paymentProvider="flutterwave", paymentProviderCustomerId=DECLINING
    )
    invoice = api.open_invoice("acme", total)
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", total)
    return str(invoice["id"])


def _post(client: TestClient, provider: str, webhook: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = webhook
    return client.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)


def test_a_paid_page_pays_the_invoice_once(
    api: ApiClient, flutterwave: FakeFlutterwave, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    page = api.post(f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/ok"})
    assert page.status_code == 201, page.text
    link = page.json()
    key = f"{invoice}/link-1"
    assert {k: v for k, v in link.items() if k != "expiresAt"} == {
        "invoiceId": invoice,
        "provider": "flutterwave",
        "url": f"{flutterwave.url}/v3/hosted/pay/00000001",
        "reference": key,  # Flutterwave names the page by our tx_ref alone
        "amount": "123.45",
        "currency": "USD",
    }
    [made] = flutterwave.posts(PAYMENTS)
    sent = made.json()
    assert (sent["tx_ref"], sent["amount"], sent["currency"]) == (key, Decimal("123.45"), "USD")
    assert (sent["redirect_url"], sent["customer"]["email"]) == ("https://a.test/ok", EMAIL)
    again = api.post(f"/invoices/{invoice}/payment-url", json={})
    assert (again.status_code, again.json()) == (200, link)

    transaction = flutterwave.pay_page(key)
    paid = _post(stranger, provider, flutterwave.charge_webhook(key))
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    redelivered = _post(stranger, provider, flutterwave.charge_webhook(key))
    assert redelivered.json() == {"received": 1, "applied": 0, "ignored": 0, "duplicates": 1}
    done = api.ok("GET", f"/invoices/{invoice}")
    assert (done["status"], done["amountDue"], done["amountPaid"]) == ("PAID", "0.00", "123.45")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    assert (payment["provider"], payment["reference"]) == ("flutterwave", str(transaction))


def test_a_failed_payment_on_the_page_leaves_the_invoice_open(
    api: ApiClient, flutterwave: FakeFlutterwave, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api, "30.00")
    api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/"})
    flutterwave.pay_page(f"{invoice}/link-1", success=False)
    answer = _post(stranger, provider, flutterwave.charge_webhook(f"{invoice}/link-1"))
    assert answer.json() == {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    # The charge declined at finalize, told again by webhook: it stays failed.
    late = _post(stranger, provider, flutterwave.charge_webhook(f"{invoice}/finalize"))
    assert late.json()["ignored"] == 1


def test_a_refund_flutterwave_reports_failed_is_marked_failed(
    api: ApiClient, flutterwave: FakeFlutterwave, provider: str, stranger: TestClient
) -> None:
    api.customer(
        "acme", email=EMAIL, paymentProvider="flutterwave", paymentProviderCustomerId=TOKEN
    )
    invoice = api.open_invoice("acme", "60.00")
    assert invoice["status"] == "PAID"
    body = {"invoiceId": invoice["id"], "amount": "20.00", "reason": "OTHER", "type": "refund"}
    note = api.ok("POST", "/credit-notes", json=body)
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    assert api.ok("POST", f"/credit-notes/{note['id']}/apply")["refundStatus"] == "succeeded"
    [refund] = flutterwave.refunds
    answer = _post(stranger, provider, flutterwave.refund_webhook(refund["id"], status="failed"))
    assert answer.json()["applied"] == 1
    assert api.ok("GET", f"/credit-notes/{note['id']}")["refundStatus"] == "failed"


def test_a_wrong_or_missing_hash_changes_nothing(
    api: ApiClient, flutterwave: FakeFlutterwave, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/"})
    flutterwave.pay_page(f"{invoice}/link-1")
    body, headers = flutterwave.charge_webhook(f"{invoice}/link-1")
    url = f"/payment-providers/{provider}/webhooks"
    refused = [
        _post(stranger, provider, flutterwave.charge_webhook(f"{invoice}/link-1", secret_hash="x")),
        stranger.post(url, content=body, headers={"Content-Type": "application/json"}),
        stranger.post(url, content=b"not json", headers=headers),
    ]
    assert [r.status_code for r in refused] == [400] * 3
    assert {r.json()["error"]["code"] for r in refused} == {"webhook_rejected"}
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []
    # Without a secretHash in the config, nothing is accepted.
    api.ok("PATCH", f"/payment-providers/{provider}", json={"config": {"secretHash": None}})
    answer = stranger.post(url, content=body, headers=headers)
    assert answer.status_code == 400
    assert "secretHash" in answer.json()["error"]["message"]


def test_a_page_needs_the_customers_email_and_a_success_url(
    api: ApiClient, flutterwave: FakeFlutterwave, provider: str
) -> None:
    invoice = _unpaid(api)
    assert api.error("POST", f"/invoices/{invoice}/payment-url", 422)["code"] == (
        "redirect_url_required"
    )
    api.customer("mute", paymentProvider="flutterwave", paymentProviderCustomerId=TOKEN)
    mute = api.open_invoice("mute", "10.00", index=1)
    problem = api.error(
        "POST", f"/invoices/{mute['id']}/payment-url", 422, json={"successUrl": "https://a/"}
    )
    assert problem["code"] == "customer_email_required"
    assert flutterwave.posts(PAYMENTS) == []


def test_a_success_flutterwave_does_not_confirm_is_not_applied(
    api: ApiClient, flutterwave: FakeFlutterwave, provider: str, stranger: TestClient
) -> None:
    """The verif-hash is a shared secret, not a signature of the body: a post that knows
    it and claims a success is checked against Flutterwave's own record first."""
    invoice = _unpaid(api, "30.00")
    api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/"})
    key = f"{invoice}/link-1"
    transaction = flutterwave.pay_page(key, success=False)
    forged = _post(stranger, provider, flutterwave.charge_webhook(key, status="successful"))
    assert forged.json() == {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
    asked = [r.path for r in flutterwave.server.requests if r.path.endswith("/verify")]
    assert asked == [f"/v3/transactions/{transaction}/verify"]
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    [note] = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    # As Flutterwave's record says: a failed payment, on a page still open.
    assert (note["succeeded"], note["final"], note["effect"]) == (False, True, "ignored")
