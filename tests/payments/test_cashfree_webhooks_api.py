"""Cashfree's Payment Links and its signed webhooks, through the HTTP API, against the
local fake (tests/helpers/cashfree_server.py): `POST /invoices/{id}/payment-url` makes a
link; the payer pays it; the PAYMENT_LINK_EVENT posted to
`POST /payment-providers/{id}/webhooks` pays the invoice once. A subscription charge
collected later (eNACH) is settled or failed by its subscription payment event."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from invoicing.models import PaymentAttemptRow
from tests.helpers.cashfree_server import CLIENT_ID, CLIENT_SECRET, FakeCashfree, fake_cashfree
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger


@pytest.fixture
def cashfree(api: ApiClient) -> Iterator[FakeCashfree]:
    with fake_cashfree() as server:
        server.now = api.clock.now()
        server.add_subscription("sub_declines", declines=True)
        server.add_subscription("sub_enach", settles="PENDING")
        server.add_subscription("sub_no_phone", declines=True, phone=None)
        yield server


@pytest.fixture
def provider(api: ApiClient, cashfree: FakeCashfree) -> str:
    config = {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "baseUrl": cashfree.url}
    created = api.ok("POST", "/payment-providers", json={"provider": "cashfree", "config": config})
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """Cashfree, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _post(
    stranger: TestClient, provider: str, notification: tuple[bytes, dict[str, str]]
) -> object:
    body, headers = notification
    answer = stranger.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _invoice(api: ApiClient, subscription: str, total: str = "1234.50") -> str:
    api.customer("acme", currency="INR", email="ap@acme.example", paymentProvider="cashfree",
                 paymentProviderCustomerId=subscription)  # fmt: skip
    return str(api.open_invoice("acme", total)["id"])


def _attempt(api: ApiClient, invoice_id: str) -> PaymentAttemptRow:
    with api.runtime.sessions() as session:
        return session.execute(
            select(PaymentAttemptRow)
            .where(PaymentAttemptRow.invoice_id == invoice_id)
            .order_by(PaymentAttemptRow.created_at.desc(), PaymentAttemptRow.id.desc())
            .limit(1)
        ).scalar_one()


def test_a_paid_link_pays_the_invoice_once(
    api: ApiClient, cashfree: FakeCashfree, provider: str, stranger: TestClient
) -> None:
    invoice = _invoice(api, "sub_declines")  # the charge at finalize was declined
    page = api.post(f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/ok"})
    assert page.status_code == 201, page.text
    link = page.json()
    link_id = "cf-" + hashlib.sha256(f"{invoice}/link-1".encode()).hexdigest()[:32]
    assert (link["provider"], link["reference"], link["amount"], link["currency"]) == (
        "cashfree",
        link_id,
        "1234.50",
        "INR",
    )
    assert link["url"] == cashfree.links[link_id]["link_url"]
    [made] = cashfree.posts("/links")
    assert made.json()["customer_details"]["customer_phone"] == "9876543210"
    assert made.json()["link_notes"]["meterline_key"] == f"{invoice}/link-1"
    assert api.post(f"/invoices/{invoice}/payment-url", json={}).json() == link  # open: again
    assert len(cashfree.posts("/links")) == 1

    order = cashfree.pay_link(link_id)
    paid_event = cashfree.notification(cashfree.link_event(link_id, order))
    assert _post(stranger, provider, paid_event) == {
        "received": 1, "applied": 1, "ignored": 0, "duplicates": 0,
    }  # fmt: skip
    assert _post(stranger, provider, paid_event)["duplicates"] == 1  # type: ignore[index]
    paid = api.ok("GET", f"/invoices/{invoice}")
    assert (paid["status"], paid["amountDue"], paid["amountPaid"]) == ("PAID", "0.00", "1234.50")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    # What a refund of it needs: the order the link made.
    assert (payment["provider"], payment["reference"]) == ("cashfree", f"order:{order}")


def test_no_phone_no_link(api: ApiClient, cashfree: FakeCashfree, provider: str) -> None:
    invoice = _invoice(api, "sub_no_phone")
    error = api.error("POST", f"/invoices/{invoice}/payment-url", 422, json={})
    assert error["code"] == "payer_phone_required"
    assert cashfree.posts("/links") == []


def test_a_charge_collected_later_is_settled_by_its_webhook(
    api: ApiClient, cashfree: FakeCashfree, provider: str, stranger: TestClient
) -> None:
    invoice = _invoice(api, "sub_enach")
    attempt = _attempt(api, invoice)
    assert attempt.status == "processing"
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    payment_id = str(attempt.provider_reference).split("/")[1]
    notice = cashfree.payment_event(payment_id, "SUBSCRIPTION_PAYMENT_NOTIFICATION_INITIATED")
    assert _post(stranger, provider, cashfree.notification(notice))["ignored"] == 1  # type: ignore[index]
    success = cashfree.notification(cashfree.payment_event(payment_id))
    assert _post(stranger, provider, success)["applied"] == 1  # type: ignore[index]
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "PAID"


def test_a_failed_charge_fails_the_attempt(
    api: ApiClient, cashfree: FakeCashfree, provider: str, stranger: TestClient
) -> None:
    invoice = _invoice(api, "sub_enach")
    payment_id = str(_attempt(api, invoice).provider_reference).split("/")[1]
    failed = cashfree.notification(
        cashfree.payment_event(payment_id, "SUBSCRIPTION_PAYMENT_FAILED")
    )
    assert _post(stranger, provider, failed)["applied"] == 1  # type: ignore[index]
    assert _attempt(api, invoice).status == "failed"
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"


def test_forged_and_stale_webhooks_are_refused_and_change_nothing(
    api: ApiClient, cashfree: FakeCashfree, provider: str, stranger: TestClient
) -> None:
    invoice = _invoice(api, "sub_enach")
    payment_id = str(_attempt(api, invoice).provider_reference).split("/")[1]
    event = cashfree.payment_event(payment_id)
    body, headers = cashfree.notification(event)
    url = f"/payment-providers/{provider}/webhooks"
    for forged_body, forged_headers in (
        cashfree.notification(event, secret="not the client secret"),
        cashfree.notification(event, at=api.clock.now() - timedelta(minutes=10)),
        (body.replace(b"SUCCESS", b"SUCCES5"), headers),
        (body, {"content-type": "application/json"}),
    ):
        refused = stranger.post(url, content=forged_body, headers=forged_headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "webhook_rejected"
    assert _attempt(api, invoice).status == "processing"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []
