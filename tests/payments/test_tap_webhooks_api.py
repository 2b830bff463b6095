"""Tap's hosted payment page and its signed posts, through the HTTP API, against a local
server that checks and answers as Tap documents (tests/helpers/tap_server.py):
`POST /invoices/{id}/payment-url` makes a `src_all` charge; the payer pays it; the post
Tap makes to `POST /payment-providers/{id}/webhooks` pays the invoice, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers.ledger_api import ApiClient
from tests.helpers.tap_server import (
    AGREEMENT,
    CARD,
    CHARGES,
    CUSTOMER,
    PAGE,
    SECRET_KEY,
    FakeTap,
    fake_tap,
    hashstring,
)

pytestmark = pytest.mark.ledger

DECLINING_CARD = "card_declines0000000000001"
HOOK = "https://billing.example/api/v1/payment-providers/tap/webhooks"


@pytest.fixture
def tap(api: ApiClient) -> Iterator[FakeTap]:
    with fake_tap() as server:
        server.now = api.clock.now()
        server.save_card(CARD, CUSTOMER, AGREEMENT)
        server.save_card(DECLINING_CARD, CUSTOMER, AGREEMENT, declines=True)
        yield server


@pytest.fixture
def provider(api: ApiClient, tap: FakeTap) -> str:
    config = {"secretKey": SECRET_KEY, "baseUrl": tap.url, "webhookUrl": HOOK}
    created = api.ok("POST", "/payment-providers", json={"provider": "tap", "config": config})
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """Tap, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _unpaid(api: ApiClient, total: str = "123.45", **customer: Any) -> str:
    """An OPEN invoice whose charge at finalize was declined."""
    saved = f"{CUSTOMER}/{DECLINING_CARD}/{AGREEMENT}"
    api.customer(
        "acme", **{"paymentProvider": "tap", "paymentProviderCustomerId": saved, **customer}
    )
    invoice = api.open_invoice("acme", total)
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", total)
    return str(invoice["id"])


def _post(client: TestClient, provider: str, notification: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = notification
    return client.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)


