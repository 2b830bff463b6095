"""Checkout pages through the HTTP API (`POST /customers/{externalId}/checkout-url`): a
page at the customer's payment provider where the customer saves a payment method,
against the local fakes that check each vendor's exact request (tests/helpers/
<vendor>_server.py); the provider's signed notification stores the method on the
customer, and the next charge of an invoice uses it. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoicing.db import transaction
from invoicing.tenants import create_tenant
from tests.helpers import adyen_server, gocardless_server
from tests.helpers.adyen_server import FakeAdyen, fake_adyen
from tests.helpers.gocardless_server import FakeGoCardless, fake_gocardless
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient
from tests.helpers.stripe_server import SECRET, WEBHOOK_SECRET, FakeStripe, fake_stripe

pytestmark = pytest.mark.ledger

EXPIRES = DEFAULT_NOW + timedelta(hours=23)
ISO_EXPIRES = EXPIRES.isoformat().replace("+00:00", "Z")
PAGE = {"successUrl": "https://acme.test/saved", "cancelUrl": "https://acme.test/back"}


@pytest.fixture
def stranger(api: ApiClient) -> TestClient:
    """A provider, as far as our API can tell: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _connect(api: ApiClient, provider: str, config: dict[str, Any]) -> str:
    created = api.ok("POST", "/payment-providers", json={"provider": provider, "config": config})
    return str(created["id"])


