"""Stripe's hosted payment page and its signed events, through the HTTP API, against a
local server that checks and answers as Stripe documents (tests/helpers/stripe_server.py):
`POST /invoices/{id}/payment-url` makes a Checkout Session; the payer pays it; the events
Stripe posts to `POST /payment-providers/{id}/webhooks` pay the invoice, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoicing.db import transaction
from invoicing.payments import providers
from invoicing.tenants import create_tenant
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient
from tests.helpers.stripe_server import SECRET, WEBHOOK_SECRET, FakeStripe, fake_stripe

pytestmark = pytest.mark.ledger


@pytest.fixture
def stripe(api: ApiClient) -> Iterator[FakeStripe]:
    with fake_stripe() as server:
        server.clock = lambda: api.clock.now().timestamp()
        yield server


@pytest.fixture
def provider(api: ApiClient, stripe: FakeStripe) -> str:
    config = {"secretKey": SECRET, "baseUrl": stripe.url, "webhookSecret": WEBHOOK_SECRET}
    created = api.ok("POST", "/payment-providers", json={"provider": "stripe", "config": config})
    assert created["config"]["webhookSecret"] == "…0042"  # stored, never shown
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """Stripe, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _unpaid(api: ApiClient, stripe: FakeStripe, name: str = "acme", total: str = "123.45") -> str:
    """An OPEN invoice whose charge at finalize failed: the customer has no saved card."""
    stripe.add_customer(f"cus_{name}", card=None)
    api.customer(name, paymentProvider="stripe", paymentProviderCustomerId=f"cus_{name}")
    invoice = api.open_invoice(name, total)
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", total)
    return str(invoice["id"])


def _post(
    client: TestClient, stripe: FakeStripe, provider: str, event: dict[str, Any], **sign: Any
) -> Any:
    body, headers = stripe.signed(event, **sign)
    return client.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)


def test_a_paid_checkout_page_pays_the_invoice_once(
    api: ApiClient, stripe: FakeStripe, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api, stripe)
    page = api.post(
        f"/invoices/{invoice}/payment-url",
        json={"successUrl": "https://acme.test/paid", "cancelUrl": "https://acme.test/back"},
    )
    assert page.status_code == 201, page.text
    link = page.json()
    expires = DEFAULT_NOW + timedelta(hours=23)
    assert link == {
        "invoiceId": invoice,
        "provider": "stripe",
        "url": f"{stripe.url}/c/pay/cs_test_0001",
        "reference": "cs_test_0001",
        "amount": "123.45",
        "currency": "USD",
        "expiresAt": expires.isoformat().replace("+00:00", "Z"),
    }
    [made] = stripe.posts("/v1/checkout/sessions")
    assert made.headers["idempotency-key"] == f"{invoice}/link-1"
    assert {k: v for k, v in made.form.items() if "metadata" not in k} == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "12345",
        "line_items[0][price_data][product_data][name]": f"Invoice {_number(api, invoice)}",
        "success_url": "https://acme.test/paid",
        "cancel_url": "https://acme.test/back",
        "expires_at": str(int(expires.timestamp())),
        "client_reference_id": f"{invoice}/link-1",
        "customer": "cus_acme",
    }
    assert made.form["payment_intent_data[metadata][meterline_key]"] == f"{invoice}/link-1"
    # Asked again while it is open: the same page, nothing new at Stripe.
    again = api.post(f"/invoices/{invoice}/payment-url", json={})
    assert (again.status_code, again.json()) == (200, link)
    assert len(stripe.posts("/v1/checkout/sessions")) == 1

    succeeded, completed = stripe.pay_session("cs_test_0001")
    first = _post(stranger, stripe, provider, succeeded)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    assert _post(stranger, stripe, provider, completed).json() == {
        "received": 1,
        "applied": 0,
        "ignored": 1,  # the same payment, told twice: applied once
        "duplicates": 0,
    }
    assert _post(stranger, stripe, provider, succeeded).json()["duplicates"] == 1
    paid = api.ok("GET", f"/invoices/{invoice}")
    assert (paid["status"], paid["amountDue"], paid["amountPaid"]) == ("PAID", "0.00", "123.45")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    assert (payment["provider"], payment["reference"], payment["amount"]) == (
        "stripe",
        "pi_0001",
        "123.45",
    )
    log = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    assert [(n["eventId"], n["effect"]) for n in log] == [
        (completed["id"], "ignored"),
        (succeeded["id"], "applied"),
    ]
    assert api.error("POST", f"/invoices/{invoice}/payment-url", 409)["code"] == (
        "illegal_transition"
    )


