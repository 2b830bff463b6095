"""GoCardless hosted payment pages (a Billing Request and its flow) against the local
fake, and the check and reading of GoCardless webhooks (tests/helpers/gocardless_server.py
signs them independently of the adapter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.errors import UpstreamFailed
from invoicing.payments.base import LinkRequest, WebhookRejected, WebhookResult
from invoicing.payments.gocardless import GoCardlessConfig, GoCardlessGateway, verify_webhook
from tests.helpers.gocardless_server import (
    ACCESS_TOKEN,
    MANDATE,
    WEBHOOK_SECRET,
    FakeGoCardless,
    fake_gocardless,
)
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, refund_request

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
KEY = "inv_1/link-1"


@pytest.fixture
def gocardless() -> Iterator[FakeGoCardless]:
    with fake_gocardless() as server:
        yield server


def _config(gocardless: FakeGoCardless, secret: str | None = WEBHOOK_SECRET) -> GoCardlessConfig:
    return GoCardlessConfig(
        access_token=ACCESS_TOKEN, base_url=gocardless.url, webhook_secret=secret
    )


def _gateway(gocardless: FakeGoCardless, timeout: float = 5.0) -> GoCardlessGateway:
    return GoCardlessGateway(_config(gocardless), retry=FAST, timeout=timeout)


def _link_request(
    amount: str = "123.45", currency: str = "GBP", key: str = KEY, **fields: str
) -> LinkRequest:
    return LinkRequest(
        tenant_id="ten_1",
        invoice_id="inv_1",
        invoice_number="ML-2026-0001",
        amount=Decimal(amount),
        currency=currency,
        idempotency_key=key,
        expires_at=NOW + timedelta(hours=24),
        **fields,  # type: ignore[arg-type]
    )


# -- the hosted page ------------------------------------------------------------------------


def test_a_link_is_a_billing_request_and_its_flow(gocardless: FakeGoCardless) -> None:
    link = _gateway(gocardless).payment_link(
        _link_request(
            success_url="https://pay.example/done",
            cancel_url="https://pay.example/back",
            customer_email="ap@acme.example",
        )
    )
    assert link.url == f"{gocardless.url}/billing/static/flow?id=BRF0000000001"
    assert link.reference == "BRQ0000000001"
    assert link.expires_at == NOW + timedelta(days=7)  # as GoCardless answered
    [created] = gocardless.posts("/billing_requests")
    assert created.headers["idempotency-key"] == KEY
    assert created.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    metadata = {
        "meterline_invoice_id": "inv_1",
        "meterline_tenant_id": "ten_1",
        "meterline_key": KEY,
    }
    assert created.json() == {
        "billing_requests": {
            "payment_request": {
                "amount": 12345,
                "currency": "GBP",
                "description": "Invoice ML-2026-0001",
                "metadata": metadata,
            },
            "metadata": metadata,
        }
    }
    [flow] = gocardless.posts("/billing_request_flows")
    assert flow.json() == {
        "billing_request_flows": {
            "links": {"billing_request": "BRQ0000000001"},
            "redirect_uri": "https://pay.example/done",
            "exit_uri": "https://pay.example/back",
            "prefilled_customer": {"email": "ap@acme.example"},
        }
    }


def test_a_bare_link_sends_no_urls(gocardless: FakeGoCardless) -> None:
    _gateway(gocardless).payment_link(_link_request("10", "EUR"))
    [flow] = gocardless.posts("/billing_request_flows")
    assert flow.json() == {"billing_request_flows": {"links": {"billing_request": "BRQ0000000001"}}}
    assert (
        gocardless.posts("/billing_requests")[0].json()["billing_requests"]["payment_request"][
            "amount"
        ]
        == 1000
    )


def test_a_5xx_is_retried_under_the_same_key(gocardless: FakeGoCardless) -> None:
    gocardless.server.script(Response(500), Response(503))
    link = _gateway(gocardless).payment_link(_link_request())
    assert link.reference == "BRQ0000000001"
    assert [p.headers["idempotency-key"] for p in gocardless.posts("/billing_requests")] == [
        KEY
    ] * 3
    assert len(gocardless.billing_requests) == 1


def test_a_repeat_is_the_same_billing_request(gocardless: FakeGoCardless) -> None:
    # A lost answer, then a second call under the same key: GoCardless answers 409 with
    # the billing request the first call made, which is fetched; a new flow opens it.
    gocardless.server.lose_answers(Response(201, delay=1.0))
    gateway = _gateway(gocardless, timeout=0.3)
    first = gateway.payment_link(_link_request())
    again = gateway.payment_link(_link_request())
    assert first.reference == again.reference == "BRQ0000000001"
    assert len(gocardless.billing_requests) == 1
    assert [r.path for r in gocardless.server.requests if r.method == "GET"] == [
        "/billing_requests/BRQ0000000001"
    ] * 2
    assert {f["links"]["billing_request"] for f in gocardless.flows.values()} == {"BRQ0000000001"}


def test_a_currency_instant_bank_pay_does_not_take_is_refused(gocardless: FakeGoCardless) -> None:
    with pytest.raises(UpstreamFailed, match=r"payment_request\.currency: must be GBP or EUR"):
        _gateway(gocardless).payment_link(_link_request("10.00", "USD"))
    assert gocardless.flows == {}


# -- webhooks -------------------------------------------------------------------------------


def _verify(
    gocardless: FakeGoCardless, body: bytes, headers: dict[str, str]
) -> list[WebhookResult]:
    return verify_webhook(_config(gocardless), headers, body, NOW)


def test_a_signed_webhook_of_several_events_is_read(gocardless: FakeGoCardless) -> None:
    charged = _gateway(gocardless).charge(charge_request(MANDATE, "50.00", "GBP")).reference
    assert charged == "PM0000000001"
    refund = _gateway(gocardless).refund(refund_request(charged, "20.00", "GBP")).reference
    body, headers = gocardless.webhook(
        gocardless.event("submitted", payment=charged),
        gocardless.event("confirmed", payment=charged),
        gocardless.event("paid", refund=refund),
    )
    assert _verify(gocardless, body, headers) == [
        WebhookResult(charged, False, "EV0000000001", final=False, ours="inv_1/finalize"),
        WebhookResult(charged, True, "EV0000000002", ours="inv_1/finalize"),
        WebhookResult(str(refund), True, "EV0000000003", kind="refund", ours="cn_1/refund"),
    ]


def test_a_link_payment_names_our_key(gocardless: FakeGoCardless) -> None:
    link = _gateway(gocardless).payment_link(_link_request())
    payment = gocardless.pay(link.reference)
    body, headers = gocardless.webhook(gocardless.event("confirmed", payment=payment))
    # The payment's id (what a refund of it needs), and our key from its metadata.
    assert _verify(gocardless, body, headers) == [
        WebhookResult(payment, True, "EV0000000001", ours=KEY)
    ]


@pytest.mark.parametrize(
    ("action", "succeeded", "final"),
    [
        ("created", False, False),
        ("customer_approval_granted", False, False),
        ("submitted", False, False),
        ("confirmed", True, True),
        ("paid_out", True, True),
        ("failed", False, True),
        ("cancelled", False, True),
        ("customer_approval_denied", False, True),
        ("charged_back", False, True),
        ("late_failure_settled", False, True),
        ("resubmission_requested", False, False),
        ("chargeback_cancelled", False, False),
    ],
)
def test_payment_actions(
    gocardless: FakeGoCardless, action: str, succeeded: bool, final: bool
) -> None:
    payment = _gateway(gocardless).charge(charge_request(MANDATE, "5", "GBP")).reference
    body, headers = gocardless.webhook(gocardless.event(action, payment=payment))
    [result] = _verify(gocardless, body, headers)
    assert (result.reference, result.succeeded, result.final, result.kind) == (
        payment,
        succeeded,
        final,
        "charge",
    )


def test_a_failure_gocardless_retries_is_not_final(gocardless: FakeGoCardless) -> None:
    payment = _gateway(gocardless).charge(charge_request(MANDATE, "5", "GBP")).reference
    details = {"origin": "bank", "cause": "insufficient_funds", "will_attempt_retry": True}
    body, headers = gocardless.webhook(gocardless.event("failed", payment=payment, details=details))
    [result] = _verify(gocardless, body, headers)
    assert (result.succeeded, result.final) == (False, False)


@pytest.mark.parametrize(
    ("action", "succeeded", "final"),
    [
        ("created", False, False),
        ("paid", True, True),
        ("refund_settled", True, True),
        ("failed", False, True),
        ("cancelled", False, True),
        ("bounced", False, True),
        ("funds_returned", False, True),
    ],
)
def test_refund_actions(
    gocardless: FakeGoCardless, action: str, succeeded: bool, final: bool
) -> None:
    gateway = _gateway(gocardless)
    payment = gateway.charge(charge_request(MANDATE, "5", "GBP")).reference
    assert payment is not None
    refund = gateway.refund(refund_request(payment, "5", "GBP")).reference
    body, headers = gocardless.webhook(gocardless.event(action, refund=refund))
    [result] = _verify(gocardless, body, headers)
    assert (result.reference, result.kind, result.succeeded, result.final) == (
        refund,
        "refund",
        succeeded,
        final,
    )


def test_events_we_do_not_act_on_give_nothing(gocardless: FakeGoCardless) -> None:
    # A mandate's transfer to another bank account changes nothing we keep (its
    # `active` and endings are a saved method's news: tests/payments/test_checkout_api.py).
    mandate = {"id": "EV0000000042", "resource_type": "mandates", "action": "transferred",
               "links": {"mandate": MANDATE}, "details": {}, "metadata": {}}  # fmt: skip
    payout = {"id": "EV0000000043", "resource_type": "payouts", "action": "paid",
              "links": {"payout": "PO0000000001"}, "details": {}, "metadata": {}}  # fmt: skip
    body, headers = gocardless.webhook(mandate, payout)
    assert _verify(gocardless, body, headers) == []


def test_a_mandates_news_is_a_saved_methods_news(gocardless: FakeGoCardless) -> None:
    events = [
        {"id": f"EV00000000{n}", "resource_type": "mandates", "action": action,
         "links": {"mandate": MANDATE}, "details": {}, "metadata": {},
         "resource_metadata": {"meterline_key": "cus_1/checkout-0123456789ab"}}
        for n, action in ((51, "active"), (52, "cancelled"), (53, "submitted"))
    ]  # fmt: skip
    body, headers = gocardless.webhook(*events)
    assert [
        (r.kind, r.reference, r.method, r.succeeded, r.final, r.ours)
        for r in _verify(gocardless, body, headers)
    ] == [
        ("method", MANDATE, MANDATE, True, True, "cus_1/checkout-0123456789ab"),
        ("method", MANDATE, MANDATE, False, True, "cus_1/checkout-0123456789ab"),
        ("method", MANDATE, MANDATE, False, False, "cus_1/checkout-0123456789ab"),
    ]


def test_the_header_name_is_case_insensitive(gocardless: FakeGoCardless) -> None:
    body, headers = gocardless.webhook()
    lowered = {name.lower(): value.upper() for name, value in headers.items()}
    assert _verify(gocardless, body, lowered) == []


def _forged(gocardless: FakeGoCardless, how: str) -> tuple[bytes, dict[str, str]]:
    event = {"id": "EV1", "resource_type": "payments", "action": "confirmed",
             "links": {"payment": "PM0000000001"}}  # fmt: skip
    body, headers = gocardless.webhook(event)
    if how == "wrong secret":
        return gocardless.webhook(event, secret="another secret")
    if how == "tampered body":
        return body.replace(b"confirmed", b"paid_out!"), headers
    if how == "no header":
        return body, {k: v for k, v in headers.items() if k != "Webhook-Signature"}
    signed = json.dumps(["not", "events"]).encode() if how == "no events" else b"events: none"
    return gocardless.webhook_of(signed)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("wrong secret", "signature does not match"),
        ("tampered body", "signature does not match"),
        ("no header", "no Webhook-Signature"),
        ("not JSON", "not JSON"),
        ("no events", "no events"),
    ],
)
def test_a_forged_or_malformed_webhook_is_rejected(
    gocardless: FakeGoCardless, how: str, message: str
) -> None:
    body, headers = _forged(gocardless, how)
    with pytest.raises(WebhookRejected, match=message):
        _verify(gocardless, body, headers)


def test_no_webhook_secret_configured_rejects_everything(gocardless: FakeGoCardless) -> None:
    body, headers = gocardless.webhook()
    with pytest.raises(WebhookRejected, match="no webhookSecret"):
        verify_webhook(_config(gocardless, secret=None), headers, body, NOW)
