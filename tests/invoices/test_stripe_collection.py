"""Collection through Stripe, against a local server that answers and checks as Stripe's
API documents (tests/helpers/stripe_server.py): the charge at finalize, declines and
dunning retries, retries of an outage under the same idempotency key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from invoicing.billing.scheduler import lifecycle_pass
from invoicing.models import DomainEventRow, PaymentAttemptRow, PaymentProviderRow
from invoicing.payments import providers
from invoicing.payments.providers import GatewayFactory
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient
from tests.helpers.stripe_server import SECRET, FakeStripe, fake_stripe

pytestmark = pytest.mark.ledger


@pytest.fixture
def stripe(api: ApiClient) -> Iterator[FakeStripe]:
    with fake_stripe() as server:
        created = api.post(
            "/payment-providers",
            json={"provider": "stripe", "config": {"secretKey": SECRET, "baseUrl": server.url}},
        )
        assert created.status_code == 201, created.text
        assert created.json()["config"] == {"secretKey": "…4242", "baseUrl": server.url}
        yield server


def _customer(api: ApiClient, stripe: FakeStripe, name: str, **card: Any) -> None:
    stripe.add_customer(f"cus_{name}", **card)
    api.customer(name, paymentProvider="stripe", paymentProviderCustomerId=f"cus_{name}")


def _event_types(api: ApiClient) -> list[str]:
    with api.runtime.sessions() as session:
        return list(
            session.execute(
                select(DomainEventRow.type).order_by(DomainEventRow.created_at, DomainEventRow.id)
            ).scalars()
        )


def test_finalize_charges_the_saved_card_once(api: ApiClient, stripe: FakeStripe) -> None:
    _customer(api, stripe, "acme")
    invoice = api.open_invoice("acme", "123.45")
    assert (invoice["status"], invoice["amountDue"], invoice["amountPaid"]) == (
        "PAID",
        "0.00",
        "123.45",
    )
    [post] = stripe.posts("/v1/payment_intents")
    assert post.headers["authorization"] == f"Bearer {SECRET}"
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.headers["idempotency-key"] == f"{invoice['id']}/finalize"
    assert post.form == {
        "amount": "12345",
        "currency": "usd",
        "customer": "cus_acme",
        "payment_method": "pm_card_visa",
        "confirm": "true",
        "off_session": "true",
        "description": f"Invoice {invoice['number']}",
        "metadata[meterline_invoice_id]": invoice["id"],
        "metadata[meterline_tenant_id]": api.tenant_id,
        "metadata[meterline_key]": f"{invoice['id']}/finalize",
    }
    [payment] = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    assert (payment["amount"], payment["provider"], payment["reference"]) == (
        "123.45",
        "stripe",
        "pi_0001",
    )
    # the scheduler's pass at the same moment finds nothing left to collect
    lifecycle_pass(api.runtime.sessions, api.tenant_id, DEFAULT_NOW, 30, _gateways(api))
    assert len(stripe.posts("/v1/payment_intents")) == 1
    assert "payment.succeeded" in _event_types(api) and "invoice.paid" in _event_types(api)


def test_a_decline_stays_open_and_dunning_retries(api: ApiClient, stripe: FakeStripe) -> None:
    _customer(api, stripe, "acme", declines=True)
    invoice = api.open_invoice("acme", "40.00")
    assert (invoice["status"], invoice["amountDue"]) == ("OPEN", "40.00")
    with api.runtime.sessions() as session:
        [attempt] = session.execute(select(PaymentAttemptRow)).scalars()
        assert attempt.status == "failed"
        assert (
            attempt.error == "Your card has insufficient funds. (card_declined, insufficient_funds)"
        )
    assert _event_types(api).count("payment.failed") == 1
    due = DEFAULT_NOW + timedelta(days=30)
    lifecycle_pass(api.runtime.sessions, api.tenant_id, due + timedelta(days=1), 30, _gateways(api))
    [step] = api.ok("GET", f"/invoices/{invoice['id']}/dunning")["data"]
    assert (step["step"], step["paymentAttempted"], step["result"]) == (1, True, "payment_failed")
    stripe.customers["cus_acme"]["declines"] = False  # the customer updated the card
    lifecycle_pass(api.runtime.sessions, api.tenant_id, due + timedelta(days=3), 30, _gateways(api))
    steps = api.ok("GET", f"/invoices/{invoice['id']}/dunning")["data"]
    assert [(s["step"], s["result"]) for s in steps] == [
        (1, "payment_failed"),
        (2, "payment_succeeded"),
    ]
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "PAID"
    keys = [p.headers["idempotency-key"] for p in stripe.posts("/v1/payment_intents")]
    assert keys == [f"{invoice['id']}/{k}" for k in ("finalize", "dunning-1", "dunning-2")]
    lifecycle_pass(
        api.runtime.sessions, api.tenant_id, due + timedelta(days=30), 30, _gateways(api)
    )
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "PAID"


def test_an_outage_is_retried_under_the_same_key(api: ApiClient, stripe: FakeStripe) -> None:
    _customer(api, stripe, "acme")
    stripe.fail_next(2)  # two 500s, then the charge goes through
    invoice = api.open_invoice("acme", "10.00")
    assert invoice["status"] == "PAID"
    posts = stripe.posts("/v1/payment_intents")
    assert len(posts) == 3 and {p.headers["idempotency-key"] for p in posts} == {
        f"{invoice['id']}/finalize"
    }
    assert len(stripe.intents) == 1  # charged once


def test_a_long_outage_fails_the_attempt_and_dunning_goes_on(
    api: ApiClient, stripe: FakeStripe
) -> None:
    _customer(api, stripe, "acme")
    stripe.fail_next(3)  # every attempt of the adapter fails
    invoice = api.open_invoice("acme", "10.00")
    assert invoice["status"] == "OPEN" and stripe.intents == {}
    lifecycle_pass(
        api.runtime.sessions, api.tenant_id, DEFAULT_NOW + timedelta(days=31), 30, _gateways(api)
    )
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "PAID"


def test_missing_setup_is_a_failed_attempt_not_an_error(api: ApiClient, stripe: FakeStripe) -> None:
    api.customer("nocard", paymentProvider="stripe")  # no Stripe customer id
    invoice = api.open_invoice("nocard", "5.00")
    assert invoice["status"] == "OPEN"
    stripe.add_customer("cus_empty", card=None)
    api.customer("empty", paymentProvider="stripe", paymentProviderCustomerId="cus_empty")
    assert api.open_invoice("empty", "5.00", index=1)["status"] == "OPEN"
    with api.runtime.sessions() as session:
        errors = sorted(a.error or "" for a in session.execute(select(PaymentAttemptRow)).scalars())
    assert errors == [
        "the Stripe customer has no saved payment method",
        "the customer has no stripe customer id (paymentProviderCustomerId)",
    ]


def test_provider_configuration_errors(api: ApiClient) -> None:
    api.error("POST", "/payment-providers", 422, json={"provider": "stripe", "config": {}})
    api.error("POST", "/payment-providers", 422, json={"provider": "paypal", "config": {}})
    incomplete = api.error(
        "POST", "/payment-providers", 422, json={"provider": "tap", "config": {}}
    )
    assert incomplete["code"] == "validation_error" and "config.secretKey" in str(incomplete)
    config = {"secretKey": "sk_test_x123456789", "baseUrl": "http://127.0.0.1:9"}
    created = api.ok("POST", "/payment-providers", json={"provider": "stripe", "config": config})
    api.error("POST", "/payment-providers", 409, json={"provider": "stripe", "config": config})
    patched = api.ok(
        "PATCH",
        f"/payment-providers/{created['id']}",
        json={"config": {"baseUrl": "http://localhost:1"}},
    )
    assert patched["config"] == {"secretKey": "…6789", "baseUrl": "http://localhost:1"}
    assert [p["id"] for p in api.ok("GET", "/payment-providers")["data"]] == [created["id"]]
    assert api.delete(f"/payment-providers/{created['id']}").status_code == 204
    api.error("GET", f"/payment-providers/{created['id']}", 404)
    api.error(
        "POST",
        "/customers",
        422,
        json={"externalId": "x", "name": "X", "currency": "USD", "paymentProvider": "paypal"},
    )


def _gateways(api: ApiClient) -> GatewayFactory:
    return providers.gateways(api.runtime.settings.secrets)


def test_the_secret_key_is_sealed_at_rest_and_still_charges(
    api: ApiClient, stripe: FakeStripe
) -> None:
    with api.runtime.sessions() as session:
        (row,) = session.execute(select(PaymentProviderRow)).scalars()
        stored = dict(row.config)
    assert SECRET not in str(stored) and stored["secretKey"]["shown"] == "…4242"
    assert api.runtime.settings.secrets.open(stored["secretKey"]["sealed"]) == SECRET
    # a PATCH of another key keeps the secret (sealed again) and charges still go through
    changed = api.ok(
        "PATCH", f"/payment-providers/{row.id}", json={"config": {"baseUrl": stripe.url}}
    )
    assert changed["config"]["secretKey"] == "…4242"
    _customer(api, stripe, "acme")
    invoice = api.open_invoice("acme", "12.00")
    assert invoice["status"] == "PAID"
    assert stripe.posts("/v1/payment_intents")[0].headers["authorization"] == f"Bearer {SECRET}"
