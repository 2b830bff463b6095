"""GoCardless's hosted page and its signed webhooks, through the HTTP API, against the
local fake (tests/helpers/gocardless_server.py): `POST /invoices/{id}/payment-url` makes a
Billing Request and its flow; the payer pays; the payments events GoCardless posts to
`POST /payment-providers/{id}/webhooks` settle the invoice once. Direct Debit charges
made at finalize are settled (or failed) the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from invoicing.billing.scheduler import lifecycle_pass
from invoicing.models import PaymentAttemptRow
from invoicing.payments import providers
from tests.helpers.gocardless_server import (
    ACCESS_TOKEN,
    INACTIVE_MANDATE,
    MANDATE,
    WEBHOOK_SECRET,
    FakeGoCardless,
    fake_gocardless,
)
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger


@pytest.fixture
def gocardless(api: ApiClient) -> Iterator[FakeGoCardless]:
    with fake_gocardless() as server:
        server.now = api.clock.now()
        yield server


@pytest.fixture
def provider(api: ApiClient, gocardless: FakeGoCardless) -> str:
    config = {"accessToken": ACCESS_TOKEN, "baseUrl": gocardless.url,
              "webhookSecret": WEBHOOK_SECRET}  # fmt: skip
    created = api.ok(
        "POST", "/payment-providers", json={"provider": "gocardless", "config": config}
    )
    return str(created["id"])


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """GoCardless, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _post(stranger: TestClient, provider: str, webhook: tuple[bytes, dict[str, str]]) -> object:
    body, headers = webhook
    answer = stranger.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _attempt(api: ApiClient, invoice_id: str) -> PaymentAttemptRow:
    with api.runtime.sessions() as session:
        return session.execute(
            select(PaymentAttemptRow)
            .where(PaymentAttemptRow.invoice_id == invoice_id)
            .order_by(PaymentAttemptRow.created_at.desc(), PaymentAttemptRow.id.desc())
            .limit(1)
        ).scalar_one()


def test_a_paid_link_pays_the_invoice_once(
    api: ApiClient, gocardless: FakeGoCardless, provider: str, stranger: TestClient
) -> None:
    # The mandate is cancelled: the charge at finalize was declined; a page is asked for.
    api.customer("acme", currency="GBP", paymentProvider="gocardless",
                 paymentProviderCustomerId=INACTIVE_MANDATE)  # fmt: skip
    invoice = api.open_invoice("acme", "123.45")["id"]
    page = api.post(f"/invoices/{invoice}/payment-url", json={"successUrl": "https://a.test/ok"})
    assert page.status_code == 201, page.text
    link = page.json()
    assert (link["provider"], link["reference"], link["amount"], link["currency"]) == (
        "gocardless",
        "BRQ0000000001",
        "123.45",
        "GBP",
    )
    assert link["url"] == f"{gocardless.url}/billing/static/flow?id=BRF0000000001"
    [made] = gocardless.posts("/billing_requests")
    assert made.headers["idempotency-key"] == f"{invoice}/link-1"
    assert made.json()["billing_requests"]["payment_request"]["amount"] == 12345
    # asked again while open: the same page, nothing new at GoCardless
    assert api.post(f"/invoices/{invoice}/payment-url", json={}).json() == link
    assert len(gocardless.posts("/billing_requests")) == 1

    payment = gocardless.pay("BRQ0000000001")
    submitted = gocardless.webhook(gocardless.event("submitted", payment=payment))
    assert _post(stranger, provider, submitted) == {
        "received": 1, "applied": 0, "ignored": 1, "duplicates": 0,
    }  # fmt: skip
    confirmed = gocardless.webhook(gocardless.event("confirmed", payment=payment))
    assert _post(stranger, provider, confirmed) == {
        "received": 1, "applied": 1, "ignored": 0, "duplicates": 0,
    }  # fmt: skip
    assert _post(stranger, provider, confirmed) == {
        "received": 1, "applied": 0, "ignored": 0, "duplicates": 1,
    }  # fmt: skip
    paid = api.ok("GET", f"/invoices/{invoice}")
    assert (paid["status"], paid["amountDue"], paid["amountPaid"]) == ("PAID", "0.00", "123.45")
    [recorded] = api.ok("GET", f"/payments?invoiceId={invoice}")["data"]
    # The payment's id, which a refund of it needs.
    assert (recorded["provider"], recorded["reference"]) == ("gocardless", payment)


