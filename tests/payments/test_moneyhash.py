"""The MoneyHash adapter against a local server that answers and checks as MoneyHash's
API v1.1 documents (tests/helpers/moneyhash_server.py), and its webhook signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.clock import FrozenClock
from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments.base import (
    LinkRequest,
    PaymentUnavailable,
    WebhookRejected,
    WebhookResult,
    key_uuid,
)
from invoicing.payments.moneyhash import MoneyhashConfig, MoneyhashGateway, verify_webhook
from tests.helpers.ledger_api import ApiClient
from tests.helpers.loopback import Response
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
from tests.payments import FAST, charge_request, connect, refund_request

STORED = f"{CUSTOMER}/{CARD_TOKEN}"
DECLINING_TOKEN = "0a1b2c3d-declines"
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def moneyhash() -> Iterator[FakeMoneyhash]:
    with fake_moneyhash() as server:
        server.store_card(CARD_TOKEN, CUSTOMER)
        server.store_card(DECLINING_TOKEN, CUSTOMER, declines=True)
        server.store_card("tok-agreed", CUSTOMER, agreement="agr_2026_acme")
        yield server


def _gateway(moneyhash: FakeMoneyhash, timeout: float = 5.0, **config: str) -> MoneyhashGateway:
    settings = MoneyhashConfig(api_key=API_KEY, base_url=moneyhash.url, **config)
    clock = FrozenClock(moneyhash.now)
    return MoneyhashGateway(settings, retry=FAST, timeout=timeout, clock=clock)


def test_a_charge_is_a_merchant_initiated_intent(moneyhash: FakeMoneyhash) -> None:
    outcome = _gateway(moneyhash).charge(charge_request(STORED, "123.45", "EGP"))
    assert outcome.succeeded and outcome.reference == "Z01mhIntent"
    [post] = moneyhash.posts()
    assert post.headers["x-api-key"] == API_KEY
    key = post.headers["x-idempotency-key"]
    assert uuid.UUID(key).version == 4 and key == key_uuid("inv_1/finalize")
    assert b'"amount":123.45' in post.body
    assert post.json() == {
        "amount": Decimal("123.45"),
        "amount_currency": "EGP",
        "operation": "purchase",
        "customer": CUSTOMER,
        "card_token": CARD_TOKEN,
        "merchant_initiated": True,
        "payment_type": "UNSCHEDULED",
        "recurring_data": {"agreement_id": CUSTOMER},
        "custom_fields": {
            "meterline_invoice_id": "inv_1",
            "meterline_invoice_number": "ML-2026-0001",
            "meterline_tenant_id": "ten_1",
            "meterline_key": "inv_1/finalize",
        },
    }


def test_an_agreement_and_a_webhook_url_are_sent_when_known(moneyhash: FakeMoneyhash) -> None:
    gateway = _gateway(moneyhash, webhook_url="https://billing.example/hooks/mh")
    assert gateway.charge(charge_request(f"{CUSTOMER}/tok-agreed/agr_2026_acme")).succeeded
    body = moneyhash.posts()[0].json()
    assert body["recurring_data"] == {"agreement_id": "agr_2026_acme"}
    assert body["webhook_url"] == "https://billing.example/hooks/mh"


def test_the_idempotency_uuid_is_one_per_key() -> None:
    assert key_uuid("inv_1/finalize") == key_uuid("inv_1/finalize")
    assert key_uuid("inv_1/finalize") != key_uuid("inv_1/dunning-1")
    digest = hashlib.sha256(b"inv_1/finalize").hexdigest()
    # SHA-256's first 16 bytes, version nibble 4 and variant 10xx stamped in.
    assert key_uuid("inv_1/finalize").replace("-", "")[12] == "4"
    assert key_uuid("inv_1/finalize").replace("-", "")[:12] == digest[:12]


def test_a_failed_transaction_is_a_decline(moneyhash: FakeMoneyhash) -> None:
    outcome = _gateway(moneyhash).charge(charge_request(f"{CUSTOMER}/{DECLINING_TOKEN}"))
    assert (outcome.succeeded, outcome.reference, outcome.error) == (
        False,
        "Z01mhIntent",
        "Insufficient funds",
    )


def test_an_unknown_card_token_is_moneyhash_s_validation_error(moneyhash: FakeMoneyhash) -> None:
    outcome = _gateway(moneyhash).charge(charge_request(f"{CUSTOMER}/tok-gone"))
    assert outcome.error == "Invalid data (card_token: Card token not found.)"


def test_a_customer_id_without_a_token_sends_nothing(moneyhash: FakeMoneyhash) -> None:
    assert _gateway(moneyhash).charge(charge_request(CUSTOMER)).error is not None
    assert moneyhash.server.requests == []


def test_a_5xx_is_retried_under_the_same_key(moneyhash: FakeMoneyhash) -> None:
    moneyhash.server.script(Response(500), Response(503))
    assert _gateway(moneyhash).charge(charge_request(STORED)).succeeded
    keys = {p.headers["x-idempotency-key"] for p in moneyhash.posts()}
    assert len(moneyhash.posts()) == 3 and keys == {key_uuid("inv_1/finalize")}
    assert len(moneyhash.intents) == 1


def test_a_lost_answer_is_replayed_by_the_key(moneyhash: FakeMoneyhash) -> None:
    moneyhash.server.lose_answers(Response(500, delay=1.0))
    outcome = _gateway(moneyhash, timeout=0.3).charge(charge_request(STORED))
    assert outcome.succeeded and outcome.reference == "Z01mhIntent"
    assert len(moneyhash.posts()) == 2 and len(moneyhash.intents) == 1


def test_retries_exhausted_are_unavailable(moneyhash: FakeMoneyhash) -> None:
    moneyhash.server.script(Response(500), Response(500), Response(500))
    with pytest.raises(PaymentUnavailable, match=r"moneyhash answered 500 \(after 3"):
        _gateway(moneyhash).charge(charge_request(STORED))
    assert moneyhash.intents == {}


def test_a_refund_is_idempotent_and_bounded(moneyhash: FakeMoneyhash) -> None:
    gateway = _gateway(moneyhash)
    intent = gateway.charge(charge_request(STORED, "50.00")).reference
    assert intent is not None
    moneyhash.server.lose_answers(Response(502))
    outcome = gateway.refund(refund_request(intent, "20.00"))
    assert outcome.succeeded and outcome.reference == "rf-0001" and len(moneyhash.refunds) == 1
    [first, _] = moneyhash.posts(f"{INTENTS}{intent}/refund/")
    assert first.json() == {"amount": Decimal("20.00")}
    assert first.headers["x-idempotency-key"] == key_uuid("cn_1/refund")
    too_much = gateway.refund(refund_request(intent, "40.00", key="cn_2/refund"))
    assert too_much.error == "Refund amount exceeds the refundable amount"


# -- the signature --------------------------------------------------------------------------

EVENT = json.dumps(
    {"type": "transaction.purchase.successful", "intent": {"id": "Z01mhIntent"}, "data": {}}
).encode()
STAMP = str(int(NOW.timestamp()))


def _v3(body: bytes, stamp: str, key: str = SIGNATURE_KEY) -> str:
    # Written out from MoneyHash's documentation, independently of the adapter's code.
    message = base64.b64encode(body).decode() + stamp
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def _header(v3: str, stamp: str = STAMP) -> dict[str, str]:
    return {"MoneyHash-Signature": f"t={stamp},v1=00,v2=00,v3={v3}"}


CONFIG = MoneyhashConfig(api_key=API_KEY, signature_key=SIGNATURE_KEY)


def test_a_signed_event_is_accepted() -> None:
    [result] = verify_webhook(CONFIG, _header(_v3(EVENT, STAMP)), EVENT, NOW + timedelta(minutes=4))
    assert (result.reference, result.succeeded, result.final) == ("Z01mhIntent", True, True)
    assert (result.kind, result.ours) == ("charge", None)  # no custom_fields in this one
    assert result.event_id == "transaction.purchase.successful:Z01mhIntent"


def test_an_expired_intent_is_a_final_failure() -> None:
    body = json.dumps({"type": "intent.time_expired", "data": {"intent_id": "Z02"}}).encode()
    [result] = verify_webhook(CONFIG, _header(_v3(body, STAMP)), body, NOW)
    assert (result.reference, result.succeeded, result.final) == ("Z02", False, True)


def _event(kind: str, **extra: Any) -> dict[str, Any]:
    intent = {"id": "Zx1", "custom_fields": {"meterline_key": "inv_9/link-1"}}
    if kind.startswith("intent."):
        return {"type": kind, "intent_type": "PAYMENT",
                "data": {"intent_id": "Zx1", "intent": intent}, **extra}  # fmt: skip
    return {"type": kind, "status_id": "st9", "operation_id": "op9", "intent": intent,
            "transaction": {"id": "tx-9", "status": kind.split(".", 1)[1]}, **extra}  # fmt: skip


def _read(event: dict[str, Any]) -> list[WebhookResult]:
    body = json.dumps(event).encode()
    return verify_webhook(CONFIG, _header(_v3(body, STAMP)), body, NOW)


@pytest.mark.parametrize(
    "kind, succeeded, final",
    [
        ("intent.processed", True, True),
        ("transaction.purchase.successful", True, True),
        ("transaction.purchase.failed", False, True),
        ("intent.time_expired", False, True),
        ("intent.closed", False, True),
        ("transaction.purchase.pending_authentication", False, False),
        ("transaction.purchase.pending_external_action", False, False),
        ("intent.something_new", False, False),
    ],
)
def test_each_intent_and_purchase_event_maps(kind: str, succeeded: bool, final: bool) -> None:
    [result] = _read(_event(kind))
    assert (result.reference, result.kind, result.succeeded, result.final, result.ours) == (
        "Zx1",
        "charge",
        succeeded,
        final,
        "inv_9/link-1",
    )


@pytest.mark.parametrize(
    "kind, succeeded, final",
    [
        ("transaction.refund.successful", True, True),
        ("transaction.refund.failed", False, True),
        ("transaction.refund.pending", False, False),
    ],
)
def test_refund_events_name_the_refund(kind: str, succeeded: bool, final: bool) -> None:
    [result] = _read(_event(kind))
    assert (result.reference, result.kind, result.succeeded, result.final, result.ours) == (
        "op9",
        "refund",
        succeeded,
        final,
        None,
    )
    assert result.event_id == f"{kind}:st9"


def test_card_and_customer_events_give_nothing() -> None:
    assert _read({"type": "card_token.created", "data": {"card_token": {"id": "c1"}}}) == []
    assert _read({"type": "customer.created", "data": {"customer": {"id": "u1"}}}) == []


@pytest.mark.parametrize(
    "event",
    [
        {"intent": {"id": "Zx1"}},  # no type
        {"type": "transaction.purchase.successful", "data": {}},  # no intent
        [1, 2],
    ],
)
def test_a_signed_event_without_its_shape_is_rejected(event: Any) -> None:
    with pytest.raises(WebhookRejected):
        _read(event)


@pytest.mark.parametrize(
    "headers, body, now",
    [
        ({}, EVENT, NOW),
        (_header(_v3(EVENT, STAMP)), EVENT + b" ", NOW),  # altered body
        (_header(_v3(EVENT, STAMP, "another key")), EVENT, NOW),
        (_header(_v3(EVENT, STAMP)), EVENT, NOW + timedelta(minutes=6)),  # replayed later
        (_header(_v3(EVENT, STAMP)), EVENT, NOW - timedelta(minutes=6)),  # from the future
        ({"MoneyHash-Signature": f"t={STAMP},v2={_v3(EVENT, STAMP)}"}, EVENT, NOW),  # no v3
        ({"MoneyHash-Signature": f"v3={_v3(EVENT, STAMP)}"}, EVENT, NOW),  # no t
        (_header(_v3(b"not json", STAMP)), b"not json", NOW),  # signed, not JSON
    ],
)
def test_a_forged_stale_or_altered_event_is_rejected(
    headers: dict[str, str], body: bytes, now: datetime
) -> None:
    with pytest.raises(WebhookRejected):
        verify_webhook(CONFIG, headers, body, now)


def test_without_a_signature_key_nothing_is_trusted() -> None:
    with pytest.raises(WebhookRejected, match="signatureKey"):
        verify_webhook(MoneyhashConfig(api_key=API_KEY), _header(_v3(EVENT, STAMP)), EVENT, NOW)


# -- the hosted checkout --------------------------------------------------------------------

LINK = LinkRequest(
    tenant_id="ten_1",
    invoice_id="inv_1",
    invoice_number="ML-2026-0001",
    amount=Decimal("123.45"),
    currency="EGP",
    idempotency_key="inv_1/link-1",
    expires_at=NOW + timedelta(hours=24, seconds=42),
    customer_email="billing@acme.example",
    customer_name="Acme Trading Co",
    success_url="https://billing.example/paid",
    cancel_url="https://billing.example/cancelled",
)


def test_a_hosted_page_is_an_intent_without_a_card_token(moneyhash: FakeMoneyhash) -> None:
    gateway = _gateway(moneyhash, webhook_url="https://billing.example/api/v1/hooks/mh")
    link = gateway.payment_link(LINK)
    [post] = moneyhash.posts()
    assert post.headers["x-api-key"] == API_KEY
    assert post.headers["x-idempotency-key"] == key_uuid("inv_1/link-1")
    assert b'"amount":123.45' in post.body
    assert post.json() == {
        "amount": Decimal("123.45"),
        "amount_currency": "EGP",
        "operation": "purchase",
        "expires_after_seconds": 86400,  # whole minutes of what is left
        "custom_fields": {
            "meterline_invoice_id": "inv_1",
            "meterline_invoice_number": "ML-2026-0001",
            "meterline_tenant_id": "ten_1",
            "meterline_key": "inv_1/link-1",
        },
        "billing_data": {
            "first_name": "Acme",
            "last_name": "Trading Co",
            "email": "billing@acme.example",
        },
        "successful_redirect_url": "https://billing.example/paid",
        "failed_redirect_url": "https://billing.example/cancelled",
        "webhook_url": "https://billing.example/api/v1/hooks/mh",
    }
    assert link.reference == "H01mhIntent"
    assert link.url == f"{moneyhash.url}{EMBED}H01mhIntent/"
    assert link.expires_at == NOW + timedelta(hours=24)


def test_a_hosted_page_sends_only_what_is_known(moneyhash: FakeMoneyhash) -> None:
    bare = replace(
        LINK,
        customer_name=None,
        customer_email=None,
        success_url=None,
        cancel_url=None,
        customer_reference=f"{CUSTOMER}/{CARD_TOKEN}",
    )
    _gateway(moneyhash).payment_link(bare)
    body = moneyhash.posts()[0].json()
    assert set(body) == {
        "amount",
        "amount_currency",
        "operation",
        "expires_after_seconds",
        "custom_fields",
        "customer",
    }
    assert body["customer"] == CUSTOMER


def test_a_link_already_past_or_too_precise_is_refused(moneyhash: FakeMoneyhash) -> None:
    with pytest.raises(InvalidInput, match="already past"):
        _gateway(moneyhash).payment_link(replace(LINK, expires_at=NOW))
    with pytest.raises(InvalidInput, match="decimals"):
        _gateway(moneyhash).payment_link(replace(LINK, amount=Decimal("1.001")))
    assert moneyhash.server.requests == []


def test_a_hosted_page_is_retried_and_repeated_under_one_key(moneyhash: FakeMoneyhash) -> None:
    moneyhash.server.script(Response(500), Response(503))
    gateway = _gateway(moneyhash)
    first = gateway.payment_link(LINK)
    again = gateway.payment_link(LINK)
    keys = {p.headers["x-idempotency-key"] for p in moneyhash.posts()}
    assert len(moneyhash.posts()) == 4 and keys == {key_uuid("inv_1/link-1")}
    assert first == again and len(moneyhash.intents) == 1


def test_a_lost_answer_for_a_hosted_page_is_the_same_page(moneyhash: FakeMoneyhash) -> None:
    moneyhash.server.lose_answers(Response(500, delay=1.0))
    link = _gateway(moneyhash, timeout=0.3).payment_link(LINK)
    assert link.reference == "H01mhIntent" and len(moneyhash.intents) == 1


def test_a_refused_hosted_intent_is_moneyhash_s_error(moneyhash: FakeMoneyhash) -> None:
    moneyhash.server.script(
        Response(400, {"status": {"code": 400, "message": "Invalid data", "errors": []}})
    )
    with pytest.raises(UpstreamFailed, match="Invalid data"):
        _gateway(moneyhash).payment_link(LINK)


def _verified(notification: tuple[bytes, dict[str, str]]) -> list[WebhookResult]:
    body, headers = notification
    return verify_webhook(CONFIG, headers, body, NOW)


def test_paying_the_hosted_page_sends_two_events_with_our_key(moneyhash: FakeMoneyhash) -> None:
    link = _gateway(moneyhash).payment_link(LINK)
    transaction, intent = moneyhash.pay(link.reference)
    [paid] = _verified(transaction)
    [processed] = _verified(intent)
    for result in (paid, processed):
        assert (result.reference, result.kind, result.succeeded, result.final, result.ours) == (
            link.reference,
            "charge",
            True,
            True,
            "inv_1/link-1",
        )
    assert paid.event_id != processed.event_id
    assert _verified(transaction) == [paid]  # a redelivery is the same event


def test_a_declined_card_or_an_expiry_on_the_page_is_a_final_failure(
    moneyhash: FakeMoneyhash,
) -> None:
    link = _gateway(moneyhash).payment_link(LINK)
    [failed] = _verified(moneyhash.fail(link.reference))
    [expired] = _verified(moneyhash.expire(link.reference))
    assert (failed.succeeded, failed.final, failed.ours) == (False, True, "inv_1/link-1")
    assert (expired.succeeded, expired.final, expired.ours) == (False, True, "inv_1/link-1")


def test_a_refund_of_a_hosted_payment_is_its_refund_event(moneyhash: FakeMoneyhash) -> None:
    gateway = _gateway(moneyhash)
    link = gateway.payment_link(LINK)
    moneyhash.pay(link.reference)
    refund = gateway.refund(refund_request(link.reference, "20.00", "EGP"))
    assert refund.succeeded and refund.reference == "rf-0001"
    [result] = _verified(moneyhash.settle_refund("rf-0001"))
    assert (result.reference, result.kind, result.succeeded, result.final) == (
        "rf-0001",
        "refund",
        True,
        True,
    )


def test_the_fake_signs_as_the_documentation_says() -> None:
    # The fake's v3, from MoneyHash's description, against this file's own reading.
    assert signature_v3(EVENT, STAMP) == _v3(EVENT, STAMP)


@pytest.mark.ledger
def test_finalize_collects_through_moneyhash(api: ApiClient, moneyhash: FakeMoneyhash) -> None:
    connection = connect(
        api,
        "moneyhash",
        {"apiKey": API_KEY, "signatureKey": SIGNATURE_KEY, "baseUrl": moneyhash.url},
    )
    assert connection["config"]["apiKey"] == f"…{API_KEY[-4:]}"
    assert connection["config"]["signatureKey"] == f"…{SIGNATURE_KEY[-4:]}"
    api.customer("acme", paymentProvider="moneyhash", paymentProviderCustomerId=STORED)
    invoice = api.open_invoice("acme", "123.45")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [post] = moneyhash.posts()
    assert post.headers["x-idempotency-key"] == key_uuid(f"{invoice['id']}/finalize")
    assert (post.json()["amount"], post.json()["amount_currency"]) == (Decimal("123.45"), "USD")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert (payment["provider"], payment["reference"]) == ("moneyhash", "Z01mhIntent")
