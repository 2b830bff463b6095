"""The Adyen adapter against a local server that answers and checks as Adyen's Checkout
API v71 documents (tests/helpers/adyen_server.py), and Adyen's notification HMAC."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest

from core.errors import InvalidInput
from invoicing.payments.adyen import (
    AdyenConfig,
    AdyenGateway,
    notification_signature,
    verify_notification,
)
from invoicing.payments.base import PaymentUnavailable
from invoicing.payments.providers import build_gateway
from tests.helpers.adyen_server import API_KEY, HMAC_KEY, MERCHANT, TOKEN, FakeAdyen, fake_adyen
from tests.helpers.ledger_api import ApiClient
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, connect, refund_request


@pytest.fixture
def adyen() -> Iterator[FakeAdyen]:
    with fake_adyen() as server:
        server.add_shopper("acme")
        server.add_shopper("broke", declines=True)
        yield server


def _gateway(adyen: FakeAdyen, timeout: float = 5.0, **config: str) -> AdyenGateway:
    settings = AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT, base_url=adyen.url, **config)
    return AdyenGateway(settings, retry=FAST, timeout=timeout)


def test_a_charge_sends_a_card_on_file_payment(adyen: FakeAdyen) -> None:
    outcome = _gateway(adyen).charge(charge_request(f"acme/{TOKEN}", "123.45", "EUR"))
    assert outcome.succeeded and outcome.reference == "P000000000000001"
    [post] = adyen.posts()
    assert post.headers["x-api-key"] == API_KEY
    assert post.headers["idempotency-key"] == "inv_1/finalize"
    assert post.json() == {
        "merchantAccount": MERCHANT,
        "amount": {"value": 12345, "currency": "EUR"},
        "reference": "inv_1/finalize",
        "merchantOrderReference": "ML-2026-0001",
        "shopperReference": "acme",
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": TOKEN},
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "metadata": {"meterlineInvoiceId": "inv_1", "meterlineTenantId": "ten_1"},
    }


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [("5000", "JPY", 5000), ("12.345", "BHD", 12345), ("0.01", "USD", 1)],
)
def test_amounts_go_in_the_currencys_minor_unit(
    adyen: FakeAdyen, amount: str, currency: str, value: int
) -> None:
    assert _gateway(adyen).charge(charge_request(f"acme/{TOKEN}", amount, currency)).succeeded
    assert adyen.posts()[0].json()["amount"] == {"value": value, "currency": currency}


def test_an_amount_finer_than_the_minor_unit_is_refused_before_sending(adyen: FakeAdyen) -> None:
    with pytest.raises(InvalidInput, match="more decimals than JPY"):
        _gateway(adyen).charge(charge_request(f"acme/{TOKEN}", "10.5", "JPY"))
    assert adyen.posts() == []


def test_the_stored_card_may_come_from_the_config(adyen: FakeAdyen) -> None:
    gateway = _gateway(adyen, stored_payment_method_id=TOKEN)
    assert gateway.charge(charge_request("acme")).succeeded
    without = _gateway(adyen).charge(charge_request("acme", key="inv_1/dunning-1"))
    assert not without.succeeded and without.error == (
        "no stored Adyen payment method for the shopper"
    )
    assert len(adyen.posts()) == 1


def test_refused_is_a_decline_with_the_reason(adyen: FakeAdyen) -> None:
    outcome = _gateway(adyen).charge(charge_request(f"broke/{TOKEN}"))
    assert (outcome.succeeded, outcome.reference, outcome.error) == (
        False,
        "P000000000000001",
        "Not enough balance (12)",
    )


def test_a_rejected_request_is_declined_with_adyens_message(adyen: FakeAdyen) -> None:
    wrong_card = _gateway(adyen).charge(charge_request("acme/9999999999999999"))
    assert not wrong_card.succeeded
    assert wrong_card.error == "paymentMethod is not a stored card of the shopper (14_030)"
    settings = AdyenConfig(api_key="wrong", merchant_account=MERCHANT, base_url=adyen.url)
    unauthorized = AdyenGateway(settings, retry=FAST).charge(charge_request(f"acme/{TOKEN}"))
    assert unauthorized.error == "HTTP Status Response - Unauthorized (000)"


def test_a_5xx_is_retried_with_the_same_idempotency_key(adyen: FakeAdyen) -> None:
    adyen.server.script(Response(500), Response(503))
    assert _gateway(adyen).charge(charge_request(f"acme/{TOKEN}")).succeeded
    keys = [p.headers["idempotency-key"] for p in adyen.posts()]
    assert keys == ["inv_1/finalize"] * 3
    assert len(adyen.payments) == 1


def test_a_lost_answer_is_replayed_not_charged_twice(adyen: FakeAdyen) -> None:
    # Adyen authorised the payment, but the answer never arrived in time.
    adyen.server.lose_answers(Response(502, delay=1.0))
    outcome = _gateway(adyen, timeout=0.3).charge(charge_request(f"acme/{TOKEN}"))
    assert outcome.succeeded and outcome.reference == "P000000000000001"
    assert len(adyen.posts()) == 2 and len(adyen.payments) == 1


def test_retries_exhausted_are_unavailable(adyen: FakeAdyen) -> None:
    adyen.server.script(Response(500), Response(500), Response(500))
    with pytest.raises(PaymentUnavailable, match=r"adyen answered 500 \(after 3 attempts\)"):
        _gateway(adyen).charge(charge_request(f"acme/{TOKEN}"))
    assert adyen.payments == {}


def test_timeouts_exhausted_are_unavailable(adyen: FakeAdyen) -> None:
    adyen.server.script(*[Response(200, delay=1.0)] * 3)
    with pytest.raises(PaymentUnavailable, match="ReadTimeout"):
        _gateway(adyen, timeout=0.2).charge(charge_request(f"acme/{TOKEN}"))


def test_an_unreachable_adyen_is_unavailable() -> None:
    settings = AdyenConfig(
        api_key=API_KEY, merchant_account=MERCHANT, base_url="http://127.0.0.1:9"
    )
    with pytest.raises(PaymentUnavailable, match="unreachable: ConnectError"):
        AdyenGateway(settings, retry=FAST).charge(charge_request(f"acme/{TOKEN}"))


def test_a_refund_names_the_payment(adyen: FakeAdyen) -> None:
    gateway = _gateway(adyen)
    psp = gateway.charge(charge_request(f"acme/{TOKEN}", "50.00")).reference
    assert psp is not None
    outcome = gateway.refund(refund_request(psp, "20.00"))
    assert outcome.succeeded and outcome.reference == "R000000000000001"
    [post] = adyen.posts(f"/v71/payments/{psp}/refunds")
    assert post.headers["idempotency-key"] == "cn_1/refund"
    assert post.json() == {
        "merchantAccount": MERCHANT,
        "amount": {"value": 2000, "currency": "EUR"},
        "reference": "cn_1/refund",
    }
    assert gateway.refund(refund_request(psp, "20.00")).reference == "R000000000000001"
    too_much = gateway.refund(refund_request(psp, "40.00", key="cn_2/refund"))
    assert too_much.error == "Invalid amount specified: more than was paid (137)"


def test_adyens_documented_notification_signature() -> None:
    # The worked example of docs.adyen.com, "Verify HMAC signatures".
    item = {
        "pspReference": "7914073381342284",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704",
        "amount": {"value": 1130, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "success": "true",
        "additionalData": {"hmacSignature": "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},
    }
    key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    assert notification_signature(item, key) == "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="
    assert verify_notification(item, key)


def test_a_tampered_or_unsigned_notification_is_rejected(adyen: FakeAdyen) -> None:
    psp = _gateway(adyen).charge(charge_request(f"acme/{TOKEN}", "10.00")).reference
    assert psp is not None
    item = adyen.notification(psp)
    assert verify_notification(item, HMAC_KEY)
    tampered = copy.deepcopy(item)
    tampered["amount"]["value"] = 1
    assert not verify_notification(tampered, HMAC_KEY)
    failed = {**item, "success": "false"}
    assert not verify_notification(failed, HMAC_KEY)
    assert not verify_notification({**item, "additionalData": {}}, HMAC_KEY)
    assert not verify_notification(item, "00" * 32)
    with pytest.raises(InvalidInput, match="hexadecimal"):
        verify_notification(item, "not-hex")


def test_the_config_is_checked(adyen: FakeAdyen) -> None:
    with pytest.raises(InvalidInput, match=r"config.merchantAccount: Field required"):
        build_gateway("adyen", {"apiKey": API_KEY})
    with pytest.raises(InvalidInput, match=r"config.currency: unknown key"):
        build_gateway("adyen", {"apiKey": API_KEY, "merchantAccount": MERCHANT, "currency": "X"})
    live = AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT, live_url_prefix="1797a841")
    assert live.url() == "https://1797a841-checkout-live.adyenpayments.com/checkout"
    client = httpx.Client(base_url=f"{adyen.url}/checkout")
    settings = AdyenConfig(api_key=API_KEY, merchant_account=MERCHANT)
    AdyenGateway(settings, retry=FAST, client=client).charge(charge_request(f"acme/{TOKEN}"))
    assert [r.path for r in adyen.server.requests] == ["/checkout/v71/payments"]


# -- through the API -----------------------------------------------------------------------


@pytest.mark.ledger
def test_finalize_collects_through_adyen(api: ApiClient, adyen: FakeAdyen) -> None:
    connection = connect(
        api,
        "adyen",
        {"apiKey": API_KEY, "merchantAccount": MERCHANT, "baseUrl": adyen.url, "hmacKey": HMAC_KEY},
    )
    assert connection["config"]["apiKey"] == f"…{API_KEY[-4:]}"
    assert connection["config"]["hmacKey"] == f"…{HMAC_KEY[-4:]}"
    api.customer("acme", paymentProvider="adyen", paymentProviderCustomerId=f"acme/{TOKEN}")
    invoice = api.open_invoice("acme", "123.45")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [post] = adyen.posts()
    assert post.headers["idempotency-key"] == f"{invoice['id']}/finalize"
    assert post.json()["amount"] == {"value": 12345, "currency": "USD"}
    assert post.json()["reference"] == f"{invoice['id']}/finalize"
    assert post.json()["merchantOrderReference"] == invoice["number"]
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert (payment["provider"], payment["reference"]) == ("adyen", "P000000000000001")


@pytest.mark.ledger
def test_a_refused_card_leaves_the_invoice_open(api: ApiClient, adyen: FakeAdyen) -> None:
    connect(api, "adyen", {"apiKey": API_KEY, "merchantAccount": MERCHANT, "baseUrl": adyen.url})
    api.customer("broke", paymentProvider="adyen", paymentProviderCustomerId=f"broke/{TOKEN}")
    invoice = api.open_invoice("broke", "40.00")
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", "40.00")
    api.error("POST", "/payment-providers", 422, json={"provider": "adyen", "config": {}})