def test_a_forged_webhook_is_refused_and_changes_nothing(
    api: ApiClient, gocardless: FakeGoCardless, provider: str, stranger: TestClient
) -> None:
    api.customer("acme", paymentProvider="gocardless", paymentProviderCustomerId=MANDATE)
    invoice = api.open_invoice("acme", "50.00")["id"]
    event = gocardless.event("confirmed", payment="PM0000000001")
    url = f"/payment-providers/{provider}/webhooks"
    for body, headers in (
        gocardless.webhook(event, secret="not the endpoint's"),
        (gocardless.webhook(event)[0].replace(b"confirmed", b"paid_out!"),
         gocardless.webhook(event)[1]),
        (gocardless.webhook(event)[0], {"Content-Type": "application/json"}),
    ):  # fmt: skip
        refused = stranger.post(url, content=body, headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "webhook_rejected"
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OPEN"
    assert _attempt(api, invoice).status == "processing"
    assert api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"] == []
    assert stranger.post("/payment-providers/pp_nope/webhooks", content=b"{}").status_code == 404


def test_a_failed_direct_debit_fails_the_attempt_and_dunning_goes_on(
    api: ApiClient, gocardless: FakeGoCardless, provider: str, stranger: TestClient
) -> None:
    api.customer("acme", paymentProvider="gocardless", paymentProviderCustomerId=MANDATE)
    invoice = api.open_invoice("acme", "50.00")["id"]
    assert _attempt(api, invoice).status == "processing"
    details = {"origin": "bank", "cause": "insufficient_funds", "will_attempt_retry": False}
    failed = gocardless.webhook(gocardless.event("failed", payment="PM0000000001", details=details))
    assert _post(stranger, provider, failed) == {
        "received": 1, "applied": 1, "ignored": 0, "duplicates": 0,
    }  # fmt: skip
    assert _attempt(api, invoice).status == "failed"
    still = api.ok("GET", f"/invoices/{invoice}")
    assert (still["status"], still["amountDue"]) == ("OPEN", "50.00")
    assert api.ok("GET", f"/payments?invoiceId={invoice}")["data"] == []


def test_a_chargeback_after_confirmation_leaves_the_invoice_paid(
    api: ApiClient, gocardless: FakeGoCardless, provider: str, stranger: TestClient
) -> None:
    api.customer("acme", paymentProvider="gocardless", paymentProviderCustomerId=MANDATE)
    invoice = api.open_invoice("acme", "50.00")["id"]
    both = gocardless.webhook(
        gocardless.event("confirmed", payment="PM0000000001"),
        gocardless.event("charged_back", payment="PM0000000001"),
    )
    assert _post(stranger, provider, both) == {
        "received": 2, "applied": 1, "ignored": 1, "duplicates": 0,
    }  # fmt: skip
    # Kept, not acted on: a person decides (a credit note, a new invoice).
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "PAID"
    log = api.ok("GET", f"/payment-providers/{provider}/webhooks")["data"]
    assert {n["eventId"]: n["effect"] for n in log} == {
        "EV0000000001": "applied",
        "EV0000000002": "ignored",
    }


def test_a_debit_being_collected_is_never_doubled(
    api: ApiClient, gocardless: FakeGoCardless, provider: str, stranger: TestClient
) -> None:
    """While the finalize debit is processing, dunning steps charge nothing and no
    payment page is made; once it failed, the next step charges again."""
    api.customer("acme", paymentProvider="gocardless", paymentProviderCustomerId=MANDATE)
    invoice = api.open_invoice("acme", "50.00")["id"]
    gateways = providers.gateways(api.runtime.settings.secrets)
    late = DEFAULT_NOW + timedelta(days=45)  # past dueAt and its first dunning steps
    lifecycle_pass(api.runtime.sessions, api.tenant_id, late, 30, gateways)
    assert api.ok("GET", f"/invoices/{invoice}")["status"] == "OVERDUE"
    assert len(gocardless.posts()) == 1
    refused = api.error("POST", f"/invoices/{invoice}/payment-url", 409)
    assert refused["code"] == "payment_processing"
    failed = gocardless.webhook(gocardless.event("failed", payment="PM0000000001"))
    assert _post(stranger, provider, failed)["applied"] == 1  # type: ignore[index]
    lifecycle_pass(api.runtime.sessions, api.tenant_id, late + timedelta(days=7), 30, gateways)
    assert len(gocardless.posts()) == 2
