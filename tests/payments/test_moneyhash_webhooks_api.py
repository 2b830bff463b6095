"""MoneyHash's hosted checkout and its signed events, through the HTTP API, against a
local server that checks and answers as MoneyHash documents
(tests/helpers/moneyhash_server.py): `POST /invoices/{id}/payment-url` makes an intent
without a card token; the payer pays on its embed_url; the events MoneyHash posts to
`POST /payment-providers/{id}/webhooks` pay the invoice, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoicing.payments.links import LINK_LIFETIME
from tests.helpers.ledger_api import ApiClient
from tests.helpers.moneyhash_server import (
    API_KEY,
    CARD_TOKEN,
    CUSTOMER,
    EMBED,
    INTENTS,
    SIGNATURE_KEY,
    FakeMoneyhash,
    fake_moneyhash,
    signature_v3,
)

pytestmark = pytest.mark.ledger

DECLINING_TOKEN = "0a1b2c3d-declines"
HOOK = "https://billing.example/api/v1/payment-providers/moneyhash/webhooks"


@pytest.fixture
def moneyhash(api: ApiClient) -> Iterator[FakeMoneyhash]:
    # `expires_after_seconds` is counted from the LinkRequest's `requested_at`, the
    # runtime's clock: the fake stands at the same instant.
    with fake_moneyhash() as server:
        server.now = api.clock.now()
        server.store_card(CARD_TOKEN, CUSTOMER)
        server.store_card(DECLINING_TOKEN, CUSTOMER, declines=True)
        yield server


@pytest.fixture
def provider(api: ApiClient, moneyhash: FakeMoneyhash) -> str:
    config = {
        "apiKey": API_KEY,
        "signatureKey": SIGNATURE_KEY,
        "baseUrl": moneyhash.url,
        "webhookUrl": HOOK,
    }
    created = api.ok("POST", "/payment-providers", json={"provider": "moneyhash", "config": config})
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """MoneyHash, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _unpaid(api: ApiClient, total: str = "123.45") -> str:
    """An OPEN invoice whose charge at finalize was declined."""
    stored = f"{CUSTOMER}/{DECLINING_TOKEN}"
    api.customer("acme", paymentProvider="moneyhash", paymentProviderCustomerId=stored,
                 email="billing@acme.test")  # fmt: skip
    invoice = api.open_invoice("acme", total)
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", total)
    return str(invoice["id"])


def _post(client: TestClient, provider: str, notification: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = notification
    return client.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)


