"""Adyen's Pay by Link pages and its standard notifications, at the adapter: the request
`payment_link` sends (tests/helpers/adyen_server.py checks it as Adyen documents), and
what `verify_webhook` makes of the posts the fake signs with Adyen's documented HMAC."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments.adyen import AdyenConfig, AdyenGateway, verify_webhook
from invoicing.payments.base import LinkRequest, PaymentUnavailable, WebhookRejected
from invoicing.payments.providers import build_gateway
from tests.helpers.adyen_server import (
    API_KEY,
    HMAC_KEY,
    MERCHANT,
    PAYMENT_LINKS,
    TOKEN,
    FakeAdyen,
    fake_adyen,
)
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, refund_request

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)
CONFIG = AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT, hmac_key=HMAC_KEY)


@pytest.fixture
def adyen() -> Iterator[FakeAdyen]:
    with fake_adyen() as server:
        server.add_shopper("acme")
        server.add_shopper("sepa", pending=True)
        yield server


def _gateway(adyen: FakeAdyen) -> AdyenGateway:
    settings = AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT, base_url=adyen.url)
    return AdyenGateway(settings, retry=FAST, timeout=5.0)


def _link_request(key: str = "inv_1/link-1", **fields: Any) -> LinkRequest:
    values: dict[str, Any] = {
        "tenant_id": "ten_1",
        "invoice_id": "inv_1",
        "invoice_number": "ML-2026-0001",
        "amount": Decimal("123.45"),
        "currency": "EUR",
        "idempotency_key": key,
        "expires_at": EXPIRES,
        "customer_reference": f"acme/{TOKEN}",
        "customer_email": "billing@acme.example",
        "success_url": "https://acme.example/paid",
        "cancel_url": "https://acme.example/back",
    }
    return LinkRequest(**{**values, **fields})


def _verify(body: bytes, config: AdyenConfig = CONFIG) -> list[Any]:
    return verify_webhook(config, {"Content-Type": "application/json"}, body, NOW)


# -- Pay by Link -----------------------------------------------------------------------------


def test_a_payment_link_is_a_pay_by_link_page_under_our_reference(adyen: FakeAdyen) -> None:
    link = _gateway(adyen).payment_link(_link_request())
    assert link.url == f"{adyen.url}/pay/PL0000000000000001"
    assert link.reference == "PL0000000000000001"
    assert link.expires_at == EXPIRES
    [post] = adyen.posts(PAYMENT_LINKS)
    assert post.headers["x-api-key"] == API_KEY
    assert post.headers["idempotency-key"] == "inv_1/link-1"
    assert post.json() == {
        "merchantAccount": MERCHANT,
        "amount": {"value": 12345, "currency": "EUR"},
        "reference": "inv_1/link-1",
        "description": "Invoice ML-2026-0001",
        "expiresAt": "2026-11-02T09:00:00Z",
        "returnUrl": "https://acme.example/paid",
        "shopperReference": "acme",
        "shopperEmail": "billing@acme.example",
        "metadata": {"meterlineInvoiceId": "inv_1", "meterlineTenantId": "ten_1"},
    }


def test_a_link_without_customer_details_sends_only_what_it_has(adyen: FakeAdyen) -> None:
    request = _link_request(
        customer_reference="acme", customer_email=None, success_url=None, cancel_url=None
    )
    _gateway(adyen).payment_link(request)
    body = adyen.posts(PAYMENT_LINKS)[0].json()
    assert body["shopperReference"] == "acme"
    assert {"shopperEmail", "returnUrl"} & set(body) == set()
    back = _link_request(key="inv_1/link-2", success_url=None)
    _gateway(adyen).payment_link(back)
    assert adyen.posts(PAYMENT_LINKS)[1].json()["returnUrl"] == "https://acme.example/back"


def test_a_link_is_retried_under_the_same_key_and_made_once(adyen: FakeAdyen) -> None:
    adyen.server.script(Response(500), Response(503))
    first = _gateway(adyen).payment_link(_link_request())
    assert [p.headers["idempotency-key"] for p in adyen.posts(PAYMENT_LINKS)] == [
        "inv_1/link-1"
    ] * 3
    # The answer lost after Adyen made the link: the retry is answered with the same link.
    adyen.server.lose_answers(Response(502))
    again = _gateway(adyen).payment_link(_link_request())
    assert again == first
    assert len(adyen.links) == 1


def test_a_refused_or_unreachable_link_raises(adyen: FakeAdyen) -> None:
    with pytest.raises(UpstreamFailed, match=r"amount must be .* \(14_030\)"):
        _gateway(adyen).payment_link(_link_request(amount=Decimal("-1")))
    adyen.server.script(Response(500), Response(500), Response(500))
    with pytest.raises(PaymentUnavailable):
        _gateway(adyen).payment_link(_link_request(key="inv_1/link-2"))
    with pytest.raises(InvalidInput, match="more decimals than JPY"):
        _gateway(adyen).payment_link(_link_request(currency="JPY", amount=Decimal("1.5")))
    assert adyen.links == {}


# -- charges whose result comes later ---------------------------------------------------------


def test_a_received_charge_is_pending_under_our_reference(adyen: FakeAdyen) -> None:
    outcome = _gateway(adyen).charge(charge_request(f"sepa/{TOKEN}"))
    assert (outcome.succeeded, outcome.pending, outcome.reference) == (
        False,
        True,
        "P000000000000001",
    )
    body = adyen.posts()[0].json()
    assert (body["reference"], body["merchantOrderReference"]) == ("inv_1/finalize", "ML-2026-0001")


# -- verify_webhook: the signature ----------------------------------------------------------


def test_a_genuine_batch_gives_one_result_per_item(adyen: FakeAdyen) -> None:
    gateway = _gateway(adyen)
    paid = gateway.charge(charge_request(f"acme/{TOKEN}", "50.00")).reference
    assert paid is not None
    refund = gateway.refund(refund_request(paid, "20.00")).reference
    assert refund is not None
    body, headers = adyen.webhook(adyen.notification(paid), adyen.refund_notification(refund))
    results = verify_webhook(CONFIG, headers, body, NOW)
    assert [(r.kind, r.reference, r.succeeded, r.final, r.ours, r.event_id) for r in results] == [
        ("charge", paid, True, True, "inv_1/finalize", f"{paid}:AUTHORISATION:true"),
        ("refund", refund, True, True, "cn_1/refund", f"{refund}:REFUND:true"),
    ]


def test_one_forged_item_refuses_the_whole_post(adyen: FakeAdyen) -> None:
    first = adyen.pay_link(_gateway(adyen).payment_link(_link_request()).reference)
    second = adyen.pay_link(
        _gateway(adyen).payment_link(_link_request(key="inv_2/link-1")).reference
    )
    genuine, forged = adyen.notification(first), adyen.notification(second)
    forged["amount"] = {"value": 1, "currency": "EUR"}
    body, _ = adyen.webhook(genuine, forged)
    with pytest.raises(WebhookRejected, match=r"notificationItems\[1\]"):
        _verify(body)


@pytest.mark.parametrize(
    "change",
    [
        lambda item: item.update(success="false"),
        lambda item: item.update(merchantReference="inv_9/link-1"),
        lambda item: item.update(pspReference="P999999999999999"),
        lambda item: item.update(eventCode="REFUND"),
        lambda item: item["additionalData"].pop("hmacSignature"),
        lambda item: item.pop("additionalData"),
    ],
)
def test_a_tampered_or_unsigned_item_is_rejected(adyen: FakeAdyen, change: Any) -> None:
    item = adyen.notification(
        adyen.pay_link(_gateway(adyen).payment_link(_link_request()).reference)
    )
    changed = copy.deepcopy(item)
    change(changed)
    with pytest.raises(WebhookRejected, match="not Adyen's"):
        _verify(adyen.webhook(changed)[0])


def test_a_wrong_or_missing_key_and_a_body_not_adyens_are_rejected(adyen: FakeAdyen) -> None:
    item = adyen.notification(
        adyen.pay_link(_gateway(adyen).payment_link(_link_request()).reference)
    )
    body = adyen.webhook(item)[0]
    assert len(_verify(body)) == 1
    with pytest.raises(WebhookRejected, match="not Adyen's"):
        _verify(body, AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT, hmac_key="00" * 32))
    unsigned = AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT)
    with pytest.raises(WebhookRejected, match="no hmacKey"):
        _verify(body, unsigned)
    with pytest.raises(WebhookRejected, match="not JSON"):
        _verify(b"notificationItems=1")
    for shape in ({}, {"notificationItems": []}, {"notificationItems": [{"x": 1}]}, [1]):
        with pytest.raises(WebhookRejected):
            _verify(json.dumps(shape).encode())


def test_the_hmac_key_must_be_hexadecimal() -> None:
    with pytest.raises(
        InvalidInput, match=r"config\.hmacKey: Value error, must be the hexadecimal"
    ):
        build_gateway("adyen", {"apiKey": API_KEY, "merchantAccount": MERCHANT, "hmacKey": "xyz"})


# -- verify_webhook: what each event says --------------------------------------------------


@pytest.mark.parametrize(
    ("event_code", "success", "expected"),
    [
        ("AUTHORISATION", True, ("charge", "payment", True, True)),
        ("AUTHORISATION", False, ("charge", "payment", False, True)),
        ("CAPTURE", True, ("charge", "payment", True, True)),
        ("CAPTURE", False, ("charge", "payment", False, True)),
        ("CAPTURE_FAILED", True, ("charge", "payment", False, True)),
        ("CANCELLATION", True, ("charge", "payment", False, True)),
        ("TECHNICAL_CANCEL", True, ("charge", "payment", False, True)),
        ("OFFER_CLOSED", True, ("charge", "payment", False, True)),
        ("CANCELLATION", False, None),  # the cancellation failed: the payment stands
        ("CHARGEBACK", True, None),
        ("REPORT_AVAILABLE", True, None),
    ],
)
def test_payment_events(
    adyen: FakeAdyen, event_code: str, success: bool, expected: tuple[Any, ...] | None
) -> None:
    link = _gateway(adyen).payment_link(_link_request())
    psp = adyen.pay_link(link.reference)
    item = adyen.notification(psp, event_code, success=success)
    results = _verify(adyen.webhook(item)[0])
    if expected is None:
        assert results == []
        return
    [result] = results
    assert (result.kind, "payment" if result.reference == psp else result.reference) == expected[:2]
    assert (result.succeeded, result.final, result.ours) == (*expected[2:], "inv_1/link-1")
    assert result.event_id == f"{item['pspReference']}:{event_code}:{item['success']}"


@pytest.mark.parametrize(
    ("event_code", "success", "succeeded"),
    [
        ("REFUND", True, True),
        ("REFUND", False, False),
        ("REFUND_FAILED", True, False),
        ("REFUNDED_REVERSED", True, False),
    ],
)
def test_refund_events(adyen: FakeAdyen, event_code: str, success: bool, succeeded: bool) -> None:
    gateway = _gateway(adyen)
    psp = gateway.charge(charge_request(f"acme/{TOKEN}")).reference
    assert psp is not None
    refund = gateway.refund(refund_request(psp, "10.00")).reference
    assert refund is not None
    item = adyen.refund_notification(refund, event_code, success=success)
    [result] = _verify(adyen.webhook(item)[0])
    assert (result.kind, result.reference, result.succeeded, result.final, result.ours) == (
        "refund",
        refund,
        succeeded,
        True,
        "cn_1/refund",
    )


def test_items_of_another_merchant_account_are_passed_over(adyen: FakeAdyen) -> None:
    psp = adyen.pay_link(_gateway(adyen).payment_link(_link_request()).reference)
    body = adyen.webhook(adyen.notification(psp))[0]
    elsewhere = AdyenConfig(api_key=API_KEY, merchant_account="MeterlineOther", hmac_key=HMAC_KEY)
    assert _verify(body, elsewhere) == []
