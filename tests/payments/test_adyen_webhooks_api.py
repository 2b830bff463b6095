"""Adyen's Pay by Link pages and its signed notifications, through the HTTP API, against a
local server that checks and answers as Adyen documents (tests/helpers/adyen_server.py):
`POST /invoices/{id}/payment-url` makes a payment link; the shopper pays on it; the
notification batch Adyen posts to `POST /payment-providers/{id}/webhooks` pays the
invoice, once. Also: a debit answered `Received` settled by its notification, and a
refund that Adyen reports failed later."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers.adyen_server import (
    API_KEY,
    HMAC_KEY,
    MERCHANT,
    PAYMENT_LINKS,
    TOKEN,
    FakeAdyen,
    fake_adyen,
)
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger

CONFIG = {"apiKey": API_KEY, "merchantAccount": MERCHANT, "hmacKey": HMAC_KEY}


@pytest.fixture
def adyen() -> Iterator[FakeAdyen]:
    with fake_adyen() as server:
        server.add_shopper("acme")
        server.add_shopper("sepa", pending=True)
        yield server


@pytest.fixture
def provider(api: ApiClient, adyen: FakeAdyen) -> str:
    config = {**CONFIG, "baseUrl": adyen.url}
    created = api.ok("POST", "/payment-providers", json={"provider": "adyen", "config": config})
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """Adyen, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _unpaid(api: ApiClient, total: str = "123.45") -> str:
    """An OPEN invoice: the shopper has no stored card, so finalize charged nothing."""
    api.customer("acme", paymentProvider="adyen", paymentProviderCustomerId="acme")
    invoice = api.open_invoice("acme", total)
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", total)
    return str(invoice["id"])


def _post(client: TestClient, adyen: FakeAdyen, provider: str, *items: dict[str, Any]) -> Any:
    body, headers = adyen.webhook(*items)
    return client.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)


