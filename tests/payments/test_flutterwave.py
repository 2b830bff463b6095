"""The Flutterwave adapter against a local server that answers and checks as
Flutterwave's API v3 documents (tests/helpers/flutterwave_server.py); its hosted pages
and webhooks are in test_flutterwave_notifications.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest

from invoicing.payments.base import ChargeRequest, PaymentUnavailable
from invoicing.payments.flutterwave import FlutterwaveConfig, FlutterwaveGateway
from tests.helpers.flutterwave_server import (
    CHARGE,
    SECRET_HASH,
    SECRET_KEY,
    TOKEN,
    VERIFY,
    FakeFlutterwave,
    fake_flutterwave,
)
from tests.helpers.ledger_api import ApiClient
from tests.helpers.loopback import Response
from tests.payments import FAST, charge_request, connect, refund_request

EMAIL = "billing@acme.example"
DECLINING = "flw-t1nf-declines-m03k"


@pytest.fixture
def flutterwave() -> Iterator[FakeFlutterwave]:
    with fake_flutterwave() as server:
        server.add_card(TOKEN, EMAIL)
        server.add_card(DECLINING, EMAIL, declines=True)
        yield server


def _gateway(flutterwave: FakeFlutterwave, timeout: float = 5.0) -> FlutterwaveGateway:
    settings = FlutterwaveConfig(secret_key=SECRET_KEY, base_url=flutterwave.url)
    return FlutterwaveGateway(settings, retry=FAST, timeout=timeout)


def _charge(token: str = TOKEN, amount: str = "123.45", currency: str = "NGN") -> ChargeRequest:
    return dataclasses.replace(charge_request(token, amount, currency), customer_email=EMAIL)


def test_a_charge_sends_the_token_and_tx_ref(flutterwave: FakeFlutterwave) -> None:
    outcome = _gateway(flutterwave).charge(_charge())
    assert outcome.succeeded and outcome.reference == "277036701"
    [post] = flutterwave.posts()
    assert post.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert post.headers["content-type"] == "application/json"
    assert b'"amount":123.45' in post.body  # a JSON number, exact
    assert post.json() == {
        "token": TOKEN,
        "email": EMAIL,
        "currency": "NGN",
        "amount": Decimal("123.45"),
        "tx_ref": "inv_1/finalize",
        "narration": "Invoice ML-2026-0001",
    }


def test_a_zero_decimal_currency_is_sent_whole(flutterwave: FakeFlutterwave) -> None:
    assert _gateway(flutterwave).charge(_charge(amount="5000", currency="JPY")).succeeded
    assert b'"amount":5000,' in flutterwave.posts()[0].body


def test_a_declined_card_is_a_decline(flutterwave: FakeFlutterwave) -> None:
    outcome = _gateway(flutterwave).charge(_charge(DECLINING))
    assert (outcome.succeeded, outcome.reference, outcome.error) == (
        False,
        "277036701",
        "Insufficient funds",
    )


def test_without_an_email_nothing_is_sent(flutterwave: FakeFlutterwave) -> None:
    outcome = _gateway(flutterwave).charge(charge_request(TOKEN))
    assert outcome.error == "Flutterwave needs the customer's email"
    assert flutterwave.server.requests == []


def test_a_5xx_is_retried_with_the_same_tx_ref(flutterwave: FakeFlutterwave) -> None:
    flutterwave.server.script(Response(500), Response(503))
    assert _gateway(flutterwave).charge(_charge()).succeeded
    assert [p.json()["tx_ref"] for p in flutterwave.posts()] == ["inv_1/finalize"] * 3
    assert len(flutterwave.transactions) == 1


def test_a_lost_answer_is_found_by_tx_ref(flutterwave: FakeFlutterwave) -> None:
    # The card was charged; the answer never came. The retry is a duplicate tx_ref,
    # and the transaction is then looked up by that reference.
    flutterwave.server.lose_answers(Response(500, delay=1.0))
    outcome = _gateway(flutterwave, timeout=0.3).charge(_charge())
    assert outcome.succeeded and outcome.reference == "277036701"
    assert len(flutterwave.posts()) == 2 and len(flutterwave.transactions) == 1
    [lookup] = [r for r in flutterwave.server.requests if r.path == VERIFY]
    assert lookup.query == {"tx_ref": ["inv_1/finalize"]}


def test_retries_exhausted_are_unavailable(flutterwave: FakeFlutterwave) -> None:
    flutterwave.server.script(Response(500), Response(500), Response(500))
    with pytest.raises(PaymentUnavailable, match=r"flutterwave answered 500 \(after 3"):
        _gateway(flutterwave).charge(_charge())
    assert flutterwave.transactions == {}


def test_a_refund_is_sent_once(flutterwave: FakeFlutterwave) -> None:
    gateway = _gateway(flutterwave)
    transaction = gateway.charge(_charge(amount="50.00")).reference
    assert transaction is not None
    outcome = gateway.refund(refund_request(transaction, "20.00", "NGN"))
    assert outcome.succeeded and outcome.reference == "75901"
    [post] = flutterwave.posts(f"/v3/transactions/{transaction}/refund")
    assert post.json() == {"amount": Decimal("20.00")}
    flutterwave.server.script(Response(502))
    with pytest.raises(PaymentUnavailable):
        gateway.refund(refund_request(transaction, "5.00", "NGN", key="cn_2/refund"))
    assert len(flutterwave.posts(f"/v3/transactions/{transaction}/refund")) == 2  # no retry
    too_much = gateway.refund(refund_request(transaction, "40.00", "NGN", key="cn_3/refund"))
    assert too_much.error == "Refund amount exceeds the transaction amount"


@pytest.mark.ledger
def test_finalize_collects_through_flutterwave(
    api: ApiClient, flutterwave: FakeFlutterwave
) -> None:
    connection = connect(
        api,
        "flutterwave",
        {"secretKey": SECRET_KEY, "secretHash": SECRET_HASH, "baseUrl": flutterwave.url},
    )
    assert connection["config"]["secretHash"] == f"…{SECRET_HASH[-4:]}"
    api.customer(
        "acme", email=EMAIL, paymentProvider="flutterwave", paymentProviderCustomerId=TOKEN
    )
    invoice = api.open_invoice("acme", "123.45")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [post] = flutterwave.posts(CHARGE)
    assert post.json()["tx_ref"] == f"{invoice['id']}/finalize"
    assert (post.json()["amount"], post.json()["currency"]) == (Decimal("123.45"), "USD")
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert (payment["provider"], payment["reference"]) == ("flutterwave", "277036701")
