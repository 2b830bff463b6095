"""The Cashfree adapter against a local server that answers and checks as Cashfree's PG
API documents for subscription charges (tests/helpers/cashfree_server.py), and its
webhook signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from invoicing.payments.base import Outcome, PaymentUnavailable, WebhookRejected, key_uuid
from invoicing.payments.cashfree import (
    CashfreeConfig,
    CashfreeGateway,
    cashfree_id,
    verify_webhook,
)
from tests.helpers.cashfree_server import (
    API_VERSION,
    CLIENT_ID,
    CLIENT_SECRET,
    PAY,
    SUBSCRIPTION,
    FakeCashfree,
    fake_cashfree,
)
from tests.helpers.ledger_api import ApiClient
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, connect, refund_request

PAYMENT_ID = "cf-" + hashlib.sha256(b"inv_1/finalize").hexdigest()[:32]
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def cashfree() -> Iterator[FakeCashfree]:
    with fake_cashfree() as server:
        server.add_subscription(SUBSCRIPTION)
        server.add_subscription("sub_declines", declines=True)
        server.add_subscription("sub_paused", status="ON_HOLD")
        server.add_subscription("sub_enach", settles="PENDING")
        yield server


def _config(cashfree: FakeCashfree | None = None) -> CashfreeConfig:
    return CashfreeConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=cashfree.url if cashfree else None,
    )


def _gateway(cashfree: FakeCashfree, timeout: float = 5.0) -> CashfreeGateway:
    return CashfreeGateway(_config(cashfree), retry=FAST, timeout=timeout)


def test_a_charge_is_raised_on_the_subscription(cashfree: FakeCashfree) -> None:
    outcome = _gateway(cashfree).charge(charge_request(SUBSCRIPTION, "1234.50", "INR"))
    assert outcome.succeeded and outcome.reference == f"{SUBSCRIPTION}/{PAYMENT_ID}"
    [post] = cashfree.posts()
    assert (post.headers["x-client-id"], post.headers["x-client-secret"]) == (
        CLIENT_ID,
        CLIENT_SECRET,
    )
    assert post.headers["x-api-version"] == API_VERSION == "2023-08-01"
    assert post.headers["x-idempotency-key"] == key_uuid("inv_1/finalize")
    assert b'"payment_amount":1234.50' in post.body
    assert post.json() == {
        "subscription_id": SUBSCRIPTION,
        "payment_id": PAYMENT_ID,
        "payment_amount": Decimal("1234.50"),
        "payment_type": "CHARGE",
        "payment_remarks": "Invoice ML-2026-0001",
    }


def test_the_payment_id_is_deterministic() -> None:
    assert cashfree_id("inv_1/finalize") == PAYMENT_ID and len(PAYMENT_ID) == 35
    assert cashfree_id("inv_1/dunning-1") != PAYMENT_ID


def test_the_sandbox_is_a_config_away() -> None:
    sandbox = CashfreeConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        environment="sandbox",
    )
    assert sandbox.url() == "https://sandbox.cashfree.com/pg"
    assert _config().url() == "https://api.cashfree.com/pg"


def test_another_currency_than_the_plan_s_is_refused_unsent(cashfree: FakeCashfree) -> None:
    outcome = _gateway(cashfree).charge(charge_request(SUBSCRIPTION, "10.00", "USD"))
    assert outcome.error == "Cashfree collects INR; the invoice is in USD"
    assert cashfree.server.requests == []


@pytest.mark.parametrize("status", ["PENDING", "INITIALIZED"])
def test_a_charge_collected_later_is_pending(cashfree: FakeCashfree, status: str) -> None:
    cashfree.add_subscription("sub_later", settles=status)
    outcome = _gateway(cashfree).charge(charge_request("sub_later", "10.00", "INR"))
    assert outcome == Outcome(False, reference=f"sub_later/{PAYMENT_ID}", pending=True)


def test_a_failed_charge_is_a_decline(cashfree: FakeCashfree) -> None:
    outcome = _gateway(cashfree).charge(charge_request("sub_declines", "10.00", "INR"))
    assert (outcome.succeeded, outcome.error) == (False, "Insufficient balance in the account")


def test_an_inactive_subscription_is_cashfree_s_error(cashfree: FakeCashfree) -> None:
    outcome = _gateway(cashfree).charge(charge_request("sub_paused", "10.00", "INR"))
    assert outcome.error == "subscription is not active (subscription_not_active)"


def test_a_5xx_is_retried_under_the_same_key_and_id(cashfree: FakeCashfree) -> None:
    cashfree.server.script(Response(500), Response(503))
    assert _gateway(cashfree).charge(charge_request(SUBSCRIPTION, "10.00", "INR")).succeeded
    assert {p.json()["payment_id"] for p in cashfree.posts()} == {PAYMENT_ID}
    assert len(cashfree.posts()) == 3 and len(cashfree.payments) == 1


def test_a_lost_answer_is_replayed_by_the_key(cashfree: FakeCashfree) -> None:
    cashfree.server.lose_answers(Response(500, delay=1.0))
    outcome = _gateway(cashfree, timeout=0.3).charge(charge_request(SUBSCRIPTION, "10", "INR"))
    assert outcome.succeeded and len(cashfree.posts()) == 2 and len(cashfree.payments) == 1


def test_after_the_key_expired_the_taken_payment_id_is_fetched(cashfree: FakeCashfree) -> None:
    gateway = _gateway(cashfree)
    first = gateway.charge(charge_request(SUBSCRIPTION, "10.00", "INR"))
    cashfree.forget_keys()
    again = gateway.charge(charge_request(SUBSCRIPTION, "10.00", "INR"))
    assert again == first and len(cashfree.payments) == 1
    [get] = [r for r in cashfree.server.requests if r.method == "GET"]
    assert get.path == f"/subscriptions/{SUBSCRIPTION}/payments/{PAYMENT_ID}"


def test_retries_exhausted_are_unavailable(cashfree: FakeCashfree) -> None:
    cashfree.server.script(Response(500), Response(500), Response(500))
    with pytest.raises(PaymentUnavailable, match=r"cashfree answered 500 \(after 3"):
        _gateway(cashfree).charge(charge_request(SUBSCRIPTION, "10.00", "INR"))
    assert cashfree.payments == {}


def test_a_refund_names_the_payment_and_is_idempotent(cashfree: FakeCashfree) -> None:
    gateway = _gateway(cashfree)
    charge = gateway.charge(charge_request(SUBSCRIPTION, "500.00", "INR")).reference
    assert charge is not None
    cashfree.server.lose_answers(Response(502))
    outcome = gateway.refund(refund_request(charge, "200.00", "INR"))
    assert outcome.succeeded and outcome.reference == "ref_0001" and len(cashfree.refunds) == 1
    post = cashfree.posts(f"/subscriptions/{SUBSCRIPTION}/refunds")[0]
    assert post.json() == {
        "subscription_id": SUBSCRIPTION,
        "payment_id": PAYMENT_ID,
        "refund_id": cashfree_id("cn_1/refund"),
        "refund_amount": Decimal("200.00"),
        "refund_note": "Meterline cn_1/refund",
    }
    cashfree.forget_keys()  # a second pass a day later: the refund_id is taken, fetched
    assert gateway.refund(refund_request(charge, "200.00", "INR")).reference == "ref_0001"
    too_much = gateway.refund(refund_request(charge, "400.00", "INR", key="cn_2/refund"))
    assert too_much.error == (
        "refund amount is greater than the refundable amount (refund_amount_invalid)"
    )


# -- the signature --------------------------------------------------------------------------

EVENT = json.dumps(
    {
        "data": {
            "payment_id": PAYMENT_ID,
            "cf_payment_id": "5114910001",
            "subscription_id": SUBSCRIPTION,
            "payment_status": "SUCCESS",
            "payment_amount": 1234.5,
        },
        "event_time": "2026-11-03T17:30:00+05:30",
        "type": "SUBSCRIPTION_PAYMENT_SUCCESS",
    }
).encode()
STAMP = str(int(NOW.timestamp() * 1000))  # milliseconds, as Cashfree sends them


def _signature(body: bytes, stamp: str, secret: str = CLIENT_SECRET) -> str:
    # Written out from Cashfree's documentation, independently of the adapter's code.
    digest = hmac.new(secret.encode(), (stamp + body.decode()).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def _headers(signature: str, stamp: str = STAMP) -> dict[str, str]:
    return {"X-Webhook-Signature": signature, "X-Webhook-Timestamp": stamp}


def test_a_signed_webhook_is_accepted() -> None:
    [result] = verify_webhook(_config(), _headers(_signature(EVENT, STAMP)), EVENT, NOW)
    assert (result.reference, result.succeeded) == (f"{SUBSCRIPTION}/{PAYMENT_ID}", True)
    assert result.event_id == "SUBSCRIPTION_PAYMENT_SUCCESS:5114910001"


def test_a_timestamp_in_seconds_is_read_too() -> None:
    stamp = str(int(NOW.timestamp()))
    [result] = verify_webhook(_config(), _headers(_signature(EVENT, stamp), stamp), EVENT, NOW)
    assert result.succeeded


@pytest.mark.parametrize(
    "headers, body, now",
    [
        ({}, EVENT, NOW),
        (_headers(_signature(EVENT, STAMP)), EVENT.replace(b"1234.5", b"9234.5"), NOW),
        (_headers(_signature(EVENT, STAMP, "another secret")), EVENT, NOW),
        (_headers(_signature(EVENT, STAMP)), EVENT, NOW - timedelta(minutes=10)),
        (_headers(_signature(EVENT, STAMP), str(int(STAMP) + 1)), EVENT, NOW),
        ({"X-Webhook-Signature": _signature(EVENT, STAMP)}, EVENT, NOW),
        (_headers(_signature(b"not json", STAMP)), b"not json", NOW),
        (_headers(_signature(b'{"type": "X"}', STAMP)), b'{"type": "X"}', NOW),
    ],
    ids=[
        "no headers",
        "tampered",
        "wrong secret",
        "stale",
        "other timestamp",
        "no timestamp",
        "not JSON",
        "no data",
    ],
)
def test_a_forged_stale_or_altered_webhook_is_rejected(
    headers: dict[str, str], body: bytes, now: datetime
) -> None:
    with pytest.raises(WebhookRejected):
        verify_webhook(_config(), headers, body, now)


@pytest.mark.ledger
def test_finalize_collects_through_cashfree(api: ApiClient, cashfree: FakeCashfree) -> None:
    connection = connect(
        api,
        "cashfree",
        {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "baseUrl": cashfree.url},
    )
    assert connection["config"]["clientSecret"] == f"…{CLIENT_SECRET[-4:]}"
    assert connection["config"]["clientId"] == CLIENT_ID
    api.customer(
        "acme", currency="INR", paymentProvider="cashfree", paymentProviderCustomerId=SUBSCRIPTION
    )
    invoice = api.open_invoice("acme", "1234.50")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [post] = cashfree.posts(PAY)
    assert post.json()["payment_id"] == cashfree_id(f"{invoice['id']}/finalize")
    assert post.json()["payment_amount"] == Decimal("1234.50")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert payment["provider"] == "cashfree"
    assert payment["reference"] == f"{SUBSCRIPTION}/{cashfree_id(invoice['id'] + '/finalize')}"
