"""Cashfree Payment Links against the local fake (tests/helpers/cashfree_server.py), the
refund of a link's order, and the reading of each webhook type the fake signs as Cashfree
does (independently of the adapter)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments.base import LinkRequest, WebhookRejected, WebhookResult, key_uuid
from invoicing.payments.cashfree import CashfreeConfig, CashfreeGateway, verify_webhook
from tests.helpers.cashfree_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    PHONE,
    SUBSCRIPTION,
    FakeCashfree,
    fake_cashfree,
)
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, refund_request

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
KEY = "inv_1/link-1"
LINK_ID = "cf-" + hashlib.sha256(KEY.encode()).hexdigest()[:32]


@pytest.fixture
def cashfree() -> Iterator[FakeCashfree]:
    with fake_cashfree() as server:
        server.add_subscription(SUBSCRIPTION)
        server.add_subscription("sub_no_phone", phone=None)
        yield server


def _config(cashfree: FakeCashfree) -> CashfreeConfig:
    return CashfreeConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=cashfree.url)


def _gateway(cashfree: FakeCashfree, timeout: float = 5.0) -> CashfreeGateway:
    return CashfreeGateway(_config(cashfree), retry=FAST, timeout=timeout)


def _link_request(customer: str | None = SUBSCRIPTION, **fields: str) -> LinkRequest:
    return LinkRequest(
        tenant_id="ten_1",
        invoice_id="inv_1",
        invoice_number="ML-2026-0001",
        amount=Decimal("1234.50"),
        currency="INR",
        idempotency_key=KEY,
        expires_at=NOW + timedelta(hours=24),
        customer_reference=customer,
        **fields,  # type: ignore[arg-type]
    )


# -- the hosted page ------------------------------------------------------------------------


def test_a_link_is_made_with_the_subscription_s_phone(cashfree: FakeCashfree) -> None:
    link = _gateway(cashfree).payment_link(
        _link_request(success_url="https://acme.test/paid", customer_name="Acme Ltd")
    )
    short = hashlib.sha256(LINK_ID.encode()).hexdigest()[:12]
    assert (link.url, link.reference) == (f"{cashfree.url}/links/{short}", LINK_ID)
    assert link.expires_at == NOW + timedelta(hours=24)  # answered in India's time, read back
    [asked] = [r for r in cashfree.server.requests if r.method == "GET"]
    assert asked.path == f"/subscriptions/{SUBSCRIPTION}"
    [post] = cashfree.posts("/links")
    assert post.headers["x-idempotency-key"] == key_uuid(KEY)
    assert post.headers["x-api-version"] == "2023-08-01"
    assert b'"link_amount":1234.50' in post.body
    assert post.json() == {
        "link_id": LINK_ID,
        "link_amount": Decimal("1234.50"),
        "link_currency": "INR",
        "link_purpose": "Invoice ML-2026-0001",
        "customer_details": {
            "customer_phone": PHONE,
            "customer_email": "ap@acme.example",
            "customer_name": "Acme Ltd",
        },
        "link_partial_payments": False,
        "link_expiry_time": "2026-11-02T14:30:00+05:30",
        "link_notify": {"send_sms": False, "send_email": False},
        "link_notes": {
            "meterline_key": KEY,
            "meterline_invoice_id": "inv_1",
            "meterline_tenant_id": "ten_1",
        },
        "link_meta": {"return_url": "https://acme.test/paid"},
    }


@pytest.mark.parametrize("customer", [None, "sub_no_phone"])
def test_no_phone_no_link(cashfree: FakeCashfree, customer: str | None) -> None:
    with pytest.raises(InvalidInput, match="phone") as refused:
        _gateway(cashfree).payment_link(_link_request(customer))
    assert refused.value.code == "payer_phone_required"
    assert cashfree.posts("/links") == []


def test_an_unknown_subscription_is_cashfree_s_refusal(cashfree: FakeCashfree) -> None:
    with pytest.raises(UpstreamFailed, match="no such resource"):
        _gateway(cashfree).payment_link(_link_request("sub_gone"))


def test_a_5xx_is_retried_under_the_same_key_and_id(cashfree: FakeCashfree) -> None:
    cashfree.fail("/links", Response(502))  # before the link is made
    cashfree.fail("/links", Response(503), after=True)  # made, the answer lost
    link = _gateway(cashfree).payment_link(_link_request())  # the third: replayed by the key
    assert link.reference == LINK_ID and len(cashfree.links) == 1
    posts = cashfree.posts("/links")
    assert len(posts) == 3 and len({p.body for p in posts}) == 1
    assert {p.headers["x-idempotency-key"] for p in posts} == {key_uuid(KEY)}


def test_after_the_key_expired_the_taken_link_id_is_fetched(cashfree: FakeCashfree) -> None:
    gateway = _gateway(cashfree)
    first = gateway.payment_link(_link_request())
    cashfree.forget_keys()
    assert gateway.payment_link(_link_request()) == first
    assert [r.path for r in cashfree.server.requests if r.method == "GET"][-1] == (
        f"/links/{LINK_ID}"
    )


def test_a_paid_link_s_order_is_refunded_through_the_orders_api(cashfree: FakeCashfree) -> None:
    gateway = _gateway(cashfree)
    gateway.payment_link(_link_request())
    order = cashfree.pay_link(LINK_ID)
    outcome = gateway.refund(refund_request(f"order:{order}", "200.00", "INR"))
    assert (outcome.succeeded, outcome.reference) == (True, "ref_0001")
    [post] = cashfree.posts(f"/orders/{order}/refunds")
    assert post.json() == {
        "refund_amount": Decimal("200.00"),
        "refund_id": "cf-" + hashlib.sha256(b"cn_1/refund").hexdigest()[:32],
        "refund_note": "Meterline cn_1/refund",
    }
    cashfree.forget_keys()  # a second pass: the refund_id is taken, the refund fetched
    assert gateway.refund(refund_request(f"order:{order}", "200.00", "INR")) == outcome


# -- webhooks -------------------------------------------------------------------------------


def _read(cashfree: FakeCashfree, event: dict[str, object]) -> list[WebhookResult]:
    body, headers = cashfree.notification(event)
    return verify_webhook(_config(cashfree), headers, body, NOW)


def test_a_paid_link_names_its_order_and_our_key(cashfree: FakeCashfree) -> None:
    _gateway(cashfree).payment_link(_link_request())
    order = cashfree.pay_link(LINK_ID)
    [result] = _read(cashfree, cashfree.link_event(LINK_ID, order))
    assert result == WebhookResult(
        f"order:{order}", True, f"PAYMENT_LINK_EVENT:{LINK_ID}:PAID:1021206", ours=KEY
    )


def test_an_expired_link_is_a_final_failure(cashfree: FakeCashfree) -> None:
    _gateway(cashfree).payment_link(_link_request())
    cashfree.expire_link(LINK_ID)
    [result] = _read(cashfree, cashfree.link_event(LINK_ID))
    assert (result.reference, result.succeeded, result.final, result.ours) == (
        LINK_ID,
        False,
        True,
        KEY,
    )


@pytest.mark.parametrize(
    ("kind", "succeeded", "final"),
    [
        ("SUBSCRIPTION_PAYMENT_SUCCESS", True, True),
        ("SUBSCRIPTION_PAYMENT_FAILED", False, True),
        ("SUBSCRIPTION_PAYMENT_CANCELLED", False, True),
        ("SUBSCRIPTION_PAYMENT_NOTIFICATION_INITIATED", False, False),
    ],
)
def test_subscription_payment_events(
    cashfree: FakeCashfree, kind: str, succeeded: bool, final: bool
) -> None:
    cashfree.add_subscription("sub_enach", settles="PENDING")
    charged = _gateway(cashfree).charge(charge_request("sub_enach", "10.00", "INR"))
    assert charged.pending and charged.reference
    payment_id = charged.reference.split("/")[1]
    [result] = _read(cashfree, cashfree.payment_event(payment_id, kind))
    assert (result.reference, result.kind, result.succeeded, result.final) == (
        charged.reference,
        "charge",
        succeeded,
        final,
    )
    assert result.event_id == f"{kind}:{cashfree.payments[payment_id]['cf_payment_id']}"


@pytest.mark.parametrize("kind", ["SUBSCRIPTION_REFUND_STATUS", "REFUND_STATUS_WEBHOOK"])
@pytest.mark.parametrize(
    ("status", "succeeded", "final"),
    [("SUCCESS", True, True), ("PENDING", False, False), ("CANCELLED", False, True)],
)
def test_refund_events(
    cashfree: FakeCashfree, kind: str, status: str, succeeded: bool, final: bool
) -> None:
    gateway = _gateway(cashfree)
    charge = gateway.charge(charge_request(SUBSCRIPTION, "500.00", "INR")).reference
    assert charge is not None
    refund = gateway.refund(refund_request(charge, "100.00", "INR"))
    refund_id = next(iter(cashfree.refunds))
    [result] = _read(cashfree, cashfree.refund_event(refund_id, status, kind))
    assert result == WebhookResult(
        str(refund.reference),
        succeeded,
        f"{kind}:{refund.reference}:{status}",
        kind="refund",
        final=final,
    )


def test_a_link_order_s_payment_event_names_the_order(cashfree: FakeCashfree) -> None:
    event = {
        "data": {
            "order": {"order_id": "CFPay_abc_0001", "order_amount": 10, "order_tags": None},
            "payment": {"cf_payment_id": 5114910077, "payment_status": "SUCCESS"},
        },
        "event_time": "2026-11-01T14:30:00+05:30",
        "type": "PAYMENT_SUCCESS_WEBHOOK",
    }
    [result] = _read(cashfree, event)
    assert result == WebhookResult(
        "order:CFPay_abc_0001", True, "PAYMENT_SUCCESS_WEBHOOK:5114910077"
    )


def test_types_we_do_not_act_on_give_nothing(cashfree: FakeCashfree) -> None:
    event = {"data": {"subscription_details": {"subscription_id": SUBSCRIPTION}},
             "type": "SUBSCRIPTION_STATUS_CHANGE"}  # fmt: skip
    assert _read(cashfree, event) == []


def test_a_notification_signed_by_the_fake_at_another_time_is_stale(
    cashfree: FakeCashfree,
) -> None:
    body, headers = cashfree.notification(
        {"data": {"x": 1}, "type": "X"}, at=NOW - timedelta(minutes=6)
    )
    with pytest.raises(WebhookRejected, match="too long ago"):
        verify_webhook(_config(cashfree), headers, body, NOW)