def test_a_paid_hosted_page_pays_the_invoice_once(
    api: ApiClient, tap: FakeTap, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    page = api.post(
        f"/invoices/{invoice}/payment-url",
        json={"successUrl": "https://acme.test/paid", "cancelUrl": "https://acme.test/back"},
    )
    assert page.status_code == 201, page.text
    link = page.json()
    [charge_id] = [c for c, charge in tap.charges.items() if charge["status"] == "INITIATED"]
    assert link == {
        "invoiceId": invoice,
        "provider": "tap",
        "url": f"{tap.url}{PAGE}?chg={charge_id}",
        "reference": charge_id,
        "amount": "123.45",
        "currency": "USD",
        "expiresAt": (api.clock.now() + timedelta(minutes=60)).isoformat().replace("+00:00", "Z"),
    }
    hosted = tap.posts(CHARGES)[-1].json()
    assert hosted["reference"]["idempotent"] == f"{invoice}/link-1"
    assert hosted["reference"]["transaction"] == f"{invoice}/link-1"
    assert (hosted["source"], hosted["customer"]) == ({"id": "src_all"}, {"id": CUSTOMER})
    assert (hosted["redirect"], hosted["post"]) == (
        {"url": "https://acme.test/paid"},
        {"url": HOOK},
    )
    # Asked again while it is open: the same page, nothing new at Tap.
    again = api.post(f"/invoices/{invoice}/payment-url", json={})
    assert (again.status_code, again.json()) == (200, link)
    assert len(tap.posts(CHARGES)) == 2  # the declined charge at finalize, then the page

    captured = tap.pay(charge_id)
    first = _post(stranger, provider, captured)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    assert _post(stranger, provider, captured).json() == {
        "received": 1,
        "applied": 0,
        "ignored": 0,
        "duplicates": 1,
    }
    paid = api.ok("GET", f"/invoices/{invoice}")
    assert (paid["status"], paid["amountDue"], paid["amountPaid"]) == ("PAID", "0.00", "123.45")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    assert (payment["provider"], payment["reference"], payment["amount"]) == (
        "tap",
        charge_id,
        "123.45",
    )
    log = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    assert [(n["eventId"], n["effect"]) for n in log] == [(f"{charge_id}:CAPTURED", "applied")]


def test_a_page_declined_or_abandoned_changes_nothing(
    api: ApiClient, tap: FakeTap, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    link = api.ok(
        "POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/"}
    )
    answer = _post(stranger, provider, tap.pay(link["reference"], "DECLINED"))
    assert answer.json() == {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payments?invoiceId={invoice}")["data"] == []


def test_forged_altered_and_unsigned_posts_change_nothing(
    api: ApiClient, tap: FakeTap, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api)
    link = api.ok(
        "POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/"}
    )
    body, headers = tap.pay(link["reference"])
    charge = {k: v for k, v in tap.charges[link["reference"]].items() if k != "refunded"}
    url = f"/payment-providers/{provider}/webhooks"
    refused = [
        stranger.post(url, content=body, headers={"hashstring": hashstring(charge, "sk_other")}),
        stranger.post(url, content=body.replace(b"123.45", b"1234.5"), headers=headers),
        stranger.post(url, content=body, headers={"Content-Type": "application/json"}),
        stranger.post(url, content=b"not json", headers=headers),
    ]
    assert [r.status_code for r in refused] == [400] * 4
    assert {r.json()["error"]["code"] for r in refused} == {"webhook_rejected"}
    assert "does not match" in refused[0].json()["error"]["message"]
    assert "hashstring" in refused[2].json()["error"]["message"]
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []


def test_a_refund_tap_accepted_then_failed_says_so_on_the_credit_note(
    api: ApiClient, tap: FakeTap, provider: str, stranger: TestClient
) -> None:
    saved = f"{CUSTOMER}/{CARD}/{AGREEMENT}"
    api.customer("acme", paymentProvider="tap", paymentProviderCustomerId=saved)
    invoice = api.open_invoice("acme", "120.00")
    assert invoice["status"] == "PAID"
    note = api.ok(
        "POST",
        "/credit-notes",
        json={"invoiceId": invoice["id"], "amount": "20.00", "reason": "OTHER", "type": "refund"},
    )
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    applied = api.ok("POST", f"/credit-notes/{note['id']}/apply")
    assert applied["refundStatus"] == "succeeded"  # Tap answered PENDING: accepted
    [refund] = tap.refunds
    assert refund["reference"] == {
        "merchant": f"{note['id']}/refund",
        "idempotent": f"{note['id']}/refund",
    }
    answer = _post(stranger, provider, tap.settle_refund(refund["id"], "FAILED"))
    assert answer.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    assert api.ok("GET", f"/credit-notes/{note['id']}")["refundStatus"] == "failed"


def test_a_page_for_someone_tap_does_not_know_needs_a_name_and_email(
    api: ApiClient, tap: FakeTap, provider: str
) -> None:
    api.customer("acme", paymentProvider="tap", paymentProviderCustomerId="to-be-saved")
    invoice = api.open_invoice("acme", "10.00")
    assert invoice["status"] == "OPEN"  # not a Tap card: a decline without a request
    problem = api.error(
        "POST", f"/invoices/{invoice['id']}/payment-url", 422, json={"successUrl": "https://a/"}
    )
    assert "name and email" in problem["message"]
    assert api.error("POST", f"/invoices/{invoice['id']}/payment-url", 422)["message"].startswith(
        "Tap's hosted page needs successUrl"
    )
    api.ok("PATCH", "/customers/acme", json={"email": "billing@acme.test"})
    link = api.ok(
        "POST", f"/invoices/{invoice['id']}/payment-url", json={"successUrl": "https://a/"}
    )
    assert tap.posts(CHARGES)[-1].json()["customer"] == {
        "first_name": "Acme",
        "email": "billing@acme.test",
    }
    assert link["reference"] in tap.charges