def test_a_paid_link_pays_the_invoice_once(
    api: ApiClient, adyen: FakeAdyen, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    page = api.post(
        f"/invoices/{invoice}/payment-url",
        json={"successUrl": "https://acme.test/paid", "cancelUrl": "https://acme.test/back"},
    )
    assert page.status_code == 201, page.text
    link = page.json()
    assert link == {
        "invoiceId": invoice,
        "provider": "adyen",
        "url": f"{adyen.url}/pay/PL0000000000000001",
        "reference": "PL0000000000000001",
        "amount": "123.45",
        "currency": "USD",
        "expiresAt": link["expiresAt"],
    }
    [made] = adyen.posts(PAYMENT_LINKS)
    sent = made.json()
    assert made.headers["idempotency-key"] == sent["reference"] == f"{invoice}/link-1"
    assert sent["amount"] == {"value": 12345, "currency": "USD"}
    assert (sent["returnUrl"], sent["shopperReference"]) == ("https://acme.test/paid", "acme")
    assert link["expiresAt"] == sent["expiresAt"]  # as Adyen answered, our expiry
    assert sent["expiresAt"] > DEFAULT_NOW.isoformat()
    again = api.post(f"/invoices/{invoice}/payment-url", json={})
    assert (again.status_code, again.json()) == (200, link)
    assert len(adyen.posts(PAYMENT_LINKS)) == 1

    refused = adyen.pay_link(link["reference"], success=False)  # a first card refused
    psp = adyen.pay_link(link["reference"])
    first = _post(stranger, adyen, provider, adyen.notification(refused, success=False))
    assert first.json() == {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
    paid = _post(stranger, adyen, provider, adyen.notification(psp))
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    # Adyen retries until it gets a 2xx: the same item again changes nothing.
    redelivered = _post(stranger, adyen, provider, adyen.notification(psp))
    assert redelivered.json() == {"received": 1, "applied": 0, "ignored": 0, "duplicates": 1}
    done = api.ok("GET", f"/invoices/{invoice}")
    assert (done["status"], done["amountDue"], done["amountPaid"]) == ("PAID", "0.00", "123.45")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    assert (payment["provider"], payment["reference"], payment["amount"]) == (
        "adyen",
        psp,
        "123.45",
    )


def test_a_received_debit_is_settled_by_its_notification(
    api: ApiClient, adyen: FakeAdyen, provider: str, stranger: TestClient
) -> None:
    api.customer("sepa", paymentProvider="adyen", paymentProviderCustomerId=f"sepa/{TOKEN}")
    collected = api.open_invoice("sepa", "40.00")
    bounced = api.open_invoice("sepa", "15.00", index=1)
    assert [collected["status"], bounced["status"]] == ["OPEN", "OPEN"]  # both processing
    first, second = (p for p in adyen.payments)
    adyen.settle(first)
    adyen.settle(second, success=False)
    answer = _post(
        stranger,
        adyen,
        provider,
        adyen.notification(first),
        adyen.notification(second, success=False),
    )
    assert answer.json() == {"received": 2, "applied": 2, "ignored": 0, "duplicates": 0}
    assert api.ok("GET", f"/invoices/{collected['id']}")["status"] == "PAID"
    still = api.ok("GET", f"/invoices/{bounced['id']}")
    assert (still["status"], still["amountDue"]) == ("OPEN", "15.00")
    assert api.ok("GET", f"/payments?invoiceId={bounced['id']}")["data"] == []


def test_a_refund_adyen_reports_failed_is_marked_failed(
    api: ApiClient, adyen: FakeAdyen, provider: str, stranger: TestClient
) -> None:
    api.customer("acme", paymentProvider="adyen", paymentProviderCustomerId=f"acme/{TOKEN}")
    invoice = api.open_invoice("acme", "60.00")
    assert invoice["status"] == "PAID"
    body = {"invoiceId": invoice["id"], "amount": "20.00", "reason": "OTHER", "type": "refund"}
    note = api.ok("POST", "/credit-notes", json=body)
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    applied = api.ok("POST", f"/credit-notes/{note['id']}/apply")
    assert applied["refundStatus"] == "succeeded"  # received by Adyen
    [refund] = adyen.refunds
    answer = _post(stranger, adyen, provider, adyen.refund_notification(refund, "REFUND_FAILED"))
    assert answer.json()["applied"] == 1
    assert api.ok("GET", f"/credit-notes/{note['id']}")["refundStatus"] == "failed"


def test_forged_and_unsigned_notifications_change_nothing(
    api: ApiClient, adyen: FakeAdyen, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    link = api.ok("POST", f"/invoices/{invoice}/payment-url", json={})
    psp = adyen.pay_link(link["reference"])
    genuine = adyen.notification(psp)
    url = f"/payment-providers/{provider}/webhooks"
    forged = {**genuine, "merchantReference": f"{invoice}/link-2"}
    unsigned = {**genuine, "additionalData": {"paymentLinkId": link["reference"]}}
    body, headers = adyen.webhook(genuine)
    refused = [
        _post(stranger, adyen, provider, genuine, forged),  # one bad item spoils the post
        _post(stranger, adyen, provider, unsigned),
        stranger.post(url, content=body.replace(b'"success": "true"', b'"success": "TRUE"')),
        stranger.post(url, content=b"not json", headers=headers),
    ]
    assert [r.status_code for r in refused] == [400] * 4
    assert {r.json()["error"]["code"] for r in refused} == {"webhook_rejected"}
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []
    # A connection with no HMAC key accepts nothing at all.
    api.ok("DELETE", f"/payment-providers/{provider}")
    keyless = {"apiKey": API_KEY, "merchantAccount": MERCHANT, "baseUrl": adyen.url}
    bare = api.ok("POST", "/payment-providers", json={"provider": "adyen", "config": keyless})
    answer = _post(stranger, adyen, bare["id"], genuine)
    assert answer.status_code == 400
    assert "hmacKey" in answer.json()["error"]["message"]


def test_a_link_expires_when_asked_and_a_new_one_is_made_after(
    api: ApiClient, adyen: FakeAdyen, provider: str
) -> None:
    invoice = _unpaid(api, "10.00")
    first = api.ok("POST", f"/invoices/{invoice}/payment-url", json={})
    api.clock.advance(timedelta(hours=23))
    second = api.post(f"/invoices/{invoice}/payment-url", json={})
    assert second.status_code == 201
    assert second.json()["reference"] != first["reference"]
    keys = [p.headers["idempotency-key"] for p in adyen.posts(PAYMENT_LINKS)]
    assert keys == [f"{invoice}/link-1", f"{invoice}/link-2"]
