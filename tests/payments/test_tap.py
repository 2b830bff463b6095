"""The Tap adapter against a local server that answers and checks as Tap's API v2
documents (tests/helpers/tap_server.py), and its webhook hashstring."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments.base import LinkRequest, PaymentUnavailable, WebhookRejected
from invoicing.payments.tap import TapConfig, TapGateway, verify_webhook
from tests.helpers.ledger_api import ApiClient
from tests.helpers.loopback import Response
from tests.helpers.tap_server import (
    AGREEMENT,
    CARD,
    CHARGES,
    CUSTOMER,
    PAGE,
    REFUNDS,
    SECRET_KEY,
    TOKENS,
    FakeTap,
    fake_tap,
    hashstring,
)
from tests.payments import FAST, charge_request, connect, refund_request

SAVED = f"{CUSTOMER}/{CARD}/{AGREEMENT}"
DECLINING_CARD = "card_declines0000000000001"
DECLINING = f"{CUSTOMER}/{DECLINING_CARD}/{AGREEMENT}"
NOW = datetime(2026, 11, 3, tzinfo=UTC)


@pytest.fixture
def tap() -> Iterator[FakeTap]:
    with fake_tap() as server:
        server.save_card(CARD, CUSTOMER, AGREEMENT)
        server.save_card(DECLINING_CARD, CUSTOMER, AGREEMENT, declines=True)
        yield server


def _gateway(tap: FakeTap, timeout: float = 5.0, **config: str) -> TapGateway:
    return TapGateway(
        TapConfig(secret_key=SECRET_KEY, base_url=tap.url, **config),
        retry=FAST,
        timeout=timeout,
    )


def test_a_charge_tokenizes_the_saved_card_then_charges_it(tap: FakeTap) -> None:
    outcome = _gateway(tap).charge(charge_request(SAVED, "123.45", "SAR"))
    assert outcome.succeeded and outcome.reference == "chg_TS01A4020230203x2XZ2205881"
    [token] = tap.posts(TOKENS)
    assert token.json() == {"saved_card": {"card_id": CARD, "customer_id": CUSTOMER}}
    [post] = tap.posts(CHARGES)
    assert post.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert b'"amount":123.45' in post.body  # a JSON number, exact, major unit
    assert post.json() == {
        "amount": Decimal("123.45"),
        "currency": "SAR",
        "customer_initiated": False,
        "threeDSecure": False,
        "save_card": False,
        "payment_agreement": {"id": AGREEMENT},
        "customer": {"id": CUSTOMER},
        "source": {"id": "tok_meterline0001"},
        "description": "Invoice ML-2026-0001",
        "reference": {
            "transaction": "inv_1/finalize",
            "order": "ML-2026-0001",
            "idempotent": "inv_1/finalize",
        },
        "metadata": {"meterline_invoice_id": "inv_1", "meterline_tenant_id": "ten_1"},
    }


def test_a_three_decimal_currency_keeps_its_decimals(tap: FakeTap) -> None:
    assert _gateway(tap).charge(charge_request(SAVED, "10.5", "KWD")).succeeded
    assert b'"amount":10.500,' in tap.posts(CHARGES)[0].body


def test_a_declined_card_is_a_decline(tap: FakeTap) -> None:
    outcome = _gateway(tap).charge(charge_request(DECLINING, "10.00", "SAR"))
    assert (outcome.succeeded, outcome.error) == (False, "Insufficient Funds (051)")
    assert outcome.reference == "chg_TS01A4020230203x2XZ2205881"


def test_a_wrong_agreement_is_tap_s_error(tap: FakeTap) -> None:
    outcome = _gateway(tap).charge(charge_request(f"{CUSTOMER}/{CARD}/payment_agreement_x"))
    assert outcome.error == "Agreement id is missing (1216)" and tap.charges == {}


def test_an_incomplete_customer_id_sends_nothing(tap: FakeTap) -> None:
    outcome = _gateway(tap).charge(charge_request(f"{CUSTOMER}/{CARD}"))
    assert outcome.error is not None and "payment agreement" in outcome.error
    assert tap.server.requests == []


def test_a_5xx_is_retried_with_the_same_idempotent_string(tap: FakeTap) -> None:
    tap.fail_next(CHARGES, Response(500), Response(503))
    assert _gateway(tap).charge(charge_request(SAVED, "5.00", "SAR")).succeeded
    idempotent = [p.json()["reference"]["idempotent"] for p in tap.posts(CHARGES)]
    assert idempotent == ["inv_1/finalize"] * 3 and len(tap.charges) == 1


def test_a_lost_answer_is_replayed_not_charged_twice(tap: FakeTap) -> None:
    tap.lose_next(CHARGES, Response(500, delay=1.0))  # charged; the answer never came
    outcome = _gateway(tap, timeout=0.3).charge(charge_request(SAVED, "5.00", "SAR"))
    assert outcome.succeeded and outcome.reference == "chg_TS01A4020230203x2XZ2205881"
    assert len(tap.posts(CHARGES)) == 2 and len(tap.charges) == 1


def test_a_second_pass_under_the_same_key_is_the_first_charge(tap: FakeTap) -> None:
    # A crash after the charge: the next pass makes a new token, Tap answers by the key.
    gateway = _gateway(tap)
    first = gateway.charge(charge_request(SAVED, "5.00", "SAR"))
    again = gateway.charge(charge_request(SAVED, "5.00", "SAR"))
    assert first == again and len(tap.charges) == 1 and len(tap.tokens) == 2


def test_retries_exhausted_are_unavailable(tap: FakeTap) -> None:
    tap.fail_next(CHARGES, Response(502), Response(502), Response(502))
    with pytest.raises(PaymentUnavailable, match=r"tap answered 502 \(after 3"):
        _gateway(tap).charge(charge_request(SAVED))
    assert tap.charges == {}


def test_a_refund_is_idempotent_and_bounded(tap: FakeTap) -> None:
    gateway = _gateway(tap)
    charge = gateway.charge(charge_request(SAVED, "50.00", "SAR")).reference
    assert charge is not None
    tap.lose_next(REFUNDS, Response(500, delay=1.0))
    slow = TapGateway(TapConfig(secret_key=SECRET_KEY, base_url=tap.url), retry=FAST, timeout=0.3)
    outcome = slow.refund(refund_request(charge, "20.00", "SAR"))
    assert outcome.succeeded and outcome.reference == "re_TS01A5720231211"
    assert len(tap.refunds) == 1 and len(tap.posts(REFUNDS)) == 2
    assert tap.posts(REFUNDS)[0].json() == {
        "charge_id": charge,
        "amount": Decimal("20.00"),
        "currency": "SAR",
        "reason": "requested_by_customer",
        "reference": {"merchant": "cn_1/refund", "idempotent": "cn_1/refund"},
        "metadata": {"meterline_refund": "cn_1/refund"},
    }
    too_much = gateway.refund(refund_request(charge, "40.00", "SAR", key="cn_2/refund"))
    assert too_much.error == "Refund amount exceeds the remaining charge amount (1141)"


# -- the hashstring -------------------------------------------------------------------------

EVENT = {
    "id": "chg_TS05A4120230736x9K22710693",
    "object": "charge",
    "status": "CAPTURED",
    "amount": 1.0,
    "currency": "SAR",
    "transaction": {"created": "1698392202943", "amount": 1.0, "currency": "SAR"},
    "reference": {
        "gateway": "mada_pg70983e7a",
        "payment": "4327230736106619650",
        "transaction": "inv_1/finalize",
    },
}


def _hashstring(text: str, key: str = SECRET_KEY) -> str:
    # Written out from Tap's documentation, independently of the adapter's code.
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


EXPECTED = _hashstring(
    "x_idchg_TS05A4120230736x9K22710693x_amount1.00x_currencySAR"
    "x_gateway_referencemada_pg70983e7ax_payment_reference4327230736106619650"
    "x_statusCAPTUREDx_created1698392202943"
)


CONFIG = TapConfig(secret_key=SECRET_KEY)


def test_a_posted_charge_with_its_hashstring_is_accepted() -> None:
    body = json.dumps(EVENT).encode()
    [result] = verify_webhook(CONFIG, {"Hashstring": EXPECTED}, body, NOW)
    assert (result.reference, result.succeeded, result.final) == (
        "chg_TS05A4120230736x9K22710693",
        True,
        True,
    )
    assert (result.kind, result.ours) == ("charge", "inv_1/finalize")
    assert result.event_id == "chg_TS05A4120230736x9K22710693:CAPTURED"


def test_a_three_decimal_amount_is_hashed_with_three_decimals() -> None:
    event = {**EVENT, "currency": "KWD", "amount": 10.5, "status": "DECLINED"}
    expected = _hashstring(
        "x_idchg_TS05A4120230736x9K22710693x_amount10.500x_currencyKWD"
        "x_gateway_referencemada_pg70983e7ax_payment_reference4327230736106619650"
        "x_statusDECLINEDx_created1698392202943"
    )
    body = json.dumps(event).encode()
    [result] = verify_webhook(CONFIG, {"hashstring": expected}, body, NOW)
    assert (result.succeeded, result.final) == (False, True)


def _posted(event: dict[str, object]) -> list[tuple[str, bool, bool, str, str | None]]:
    body = json.dumps(event).encode()
    results = verify_webhook(CONFIG, {"hashstring": hashstring(event)}, body, NOW)
    return [(r.reference, r.succeeded, r.final, r.kind, r.ours) for r in results]


CHG = "chg_TS05A4120230736x9K22710693"


@pytest.mark.parametrize(
    "status, succeeded, final",
    [
        ("CAPTURED", True, True),
        ("INITIATED", False, False),
        ("IN_PROGRESS", False, False),
        ("ABANDONED", False, True),
        ("CANCELLED", False, True),
        ("FAILED", False, True),
        ("DECLINED", False, True),
        ("RESTRICTED", False, True),
        ("VOID", False, True),
        ("TIMEDOUT", False, True),
        ("UNKNOWN", False, True),  # Tap lists it with the failed payments
        ("SOMETHING_NEW", False, False),  # a status Tap adds later changes nothing
    ],
)
def test_each_charge_status_maps(status: str, succeeded: bool, final: bool) -> None:
    got = _posted({**EVENT, "status": status})
    assert got == [(CHG, succeeded, final, "charge", "inv_1/finalize")]


REFUND_EVENT = {
    "id": "re_TS01A5720231211",
    "object": "refund",
    "charge_id": CHG,
    "amount": 20.0,
    "currency": "SAR",
    "created": "1698399000000",
    "status": "REFUNDED",
    "reference": {"merchant": "cn_1/refund"},
}


@pytest.mark.parametrize(
    "status, succeeded, final",
    [
        ("REFUNDED", True, True),
        ("PENDING", False, False),
        ("IN_PROGRESS", False, False),
        ("FAILED", False, True),
        ("DECLINED", False, True),
        ("CANCELLED", False, True),
    ],
)
def test_each_refund_status_maps(status: str, succeeded: bool, final: bool) -> None:
    got = _posted({**REFUND_EVENT, "status": status})
    assert got == [("re_TS01A5720231211", succeeded, final, "refund", "cn_1/refund")]


def test_an_authorize_is_verified_but_gives_nothing() -> None:
    event = {**EVENT, "id": "auth_TS04A1720230745Rt2a2710607", "object": "authorize"}
    assert _posted({**event, "status": "AUTHORIZED"}) == []


def test_a_charge_without_our_reference_has_no_ours() -> None:
    event = {**EVENT, "reference": {"gateway": "g", "payment": "p"}}
    assert _posted(event) == [(CHG, True, True, "charge", None)]


@pytest.mark.parametrize(
    "headers, body",
    [
        ({}, json.dumps(EVENT).encode()),  # no hashstring
        ({"hashstring": EXPECTED}, json.dumps({**EVENT, "amount": 100.0}).encode()),  # tampered
        ({"hashstring": EXPECTED}, json.dumps({**EVENT, "status": "FAILED"}).encode()),
        ({"hashstring": _hashstring("x_id", "another key")}, json.dumps(EVENT).encode()),
        ({"hashstring": hashstring(EVENT, "sk_test_another")}, json.dumps(EVENT).encode()),
        ({"hashstring": EXPECTED}, b"not json"),
        ({"hashstring": EXPECTED}, b"[1, 2]"),
    ],
)
def test_a_forged_or_altered_post_is_rejected(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        verify_webhook(CONFIG, headers, body, NOW)


# -- the hosted page ------------------------------------------------------------------------

LINK = LinkRequest(
    tenant_id="ten_1",
    invoice_id="inv_1",
    invoice_number="ML-2026-0001",
    amount=Decimal("123.45"),
    currency="SAR",
    idempotency_key="inv_1/link-1",
    expires_at=datetime(2026, 11, 4, 9, 0, tzinfo=UTC),
    customer_email="billing@acme.example",
    customer_name="Acme Trading Co",
    success_url="https://billing.example/paid",
    cancel_url="https://billing.example/cancelled",
)


def test_a_hosted_page_is_a_src_all_charge(tap: FakeTap) -> None:
    gateway = _gateway(tap, webhook_url="https://billing.example/api/v1/hooks/tap")
    link = gateway.payment_link(LINK)
    [post] = tap.posts(CHARGES)
    assert post.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert b'"amount":123.45' in post.body
    assert post.json() == {
        "amount": Decimal("123.45"),
        "currency": "SAR",
        "customer_initiated": True,
        "threeDSecure": True,
        "save_card": False,
        "description": "Invoice ML-2026-0001",
        "reference": {
            "transaction": "inv_1/link-1",
            "order": "ML-2026-0001",
            "idempotent": "inv_1/link-1",
        },
        "metadata": {"meterline_invoice_id": "inv_1", "meterline_tenant_id": "ten_1"},
        "customer": {
            "first_name": "Acme",
            "last_name": "Trading Co",
            "email": "billing@acme.example",
        },
        "source": {"id": "src_all"},
        "redirect": {"url": "https://billing.example/paid"},
        "post": {"url": "https://billing.example/api/v1/hooks/tap"},
        "transaction": {"expiry": {"period": 60, "type": "MINUTE"}},
    }
    [charge_id] = tap.charges
    assert link.reference == charge_id and tap.charges[charge_id]["status"] == "INITIATED"
    assert link.url == f"{tap.url}{PAGE}?chg={charge_id}"
    # Tap keeps a charge open 60 minutes at most, counted from its transaction.created.
    assert link.expires_at == tap.now + timedelta(minutes=60)


def test_a_link_ends_when_asked_if_that_is_before_tap_s_end(tap: FakeTap) -> None:
    soon = replace(LINK, expires_at=tap.now + timedelta(minutes=12))
    link = _gateway(tap).payment_link(soon)
    assert tap.posts(CHARGES)[0].json()["transaction"] == {
        "expiry": {"period": 60, "type": "MINUTE"}
    }
    assert "post" not in tap.posts(CHARGES)[0].json()  # no webhookUrl configured
    assert link.expires_at == tap.now + timedelta(minutes=12)


def test_a_known_tap_customer_is_named_by_id(tap: FakeTap) -> None:
    known = replace(LINK, customer_reference=f"{CUSTOMER}/{CARD}/{AGREEMENT}", customer_email=None)
    _gateway(tap).payment_link(known)
    assert tap.posts(CHARGES)[0].json()["customer"] == {"id": CUSTOMER}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"customer_email": None}, "name and email"),
        ({"customer_name": None}, "name and email"),
        ({"customer_name": "  "}, "name and email"),
        ({"success_url": None, "cancel_url": None}, "successUrl"),
        ({"amount": Decimal("1.234")}, "decimals"),
    ],
)
def test_what_tap_cannot_take_is_refused_before_sending(
    tap: FakeTap, change: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        _gateway(tap).payment_link(replace(LINK, **change))  # type: ignore[arg-type]
    assert tap.server.requests == []


def test_without_a_success_url_the_cancel_url_is_the_way_back(tap: FakeTap) -> None:
    _gateway(tap).payment_link(replace(LINK, success_url=None))
    assert tap.posts(CHARGES)[0].json()["redirect"] == {"url": "https://billing.example/cancelled"}


def test_a_hosted_page_is_retried_and_repeated_under_one_idempotent_string(
    tap: FakeTap,
) -> None:
    tap.fail_next(CHARGES, Response(500), Response(503))
    gateway = _gateway(tap)
    first = gateway.payment_link(LINK)
    again = gateway.payment_link(LINK)
    idempotent = [p.json()["reference"]["idempotent"] for p in tap.posts(CHARGES)]
    assert idempotent == ["inv_1/link-1"] * 4
    assert first == again and len(tap.charges) == 1


def test_a_lost_answer_for_a_hosted_page_is_the_same_page(tap: FakeTap) -> None:
    tap.lose_next(CHARGES, Response(500, delay=1.0))
    link = _gateway(tap, timeout=0.3).payment_link(LINK)
    assert len(tap.charges) == 1 and link.reference in tap.charges


def test_a_refused_hosted_charge_is_tap_s_error(tap: FakeTap) -> None:
    tap.fail_next(CHARGES, Response(400, {"errors": [{"code": "1111", "description": "Bad"}]}))
    with pytest.raises(UpstreamFailed, match=r"Bad \(1111\)"):
        _gateway(tap).payment_link(LINK)


def test_paying_the_hosted_page_posts_a_capture_with_our_key(tap: FakeTap) -> None:
    link = _gateway(tap).payment_link(LINK)
    body, headers = tap.pay(link.reference)
    [result] = verify_webhook(CONFIG, headers, body, NOW)
    assert (result.reference, result.succeeded, result.final, result.ours) == (
        link.reference,
        True,
        True,
        "inv_1/link-1",
    )
    declined = _gateway(tap).payment_link(replace(LINK, idempotency_key="inv_1/link-2"))
    body, headers = tap.pay(declined.reference, "DECLINED")
    [result] = verify_webhook(CONFIG, headers, body, NOW)
    assert (result.succeeded, result.final, result.ours) == (False, True, "inv_1/link-2")
    with pytest.raises(WebhookRejected):
        verify_webhook(TapConfig(secret_key="sk_test_other"), headers, body, NOW)


def test_a_refund_of_a_hosted_payment_is_posted_when_settled(tap: FakeTap) -> None:
    gateway = _gateway(tap)
    link = gateway.payment_link(LINK)
    tap.pay(link.reference)
    refund = gateway.refund(refund_request(link.reference, "20.00", "SAR"))
    assert refund.succeeded and refund.reference is not None
    body, headers = tap.settle_refund(refund.reference)
    [result] = verify_webhook(CONFIG, headers, body, NOW)
    assert (result.reference, result.kind, result.succeeded, result.final, result.ours) == (
        refund.reference,
        "refund",
        True,
        True,
        "cn_1/refund",
    )


@pytest.mark.ledger
def test_finalize_collects_through_tap(api: ApiClient, tap: FakeTap) -> None:
    connection = connect(api, "tap", {"secretKey": SECRET_KEY, "baseUrl": tap.url})
    assert connection["config"]["secretKey"] == f"…{SECRET_KEY[-4:]}"
    api.customer("acme", paymentProvider="tap", paymentProviderCustomerId=SAVED)
    invoice = api.open_invoice("acme", "123.45")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [post] = tap.posts(CHARGES)
    assert post.json()["reference"]["idempotent"] == f"{invoice['id']}/finalize"
    assert (post.json()["amount"], post.json()["currency"]) == (Decimal("123.45"), "USD")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert (payment["provider"], payment["reference"]) == ("tap", "chg_TS01A4020230203x2XZ2205881")