def test_a_charge_completed_by_the_customer_later_pays_the_invoice(
    api: ApiClient, stripe: FakeStripe, provider: str, stranger: TestClient
) -> None:
    """The off-session charge at finalize was declined (3-D Secure wanted); the customer
    completed it later, and Stripe says so about the same PaymentIntent."""
    stripe.add_customer("cus_acme", declines=True)
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
    invoice = api.open_invoice("acme", "40.00")
    assert invoice["status"] == "OPEN"
    declined = stripe.intents["pi_0001"]
    short = {**declined, "status": "succeeded", "amount_received": 3999, "metadata": {}}
    event = stripe.event("payment_intent.succeeded", short)
    assert _post(stranger, stripe, provider, event).json()["applied"] == 0
    [note] = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    assert note["detail"] == "paid 39.99 USD, the attempt asked 40.00: not applied to the invoice"
    paid = {**declined, "status": "succeeded", "amount_received": 4000, "metadata": {}}
    event = stripe.event("payment_intent.succeeded", paid)
    assert _post(stranger, stripe, provider, event).json()["applied"] == 1
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "PAID"


def test_forged_stale_and_unsigned_events_change_nothing(
    api: ApiClient, stripe: FakeStripe, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api, stripe)
    api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/"})
    [event, _] = stripe.pay_session("cs_test_0001")
    url = f"/payment-providers/{provider}/webhooks"
    body, headers = stripe.signed(event)
    refused = [
        _post(stranger, stripe, provider, event, secret="whsec_someone_else"),
        _post(stranger, stripe, provider, event, at=int(DEFAULT_NOW.timestamp()) - 600),
        stranger.post(url, content=body.replace(b"succeeded", b"succeedex"), headers=headers),
        stranger.post(url, content=body, headers={"Content-Type": "application/json"}),
        stranger.post(url, content=b"not json", headers=stripe.signed(event)[1]),
    ]
    assert [r.status_code for r in refused] == [400] * 5
    assert {r.json()["error"]["code"] for r in refused} == {"webhook_rejected"}
    assert "does not match" in refused[0].json()["error"]["message"]
    assert "too long ago" in refused[1].json()["error"]["message"]
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []
    missing = stranger.post("/payment-providers/pp_nope/webhooks", content=body, headers=headers)
    assert missing.status_code == 404


def test_events_about_nothing_of_ours_are_acknowledged_and_ignored(
    api: ApiClient, stripe: FakeStripe, provider: str, stranger: TestClient
) -> None:
    intent = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded"}
    answers = [
        _post(stranger, stripe, provider, stripe.event("payment_intent.succeeded", intent)),
        _post(stranger, stripe, provider, stripe.event("customer.created", {"id": "cus_x"})),
    ]
    assert [a.json() for a in answers] == [
        {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0},
        {"received": 0, "applied": 0, "ignored": 0, "duplicates": 0},
    ]


def test_a_connection_without_a_signing_secret_accepts_no_event(
    api: ApiClient, stripe: FakeStripe, stranger: TestClient
) -> None:
    config = {"secretKey": SECRET, "baseUrl": stripe.url}
    provider = api.ok("POST", "/payment-providers", json={"provider": "stripe", "config": config})
    event = stripe.event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    answer = _post(stranger, stripe, provider["id"], event)
    assert answer.status_code == 400
    assert "webhookSecret" in answer.json()["error"]["message"]