def _post(stranger: TestClient, provider: str, signed: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = signed
    answer = stranger.post(f"/payment-providers/{provider}/webhooks", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _receipt(applied: int = 0, ignored: int = 0, duplicates: int = 0) -> dict[str, int]:
    return {
        "received": applied + ignored + duplicates,
        "applied": applied,
        "ignored": ignored,
        "duplicates": duplicates,
    }


def _customer_id(api: ApiClient, external_id: str = "acme") -> str:
    return str(api.ok("GET", f"/customers/{external_id}")["id"])


# -- Stripe ---------------------------------------------------------------------------------


@pytest.fixture
def stripe(api: ApiClient) -> Iterator[FakeStripe]:
    with fake_stripe() as server:
        server.clock = lambda: api.clock.now().timestamp()
        yield server


@pytest.fixture
def stripe_provider(api: ApiClient, stripe: FakeStripe) -> str:
    return _connect(
        api, "stripe", {"secretKey": SECRET, "baseUrl": stripe.url, "webhookSecret": WEBHOOK_SECRET}
    )


def _stripe_post(stranger: TestClient, stripe: FakeStripe, provider: str, event: Any) -> Any:
    return _post(stranger, provider, stripe.signed(event))


def test_stripe_a_setup_session_saves_the_card_the_next_charge_uses(
    api: ApiClient, stripe: FakeStripe, stripe_provider: str, stranger: TestClient
) -> None:
    stripe.add_customer("cus_acme", card=None)
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
    ours = _customer_id(api)
    page = api.post("/customers/acme/checkout-url", json=PAGE)
    assert page.status_code == 201, page.text
    assert page.json() == {
        "customerId": "acme",
        "provider": "stripe",
        "url": f"{stripe.url}/c/setup/cs_test_0001",
        "expiresAt": ISO_EXPIRES,
    }
    [made] = stripe.posts("/v1/checkout/sessions")
    key = made.headers["idempotency-key"]
    assert key.startswith(f"{ours}/checkout-") and len(key) == len(ours) + len("/checkout-") + 12
    assert made.headers["authorization"] == f"Bearer {SECRET}"
    metadata = {"meterline_customer_id": ours, "meterline_tenant_id": api.tenant_id,
                "meterline_key": key}  # fmt: skip
    assert made.form == {
        "mode": "setup",
        "currency": "usd",
        "customer": "cus_acme",
        "success_url": "https://acme.test/saved",
        "cancel_url": "https://acme.test/back",
        "expires_at": str(int(EXPIRES.timestamp())),
        "client_reference_id": key,
        **{f"metadata[{k}]": v for k, v in metadata.items()},
        **{f"setup_intent_data[metadata][{k}]": v for k, v in metadata.items()},
    }
    # Each call is a new page under a new key.
    api.ok("POST", "/customers/acme/checkout-url", json=PAGE)
    first, second = stripe.posts("/v1/checkout/sessions")
    assert first.headers["idempotency-key"] != second.headers["idempotency-key"]
    assert api.ok("GET", "/customers/acme")["paymentMethod"] is None

    succeeded, completed = stripe.complete_setup("cs_test_0001", "pm_saved_0001")
    assert _stripe_post(stranger, stripe, stripe_provider, completed) == _receipt(ignored=1)
    assert _stripe_post(stranger, stripe, stripe_provider, succeeded) == _receipt(applied=1)
    assert _stripe_post(stranger, stripe, stripe_provider, succeeded) == _receipt(duplicates=1)
    saved = api.ok("GET", "/customers/acme")
    assert saved["paymentMethod"] == {
        "id": "pm_saved_0001",
        "provider": "stripe",
        "savedAt": DEFAULT_NOW.isoformat().replace("+00:00", "Z"),
    }
    log = api.ok("GET", f"/payment-providers/{stripe_provider}/webhooks")["data"]
    assert [(n["kind"], n["effect"], n["detail"]) for n in log] == [
        ("method", "applied", "payment method saved for acme"),
        ("method", "ignored", "not final yet"),
    ]

    # The next invoice is charged with the saved card, not with a lookup of one.
    stripe.requests.clear()
    invoice = api.open_invoice("acme", "42.50")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [charge] = stripe.posts("/v1/payment_intents")
    assert (charge.form["payment_method"], charge.form["customer"], charge.form["amount"]) == (
        "pm_saved_0001",
        "cus_acme",
        "4250",
    )
    assert [r.path for r in stripe.requests if r.method == "GET"] == []


def test_stripe_a_setup_session_needs_a_stripe_customer_and_a_success_url(
    api: ApiClient, stripe: FakeStripe, stripe_provider: str
) -> None:
    api.customer("acme", paymentProvider="stripe")
    error = api.error("POST", "/customers/acme/checkout-url", 422, json=PAGE)
    assert error["code"] == "provider_customer_missing"
    stripe.add_customer("cus_acme")
    api.ok("PATCH", "/customers/acme", json={"paymentProviderCustomerId": "cus_acme"})
    missing = api.error("POST", "/customers/acme/checkout-url", 422)
    assert (missing["code"], "successUrl" in missing["message"]) == ("validation_error", True)
    api.error("POST", "/customers/acme/checkout-url", 422, json={"successUrl": "ftp://x"})
    assert stripe.posts("/v1/checkout/sessions") == []


def test_stripe_refusing_the_session_is_a_502(
    api: ApiClient, stripe: FakeStripe, stripe_provider: str
) -> None:
    # A customer id Stripe does not know: Stripe answers 400 "No such customer".
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_gone")
    error = api.error("POST", "/customers/acme/checkout-url", 502, json=PAGE)
    assert error["code"] == "checkout_refused"
    assert "No such customer" in error["message"]


def test_a_customer_without_a_usable_provider_is_refused(
    api: ApiClient, stripe: FakeStripe
) -> None:
    api.customer("plain")
    assert api.error("POST", "/customers/plain/checkout-url", 422, json=PAGE)["code"] == (
        "no_payment_provider"
    )
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
    assert api.error("POST", "/customers/acme/checkout-url", 422, json=PAGE)["code"] == (
        "provider_not_connected"
    )
    assert api.error("POST", "/customers/nobody/checkout-url", 404, json=PAGE)["code"] == (
        "not_found"
    )


def test_a_deleted_customer_has_no_checkout_and_gains_no_method(
    api: ApiClient, stripe: FakeStripe, stripe_provider: str, stranger: TestClient
) -> None:
    stripe.add_customer("cus_acme", card=None)
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
    api.ok("POST", "/customers/acme/checkout-url", json=PAGE)
    api.ok("DELETE", "/customers/acme")
    assert api.error("POST", "/customers/acme/checkout-url", 404, json=PAGE)["code"] == (
        "not_found"
    )
    succeeded, _ = stripe.complete_setup("cs_test_0001")
    assert _stripe_post(stranger, stripe, stripe_provider, succeeded) == _receipt(ignored=1)


@pytest.mark.parametrize(
    ("provider", "config"),
    [
        ("tap", {"secretKey": "sk_test_XKokBfNWv6FIYuTMg5sLPjhJ"}),
        ("moneyhash", {"apiKey": "mh_test_key_0001"}),
        ("flutterwave", {"secretKey": "FLWSECK_TEST-0123456789abcdef-X"}),
        ("cashfree", {"clientId": "TEST_APP_1", "clientSecret": "cfsk_test_0001"}),
    ],
)
def test_providers_without_a_setup_page_answer_checkout_unsupported(
    api: ApiClient, provider: str, config: dict[str, Any]
) -> None:
    _connect(api, provider, config)
    api.customer("acme", paymentProvider=provider, paymentProviderCustomerId="cust_1")
    error = api.error("POST", "/customers/acme/checkout-url", 422, json=PAGE)
    assert error["code"] == "checkout_unsupported"
    assert provider in error["message"]


def test_another_tenant_sees_no_checkout_and_changes_no_customer_of_ours(
    api: ApiClient, stripe: FakeStripe, stripe_provider: str, stranger: TestClient
) -> None:
    stripe.add_customer("cus_acme", card=None)
    api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
    api.ok("POST", "/customers/acme/checkout-url", json=PAGE)
    with transaction(api.runtime.sessions) as session:
        other = create_tenant(session, "other")
    with ApiClient(api.app, api.runtime, other.tenant_id, other.api_key) as them:
        theirs = _connect(
            them,
            "stripe",
            {"secretKey": SECRET, "baseUrl": stripe.url, "webhookSecret": WEBHOOK_SECRET},
        )
        assert them.error("POST", "/customers/acme/checkout-url", 404, json=PAGE)["code"] == (
            "not_found"
        )
        # Their own customer with the same Stripe id: our SetupIntent, posted to THEIR
        # connection, names our customer (the key), not theirs, and changes nothing.
        them.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_other")
        succeeded, _ = stripe.complete_setup("cs_test_0001")
        assert _stripe_post(stranger, stripe, theirs, succeeded) == _receipt(ignored=1)
        assert them.ok("GET", "/customers/acme")["paymentMethod"] is None
    assert api.ok("GET", "/customers/acme")["paymentMethod"] is None
    assert _stripe_post(stranger, stripe, stripe_provider, succeeded) == _receipt(applied=1)


# -- GoCardless -----------------------------------------------------------------------------


@pytest.fixture
def gocardless(api: ApiClient) -> Iterator[FakeGoCardless]:
    with fake_gocardless() as server:
        server.now = api.clock.now()
        yield server


@pytest.fixture
def gocardless_provider(api: ApiClient, gocardless: FakeGoCardless) -> str:
    config = {"accessToken": gocardless_server.ACCESS_TOKEN, "baseUrl": gocardless.url,
              "webhookSecret": gocardless_server.WEBHOOK_SECRET}  # fmt: skip
    return _connect(api, "gocardless", config)


def test_gocardless_a_mandate_flow_saves_the_mandate_the_next_charge_uses(
    api: ApiClient, gocardless: FakeGoCardless, gocardless_provider: str, stranger: TestClient
) -> None:
    api.customer("acme", currency="GBP", email="ap@acme.test", paymentProvider="gocardless")
    ours = _customer_id(api)
    page = api.post("/customers/acme/checkout-url", json=PAGE)
    assert page.status_code == 201, page.text
    assert page.json() == {
        "customerId": "acme",
        "provider": "gocardless",
        "url": f"{gocardless.url}/billing/static/flow?id=BRF0000000001",
        "expiresAt": (DEFAULT_NOW + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
    }
    [created] = gocardless.posts("/billing_requests")
    key = created.headers["idempotency-key"]
    assert key.startswith(f"{ours}/checkout-")
    assert created.headers["authorization"] == f"Bearer {gocardless_server.ACCESS_TOKEN}"
    metadata = {"meterline_customer_id": ours, "meterline_tenant_id": api.tenant_id,
                "meterline_key": key}  # fmt: skip
    assert created.json() == {
        "billing_requests": {
            "mandate_request": {"currency": "GBP", "metadata": metadata},
            "metadata": metadata,
        }
    }
    [flow] = gocardless.posts("/billing_request_flows")
    assert "idempotency-key" not in flow.headers
    assert flow.json() == {
        "billing_request_flows": {
            "links": {"billing_request": "BRQ0000000001"},
            "redirect_uri": "https://acme.test/saved",
            "exit_uri": "https://acme.test/back",
            "prefilled_customer": {"email": "ap@acme.test"},
        }
    }

    mandate = gocardless.authorise("BRQ0000000001")
    created_event = gocardless.mandate_event("created", mandate)
    active = gocardless.mandate_event("active", mandate)
    fulfilled = gocardless.fulfilled_event("BRQ0000000001")
    assert _post(stranger, gocardless_provider, gocardless.webhook(created_event, active)) == (
        _receipt(applied=1, ignored=1)
    )
    # The billing request's news names the same mandate: nothing more to do.
    assert _post(stranger, gocardless_provider, gocardless.webhook(fulfilled)) == _receipt(
        ignored=1
    )
    assert api.ok("GET", "/customers/acme")["paymentMethod"]["id"] == mandate

    invoice = api.open_invoice("acme", "75.00")
    assert invoice["status"] == "OPEN"  # a Direct Debit: collected days later
    [payment] = gocardless.posts("/payments")
    assert payment.json()["payments"]["links"] == {"mandate": mandate}
    assert payment.json()["payments"]["amount"] == 7500

    # The mandate is cancelled: it is taken off the customer.
    cancelled = gocardless.mandate_event("cancelled", mandate)
    assert _post(stranger, gocardless_provider, gocardless.webhook(cancelled)) == _receipt(
        applied=1
    )
    assert api.ok("GET", "/customers/acme")["paymentMethod"] is None


def test_gocardless_refusing_the_mandate_request_is_a_502(
    api: ApiClient, gocardless: FakeGoCardless, gocardless_provider: str
) -> None:
    api.customer("acme", currency="JPY", paymentProvider="gocardless")  # no scheme takes JPY
    error = api.error("POST", "/customers/acme/checkout-url", 502, json=PAGE)
    assert error["code"] == "checkout_refused"
    assert gocardless.posts("/billing_request_flows") == []


# -- Adyen ----------------------------------------------------------------------------------


@pytest.fixture
def adyen() -> Iterator[FakeAdyen]:
    with fake_adyen() as server:
        yield server


@pytest.fixture
def adyen_provider(api: ApiClient, adyen: FakeAdyen) -> str:
    config = {"apiKey": adyen_server.API_KEY, "merchantAccount": adyen_server.MERCHANT,
              "hmacKey": adyen_server.HMAC_KEY, "baseUrl": adyen.url}  # fmt: skip
    return _connect(api, "adyen", config)


def test_adyen_a_zero_value_link_stores_the_card_the_next_charge_uses(
    api: ApiClient, adyen: FakeAdyen, adyen_provider: str, stranger: TestClient
) -> None:
    api.customer("acme", currency="EUR", email="ap@acme.test", paymentProvider="adyen")
    ours = _customer_id(api)
    page = api.post("/customers/acme/checkout-url", json=PAGE)
    assert page.status_code == 201, page.text
    assert page.json() == {
        "customerId": "acme",
        "provider": "adyen",
        "url": f"{adyen.url}/pay/PL0000000000000001",
        "expiresAt": ISO_EXPIRES,
    }
    [made] = adyen.posts(adyen_server.PAYMENT_LINKS)
    key = made.headers["idempotency-key"]
    assert key.startswith(f"{ours}/checkout-") and len(key) <= 64
    assert made.headers["x-api-key"] == adyen_server.API_KEY
    assert made.json() == {
        "merchantAccount": adyen_server.MERCHANT,
        "amount": {"value": 0, "currency": "EUR"},
        "reference": key,
        "description": "Save a payment method",
        "expiresAt": EXPIRES.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "shopperReference": ours,
        "storePaymentMethodMode": "enabled",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "metadata": {"meterlineCustomerId": ours, "meterlineTenantId": api.tenant_id},
        "returnUrl": "https://acme.test/saved",
        "shopperEmail": "ap@acme.test",
    }
    # The shopperReference chosen is the customer's Adyen id from now on.
    assert api.ok("GET", "/customers/acme")["paymentProviderCustomerId"] == ours

    psp = adyen.store_on_link("PL0000000000000001", token="9915718415172299")
    authorised = adyen.notification(psp)  # the zero-value check: pays no invoice
    contract = adyen.recurring_contract(psp)
    assert _post(stranger, adyen_provider, adyen.webhook(authorised, contract)) == _receipt(
        applied=1, ignored=1
    )
    log = api.ok("GET", f"/payment-providers/{adyen_provider}/webhooks")["data"]
    assert sorted((n["kind"], n["effect"], n["detail"]) for n in log) == [
        ("charge", "ignored", "a payment method check of a checkout page, not a charge"),
        ("method", "applied", "payment method saved for acme"),
    ]
    assert api.ok("GET", "/customers/acme")["paymentMethod"]["id"] == "9915718415172299"

    invoice = api.open_invoice("acme", "12.34")
    assert (invoice["status"], invoice["amountDue"]) == ("PAID", "0.00")
    [charge] = adyen.posts(adyen_server.PAYMENTS)
    body = charge.json()
    assert (body["shopperReference"], body["paymentMethod"], body["amount"]) == (
        ours,
        {"type": "scheme", "storedPaymentMethodId": "9915718415172299"},
        {"value": 1234, "currency": "EUR"},
    )


def test_adyen_a_forged_recurring_contract_is_refused(
    api: ApiClient, adyen: FakeAdyen, adyen_provider: str, stranger: TestClient
) -> None:
    api.customer("acme", currency="EUR", paymentProvider="adyen")
    api.ok("POST", "/customers/acme/checkout-url", json=PAGE)
    psp = adyen.store_on_link("PL0000000000000001")
    contract = adyen.recurring_contract(psp)
    contract["pspReference"] = "attacker_token"  # signed field changed: the HMAC fails
    body, headers = adyen.webhook(contract)
    answer = stranger.post(
        f"/payment-providers/{adyen_provider}/webhooks", content=body, headers=headers
    )
    assert answer.status_code == 400
    assert api.ok("GET", "/customers/acme")["paymentMethod"] is None
