"""The GoCardless adapter against a local server that answers and checks as GoCardless's
API documents (tests/helpers/gocardless_server.py), and the webhook signature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.errors import InvalidInput
from invoicing.models import PaymentAttemptRow
from invoicing.payments.base import Outcome, PaymentUnavailable
from invoicing.payments.gocardless import GoCardlessConfig, GoCardlessGateway
from invoicing.payments.providers import build_gateway
from tests.helpers.gocardless_server import (
    ACCESS_TOKEN,
    INACTIVE_MANDATE,
    MANDATE,
    VERSION,
    WEBHOOK_SECRET,
    FakeGoCardless,
    fake_gocardless,
)
from tests.helpers.ledger_api import ApiClient
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, connect, refund_request


@pytest.fixture
def gocardless() -> Iterator[FakeGoCardless]:
    with fake_gocardless() as server:
        yield server


def _gateway(gocardless: FakeGoCardless, timeout: float = 5.0) -> GoCardlessGateway:
    settings = GoCardlessConfig(access_token=ACCESS_TOKEN, base_url=gocardless.url)
    return GoCardlessGateway(settings, retry=FAST, timeout=timeout)


def test_a_charge_creates_a_payment_on_the_mandate(gocardless: FakeGoCardless) -> None:
    # Accepted for collection, not collected: pending, its result comes by webhook.
    outcome = _gateway(gocardless).charge(charge_request(MANDATE, "123.45", "GBP"))
    assert outcome == Outcome(False, reference="PM0000000001", pending=True)
    [post] = gocardless.posts()
    assert post.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert post.headers["gocardless-version"] == VERSION == "2015-07-06"
    assert post.headers["idempotency-key"] == "inv_1/finalize"
    assert post.headers["content-type"] == "application/json"
    assert post.json() == {
        "payments": {
            "amount": 12345,
            "currency": "GBP",
            "description": "Invoice ML-2026-0001",
            "metadata": {
                "meterline_invoice_id": "inv_1",
                "meterline_tenant_id": "ten_1",
                "meterline_key": "inv_1/finalize",
            },
            "links": {"mandate": MANDATE},
        }
    }


@pytest.mark.parametrize(
    ("amount", "currency", "minor"), [("99.5", "SEK", 9950), ("1", "EUR", 100)]
)
def test_amounts_go_in_minor_units(
    gocardless: FakeGoCardless, amount: str, currency: str, minor: int
) -> None:
    assert _gateway(gocardless).charge(charge_request(MANDATE, amount, currency)).pending
    assert gocardless.posts()[0].json()["payments"]["amount"] == minor


def test_an_inactive_mandate_is_a_decline(gocardless: FakeGoCardless) -> None:
    outcome = _gateway(gocardless).charge(charge_request(INACTIVE_MANDATE))
    assert (outcome.succeeded, outcome.reference) == (False, None)
    assert outcome.error == "The mandate for this payment is not active"
    assert gocardless.payments == {}


def test_a_currency_the_scheme_does_not_take_is_a_decline(gocardless: FakeGoCardless) -> None:
    outcome = _gateway(gocardless).charge(charge_request(MANDATE, "500", "JPY"))
    assert outcome.error == "Validation failed (currency: is not a supported currency)"
    wrong = GoCardlessGateway(
        GoCardlessConfig(access_token="nope", base_url=gocardless.url), retry=FAST
    ).charge(charge_request(MANDATE))
    assert wrong.error == "Access token not found"


def test_a_5xx_is_retried_with_the_same_idempotency_key(gocardless: FakeGoCardless) -> None:
    gocardless.server.script(Response(500), Response(502))
    assert _gateway(gocardless).charge(charge_request(MANDATE)).pending
    assert [p.headers["idempotency-key"] for p in gocardless.posts()] == ["inv_1/finalize"] * 3
    assert len(gocardless.payments) == 1


def test_a_lost_answer_finds_the_payment_by_the_conflict(gocardless: FakeGoCardless) -> None:
    # GoCardless created the payment; its answer timed out. The retry gets a 409
    # idempotent_creation_conflict naming the payment, which we fetch.
    gocardless.server.lose_answers(Response(201, delay=1.0))
    outcome = _gateway(gocardless, timeout=0.3).charge(charge_request(MANDATE))
    assert outcome.pending and outcome.reference == "PM0000000001"
    assert len(gocardless.posts()) == 2 and len(gocardless.payments) == 1
    assert [r.path for r in gocardless.server.requests if r.method == "GET"] == [
        "/payments/PM0000000001"
    ]


def test_a_second_attempt_under_the_same_key_charges_once(gocardless: FakeGoCardless) -> None:
    # A crash between charging and recording: the next pass sends the same key again.
    gateway = _gateway(gocardless)
    first = gateway.charge(charge_request(MANDATE))
    again = gateway.charge(charge_request(MANDATE))
    assert first.reference == again.reference == "PM0000000001" and again.pending
    assert len(gocardless.payments) == 1


@pytest.mark.parametrize(
    ("status", "succeeded", "pending"),
    [
        ("pending_submission", False, True),
        ("submitted", False, True),
        ("confirmed", True, False),
        ("paid_out", True, False),
        ("pending_customer_approval", False, False),
    ],
)
def test_only_a_collected_payment_is_paid(
    gocardless: FakeGoCardless, status: str, succeeded: bool, pending: bool
) -> None:
    # The second pass finds the payment the first made, in whatever state it is now.
    gateway = _gateway(gocardless)
    gateway.charge(charge_request(MANDATE))
    gocardless.payments["PM0000000001"]["status"] = status
    outcome = gateway.charge(charge_request(MANDATE))
    assert (outcome.succeeded, outcome.pending, outcome.reference) == (
        succeeded,
        pending,
        "PM0000000001",
    )


def test_a_payment_that_already_failed_is_not_paid(gocardless: FakeGoCardless) -> None:
    gateway = _gateway(gocardless)
    assert gateway.charge(charge_request(MANDATE)).pending
    gocardless.payments["PM0000000001"]["status"] = "failed"
    outcome = gateway.charge(charge_request(MANDATE))
    assert (outcome.succeeded, outcome.error) == (False, "the payment is failed")


def test_retries_exhausted_are_unavailable(gocardless: FakeGoCardless) -> None:
    gocardless.server.script(Response(500), Response(429), Response(503))
    with pytest.raises(PaymentUnavailable, match=r"gocardless answered 503 \(after 3 attempts\)"):
        _gateway(gocardless).charge(charge_request(MANDATE))
    assert gocardless.payments == {}


def test_a_refund_confirms_the_total_refunded(gocardless: FakeGoCardless) -> None:
    gateway = _gateway(gocardless)
    payment = gateway.charge(charge_request(MANDATE, "50.00", "GBP")).reference
    assert payment is not None
    first = gateway.refund(refund_request(payment, "20.00", "GBP"))
    second = gateway.refund(refund_request(payment, "10.00", "GBP", key="cn_2/refund"))
    assert (first.succeeded, first.reference) == (True, "RF0000000001")
    assert (second.succeeded, second.reference) == (True, "RF0000000002")
    [one, two] = gocardless.posts("/refunds")
    assert one.headers["idempotency-key"] == "cn_1/refund"
    assert one.json() == {
        "refunds": {
            "amount": 2000,
            "total_amount_confirmation": 2000,
            "metadata": {"meterline_refund": "cn_1/refund"},
            "links": {"payment": payment},
        }
    }
    assert two.json()["refunds"]["total_amount_confirmation"] == 3000
    # sent again (a crash before it was recorded): the same refund, not a new one
    assert gateway.refund(refund_request(payment, "20.00", "GBP")).reference == "RF0000000001"
    too_much = gateway.refund(refund_request(payment, "30.00", "GBP", key="cn_3/refund"))
    assert too_much.error == "The refund would exceed the amount of the payment"


def test_the_config_is_checked() -> None:
    with pytest.raises(InvalidInput, match=r"config\.accessToken: Field required"):
        build_gateway("gocardless", {})
    with pytest.raises(InvalidInput, match=r"config\.environment"):
        build_gateway("gocardless", {"accessToken": "x", "environment": "prod"})
    sandbox = GoCardlessConfig(access_token="x", environment="sandbox")
    assert sandbox.url() == "https://api-sandbox.gocardless.com"


# -- through the API -----------------------------------------------------------------------


def attempts(api: ApiClient, invoice_id: str) -> list[PaymentAttemptRow]:
    with api.runtime.sessions() as session:
        rows = session.execute(
            select(PaymentAttemptRow)
            .where(PaymentAttemptRow.invoice_id == invoice_id)
            .order_by(PaymentAttemptRow.created_at)
        ).scalars()
        return list(rows)


@pytest.mark.ledger
def test_finalize_collects_through_gocardless(api: ApiClient, gocardless: FakeGoCardless) -> None:
    connection = connect(
        api,
        "gocardless",
        {"accessToken": ACCESS_TOKEN, "baseUrl": gocardless.url, "webhookSecret": WEBHOOK_SECRET},
    )
    assert connection["config"] == {
        "accessToken": f"…{ACCESS_TOKEN[-4:]}",
        "baseUrl": gocardless.url,
        "webhookSecret": f"…{WEBHOOK_SECRET[-4:]}",
    }
    api.customer("acme", paymentProvider="gocardless", paymentProviderCustomerId=MANDATE)
    api.customer("gone", paymentProvider="gocardless", paymentProviderCustomerId=INACTIVE_MANDATE)
    invoice = api.open_invoice("acme", "123.45")
    # Accepted by GoCardless, collected days later: OPEN, the attempt processing.
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", "123.45")
    [post] = gocardless.posts()
    assert post.headers["idempotency-key"] == f"{invoice['id']}/finalize"
    assert post.json()["payments"]["amount"] == 12345
    assert post.json()["payments"]["currency"] == "USD"
    [attempt] = attempts(api, invoice["id"])
    assert (attempt.status, attempt.provider_reference) == ("processing", "PM0000000001")
    assert api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"] == []
    # The payments `confirmed` webhook settles it.
    body, headers = gocardless.webhook(gocardless.event("confirmed", payment="PM0000000001"))
    receipt = api.ok(
        "POST", f"/payment-providers/{connection['id']}/webhooks", content=body, headers=headers
    )
    assert receipt == {"received": 1, "applied": 1, "ignored": 0, "duplicates": 0}
    paid = api.ok("GET", f"/invoices/{invoice['id']}")
    assert (paid["status"], paid["amountDue"]) == ("PAID", "0.00")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert (payment["provider"], payment["reference"]) == ("gocardless", "PM0000000001")
    declined = api.open_invoice("gone", "40.00", index=1)
    assert (declined["status"], declined["amountDue"]) == ("OPEN", "40.00")
    [refused] = attempts(api, declined["id"])
    assert refused.status == "failed"