def test_a_page_needs_a_provider_and_stripe_a_success_url(
    api: ApiClient, stripe: FakeStripe, provider: str
) -> None:
    api.customer("byhand")
    plain = api.open_invoice("byhand", "10.00")
    assert api.error("POST", f"/invoices/{plain['id']}/payment-url", 422)["code"] == (
        "no_payment_provider"
    )
    invoice = _unpaid(api, stripe, "acme")
    problem = api.error("POST", f"/invoices/{invoice}/payment-url", 422)
    assert "successUrl" in problem["message"]
    bad = api.error("POST", f"/invoices/{invoice}/payment-url", 422, json={"successUrl": "ftp:x"})
    assert bad["code"] == "validation_error"
    assert api.error("POST", "/invoices/inv_nope/payment-url", 404)["code"] == "not_found"


def test_another_tenant_reaches_nothing_of_ours(
    api: ApiClient, stripe: FakeStripe, provider: str, stranger: TestClient
) -> None:
    invoice = _unpaid(api, stripe)
    page = api.ok("POST", f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a/"})
    with transaction(api.runtime.sessions) as session:
        other = create_tenant(session, "other")
    with ApiClient(api.app, api.runtime, other.tenant_id, other.api_key) as them:
        config = {"secretKey": SECRET, "baseUrl": stripe.url, "webhookSecret": WEBHOOK_SECRET}
        theirs = them.ok(
            "POST", "/payment-providers", json={"provider": "stripe", "config": config}
        )
        assert them.error("POST", f"/invoices/{invoice}/payment-url", 404)["code"] == "not_found"
        assert them.error("GET", f"/payment-providers/{provider}/webhooks", 404)
        # Our payment, posted to THEIR connection: signed alright, about nothing of theirs.
        [succeeded, _] = stripe.pay_session(page["reference"])
        answer = _post(stranger, stripe, theirs["id"], succeeded)
        assert answer.json() == {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
        assert (
            them.ok("GET", f"/payment-providers/{theirs['id']}/webhooks")["data"][0]["invoiceId"]
            is None
        )
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []


def _number(api: ApiClient, invoice: str) -> str:
    return str(api.ok("GET", f"/invoices/{invoice}")["number"])


def test_an_event_before_the_charge_answer_is_applied_when_the_answer_comes(
    api: ApiClient, stripe: FakeStripe, provider: str, stranger: TestClient
) -> None:
    """A bank debit: Stripe answers `processing`, but its `succeeded` event can reach
    us before that answer does. Kept unmatched, it pays the invoice once the attempt
    learns the PaymentIntent's id."""
    from invoicing.payments.collection import collect

    stripe.add_customer("cus_acme")
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
    invoice = api.draft("acme", "25.00")
    early = {
        "id": "pi_0001",
        "object": "payment_intent",
        "status": "succeeded",
        "amount_received": 2500,
        "currency": "usd",
        "metadata": {},
    }
    first = _post(stranger, stripe, provider, stripe.event("payment_intent.succeeded", early))
    assert first.json() == {"received": 1, "applied": 0, "ignored": 1, "duplicates": 0}
    stripe.processing = True  # the fake answers the next charge `processing`
    api.ok("POST", f"/invoices/{invoice}/finalize")
    paid = api.ok("GET", f"/invoices/{invoice}")
    assert (paid["status"], paid["amountPaid"]) == ("PAID", "25.00")
    [note] = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    assert (note["effect"], note["invoiceId"]) == ("applied", invoice)
    again = collect(
        api.runtime.sessions,
        api.tenant_id,
        invoice,
        "finalize",
        api.clock.now(),
        providers.gateways(api.runtime.settings.secrets),
    )
    assert again is not None and again.status == "succeeded"
    assert len(api.ok("GET", f"/payments?invoiceId={invoice}")["data"]) == 1