def test_a_paid_checkout_pays_the_invoice_once(
    api: ApiClient, moneyhash: FakeMoneyhash, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    page = api.post(
        f"/invoices/{invoice}/payment-url",
        json={"successUrl": "https://acme.test/paid", "cancelUrl": "https://acme.test/back"},
    )
    assert page.status_code == 201, page.text
    link = page.json()
    now = api.clock.now()
    expires = datetime.fromisoformat(link.pop("expiresAt").replace("Z", "+00:00"))
    # What the link was asked for: its lifetime from the runtime's clock, exactly.
    assert expires == now + LINK_LIFETIME
    assert link == {
        "invoiceId": invoice,
        "provider": "moneyhash",
        "url": f"{moneyhash.url}{EMBED}H02mhIntent/",
        "reference": "H02mhIntent",
        "amount": "123.45",
        "currency": "USD",
    }
    made = moneyhash.posts(INTENTS)[-1]
    body = made.json()
    assert body["expires_after_seconds"] == LINK_LIFETIME.total_seconds()
    assert "card_token" not in body and body["custom_fields"]["meterline_key"] == (
        f"{invoice}/link-1"
    )
    assert (body["billing_data"], body["customer"], body["webhook_url"]) == (
        {"first_name": "Acme", "email": "billing@acme.test"},
        CUSTOMER,
        HOOK,
    )
    assert (body["successful_redirect_url"], body["failed_redirect_url"]) == (
        "https://acme.test/paid",
        "https://acme.test/back",
    )
    # Asked again while it is open: the same page, nothing new at MoneyHash.
    again = api.post(f"/invoices/{invoice}/payment-url", json={})
    assert again.status_code == 200 and again.json()["reference"] == "H02mhIntent"
    assert len(moneyhash.intents) == 2  # the declined charge at finalize, then the page

    succeeded, processed = moneyhash.pay("H02mhIntent")
    first = _post(stranger, provider, succeeded)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    assert _post(stranger, provider, processed).json() == {
        "received": 1,
        "applied": 0,
        "ignored": 1,  # the same payment, told twice: applied once
        "duplicates": 0,
    }
    assert _post(stranger, provider, succeeded).json()["duplicates"] == 1
    paid = api.ok("GET", f"/invoices/{invoice}")
    assert (paid["status"], paid["amountDue"], paid["amountPaid"]) == ("PAID", "0.00", "123.45")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    assert (payment["provider"], payment["reference"], payment["amount"]) == (
        "moneyhash",
        "H02mhIntent",
        "123.45",
    )
    log = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    assert [n["effect"] for n in log] == ["ignored", "applied"]


def test_a_declined_card_or_an_expired_checkout_changes_nothing(
    api: ApiClient, moneyhash: FakeMoneyhash, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    link = api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a/"})
    answers = [
        _post(stranger, provider, moneyhash.fail(link["reference"])),
        _post(stranger, provider, moneyhash.expire(link["reference"])),
    ]
    assert [a.json() for a in answers] == [
        {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
    ] * 2
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payments?invoiceId={invoice}")["data"] == []


def test_forged_stale_and_unsigned_events_change_nothing(
    api: ApiClient, moneyhash: FakeMoneyhash, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    link = api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a/"})
    body, headers = moneyhash.pay(link["reference"])[0]
    stamp = str(int(api.clock.now().timestamp()))
    stale = str(int((api.clock.now() - timedelta(minutes=10)).timestamp()))
    url = f"/payment-providers/{provider}/webhooks"

    def signed(v3: str, at: str = stamp) -> dict[str, str]:
        return {"MoneyHash-Signature": f"t={at},v1=00,v2=00,v3={v3}"}

    refused = [
        stranger.post(url, content=body, headers=signed(signature_v3(body, stamp, "other"))),
        stranger.post(url, content=body, headers=signed(signature_v3(body, stale), stale)),
        stranger.post(url, content=body.replace(b"successful", b"succeeded!"), headers=headers),
        stranger.post(url, content=body, headers={"Content-Type": "application/json"}),
        stranger.post(url, content=b"[]x", headers=signed(signature_v3(b"[]x", stamp))),
    ]
    assert [r.status_code for r in refused] == [400] * 5
    assert {r.json()["error"]["code"] for r in refused} == {"webhook_rejected"}
    assert "does not match" in refused[0].json()["error"]["message"]
    assert "too long ago" in refused[1].json()["error"]["message"]
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []


def test_a_failed_refund_event_says_so_on_the_credit_note(
    api: ApiClient, moneyhash: FakeMoneyhash, provider: str, stranger: TestClient
) -> None:
    stored = f"{CUSTOMER}/{CARD_TOKEN}"
    api.customer("acme", paymentProvider="moneyhash", paymentProviderCustomerId=stored)
    invoice = api.open_invoice("acme", "120.00")
    assert invoice["status"] == "PAID"
    note = api.ok(
        "POST",
        "/credit-notes",
        json={"invoiceId": invoice["id"], "amount": "20.00", "reason": "OTHER", "type": "refund"},
    )
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    assert api.ok("POST", f"/credit-notes/{note['id']}/apply")["refundStatus"] == "succeeded"
    [refund] = moneyhash.refunds
    answer = _post(stranger, provider, moneyhash.settle_refund(refund["id"], "failed"))
    assert answer.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    assert api.ok("GET", f"/credit-notes/{note['id']}")["refundStatus"] == "failed"
