"""Stripe adapter: PaymentIntents for charges, Refunds for refunds, Checkout Sessions
for hosted payment pages, and the check of Stripe's signed webhook events.

    GET  {base}/v1/customers/{customer}                    the default payment method
    GET  {base}/v1/customers/{customer}/payment_methods    else the first saved card
    POST {base}/v1/payment_intents   amount, currency, customer, payment_method,
                                     confirm=true, off_session=true, metadata[...]
    POST {base}/v1/refunds           payment_intent, amount
    POST {base}/v1/checkout/sessions mode=payment, line_items[0][price_data][...],
                                     success_url, cancel_url?, expires_at, metadata[...],
                                     payment_intent_data[metadata][...]
    POST {base}/v1/checkout/sessions mode=setup, currency, customer, success_url,
                                     cancel_url?, expires_at, metadata[...],
                                     setup_intent_data[metadata][...] (checkout pages)
    Authorization: Bearer <secret key>;  Idempotency-Key on every POST

Every object we create carries `metadata[meterline_key]`, our idempotency key, so the
events about it name our attempt (a Checkout payment's PaymentIntent is made by Stripe,
and only its metadata leads back to the invoice).

Webhooks (`verify_webhook`): the `Stripe-Signature` header is `t=<unix time>,v1=<hex>`
(several v1 while a secret is rolled); v1 is HMAC-SHA256 keyed with the endpoint's
signing secret (config `webhookSecret`, whsec_…) over `<t>.<raw body>`, and a `t` more
than 5 minutes from now is refused (a replay). Events acted on:
`payment_intent.succeeded` (paid), `.payment_failed` and `.canceled` (failed),
`.processing` (on the way); `checkout.session.completed` (paid when its
`payment_status` is `paid`), `.async_payment_succeeded` / `.async_payment_failed`;
`refund.created|updated|failed` and `charge.refund.updated` by the refund's status;
`setup_intent.succeeded` (a method saved on a setup-mode checkout page: its
`payment_method`), with `checkout.session.completed` of a setup session recorded only.

Bodies are form-encoded, amounts are integers of the currency's minor unit. A POST is
retried (timeouts, 429, 5xx) with the SAME idempotency key, which is what makes a retry
safe: Stripe answers a repeated key with the first result instead of charging again.
A 402 (`card_error`) is a decline: the PaymentIntent exists and failed; dunning retries
later with a new key. Any other 4xx is a configuration problem, reported as declined
with Stripe's message (a retry with the same request cannot succeed).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from pydantic import Field, SecretStr

from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    CheckoutLink,
    CheckoutRequest,
    LinkRequest,
    Outcome,
    PaymentLink,
    PaymentUnavailable,
    ProviderConfig,
    RefundRequest,
    WebhookRejected,
    WebhookResult,
    lower_keys,
    to_minor,
)
from invoicing.tax.base import loads_exact
from rating.money import minor_units

NAME = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"
WEBHOOK_TOLERANCE = timedelta(minutes=5)


class StripeConfig(ProviderConfig):
    secret_key: SecretStr = Field(min_length=1, description="a Stripe secret key, sk_…")
    api_version: str | None = None
    webhook_secret: SecretStr | None = Field(
        min_length=1, default=None, description="the webhook endpoint's signing secret, whsec_…"
    )


def _retryable(response: httpx.Response) -> bool:
    # 409: a concurrent request with the same key is still in flight.
    should_retry = str(response.headers.get("Stripe-Should-Retry", ""))
    if response.status_code in (409, 429):
        return should_retry != "false"
    return response.status_code >= 500


class StripeGateway:
    name = NAME

    def __init__(
        self,
        config: StripeConfig,
        *,
        timeout: float = 20.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        secret = config.secret_key.get_secret_value()
        if not secret.strip():
            raise InvalidInput("stripe needs config.secretKey")
        headers = {"Authorization": f"Bearer {secret}"}
        if config.api_version:
            headers["Stripe-Version"] = config.api_version
        self._http = http.ProviderHttp(
            NAME,
            http.client(
                config.base_url or DEFAULT_BASE_URL, headers, timeout=timeout, given=client
            ),
            retry=retry,
            retryable=_retryable,
        )

    def close(self) -> None:
        self._http.close()

    # -- the two operations -----------------------------------------------------------

    def charge(self, request: ChargeRequest) -> Outcome:
        method = request.payment_method or self._payment_method(request.customer_reference)
        if method is None:
            return Outcome(False, error="the Stripe customer has no saved payment method")
        form = {
            "amount": str(to_minor(request.amount, request.currency)),
            "currency": request.currency.lower(),
            "customer": request.customer_reference,
            "payment_method": method,
            "confirm": "true",
            "off_session": "true",
            "description": f"Invoice {request.invoice_number or request.invoice_id}",
            "metadata[meterline_invoice_id]": request.invoice_id,
            "metadata[meterline_tenant_id]": request.tenant_id,
            "metadata[meterline_key]": request.idempotency_key,
        }
        status, body = self._post("/v1/payment_intents", form, request.idempotency_key)
        if status == 200 and body.get("status") == "succeeded":
            return Outcome(True, reference=str(body.get("id")))
        if status == 200 and body.get("status") == "processing":
            # A bank debit (SEPA, ACH) being collected: its webhook tells how it ended.
            return Outcome(False, reference=str(body.get("id")), pending=True)
        if status == 200:
            # requires_action (3-D Secure), requires_payment_method: not paid.
            return Outcome(
                False,
                reference=str(body.get("id")),
                error=f"payment intent is {body.get('status')}",
            )
        return Outcome(False, reference=_intent_id(body), error=_message(body, status))

    def refund(self, request: RefundRequest) -> Outcome:
        form = {
            "payment_intent": request.charge_reference,
            "amount": str(to_minor(request.amount, request.currency)),
        }
        status, body = self._post("/v1/refunds", form, request.idempotency_key)
        if status == 200 and body.get("status") in ("succeeded", "pending"):
            return Outcome(True, reference=str(body.get("id")))
        return Outcome(False, reference=body.get("id"), error=_message(body, status))

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        if not request.success_url:
            raise InvalidInput("a Stripe Checkout page needs successUrl, where the payer lands")
        expires = request.expires_at  # within Checkout's 30 min – 24 h (links.LINK_LIFETIME)
        label = f"Invoice {request.invoice_number or request.invoice_id}"
        metadata = {
            "meterline_invoice_id": request.invoice_id,
            "meterline_tenant_id": request.tenant_id,
            "meterline_key": request.idempotency_key,
        }
        form = {
            "mode": "payment",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": request.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(
                to_minor(request.amount, request.currency)
            ),
            "line_items[0][price_data][product_data][name]": label,
            "success_url": request.success_url,
            "expires_at": str(int(expires.timestamp())),
            "client_reference_id": request.idempotency_key[:200],
        }
        if request.cancel_url:
            form["cancel_url"] = request.cancel_url
        if request.customer_reference:
            form["customer"] = request.customer_reference
        elif request.customer_email:
            form["customer_email"] = request.customer_email
        for key, value in metadata.items():
            form[f"metadata[{key}]"] = value
            form[f"payment_intent_data[metadata][{key}]"] = value
        status, body = self._post("/v1/checkout/sessions", form, request.idempotency_key)
        if status != 200 or not body.get("url") or not body.get("id"):
            raise UpstreamFailed(
                f"Stripe refused the checkout session: {_message(body, status)}",
                code="payment_link_refused",
            )
        stamp = body.get("expires_at")
        return PaymentLink(
            url=str(body["url"]),
            reference=str(body["id"]),
            expires_at=datetime.fromtimestamp(int(stamp), tz=UTC) if stamp else expires,
        )

    def checkout(self, request: CheckoutRequest) -> CheckoutLink:
        """A Checkout Session in setup mode: the customer saves a method, pays nothing."""
        if not request.customer_reference:
            raise InvalidInput(
                "a Stripe checkout page saves the method on a Stripe customer: set the "
                "customer's paymentProviderCustomerId (cus_…) first",
                code="provider_customer_missing",
            )
        if not request.success_url:
            raise InvalidInput("a Stripe Checkout page needs successUrl, where the customer lands")
        metadata = {
            "meterline_customer_id": request.customer_id,
            "meterline_tenant_id": request.tenant_id,
            "meterline_key": request.idempotency_key,
        }
        form = {
            "mode": "setup",
            # Setup mode without payment_method_types wants the currency of the charges
            # to come: Stripe offers the methods that can pay in it.
            "currency": request.currency.lower(),
            "customer": request.customer_reference,
            "success_url": request.success_url,
            "expires_at": str(int(request.expires_at.timestamp())),
            "client_reference_id": request.idempotency_key[:200],
        }
        if request.cancel_url:
            form["cancel_url"] = request.cancel_url
        for key, value in metadata.items():
            form[f"metadata[{key}]"] = value
            form[f"setup_intent_data[metadata][{key}]"] = value
        status, body = self._post("/v1/checkout/sessions", form, request.idempotency_key)
        if status != 200 or not body.get("url") or not body.get("id"):
            raise UpstreamFailed(
                f"Stripe refused the checkout session: {_message(body, status)}",
                code="checkout_refused",
            )
        stamp = body.get("expires_at")
        return CheckoutLink(
            url=str(body["url"]),
            reference=str(body["id"]),
            expires_at=datetime.fromtimestamp(int(stamp), tz=UTC) if stamp else request.expires_at,
        )

    # -- HTTP ---------------------------------------------------------------------------

    def _payment_method(self, customer: str) -> str | None:
        status, body = self._get(f"/v1/customers/{customer}")
        if status != 200:
            raise PaymentUnavailable(f"stripe: customer {customer}: {_message(body, status)}")
        default = (body.get("invoice_settings") or {}).get("default_payment_method")
        if isinstance(default, dict):
            default = default.get("id")
        if default:
            return str(default)
        status, body = self._get(
            f"/v1/customers/{customer}/payment_methods", params={"type": "card", "limit": "1"}
        )
        if status != 200:
            raise PaymentUnavailable(f"stripe: payment methods: {_message(body, status)}")
        methods = body.get("data") or []
        return str(methods[0]["id"]) if methods else None

    def _get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        reply = self._http.get(path, params=params)
        return reply.status, reply.body

    def _post(self, path: str, form: dict[str, str], key: str) -> tuple[int, dict[str, Any]]:
        reply = self._http.post(path, form=form, idempotency_key=key)
        return reply.status, reply.body


def _message(body: dict[str, Any], status: int) -> str:
    error = body.get("error") or {}
    parts = [str(error.get(k)) for k in ("code", "decline_code") if error.get(k)]
    message = error.get("message") or f"HTTP {status}"
    return f"{message} ({', '.join(parts)})" if parts else str(message)


def _intent_id(body: dict[str, Any]) -> str | None:
    intent = (body.get("error") or {}).get("payment_intent") or {}
    return str(intent["id"]) if isinstance(intent, dict) and intent.get("id") else None


# -- webhooks -------------------------------------------------------------------------------


def webhook_signature(body: bytes, timestamp: str, secret: str) -> str:
    """Stripe's v1 scheme: hex HMAC-SHA256, keyed with the endpoint's signing secret,
    over the header's timestamp, a dot, and the raw body."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(
    config: StripeConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[WebhookResult]:
    """What a Stripe event says about a charge or refund of ours, once its
    `Stripe-Signature` checks out and was made within 5 minutes of `now`;
    `WebhookRejected` otherwise. An event we do not act on gives no result."""
    if config.webhook_secret is None:
        raise WebhookRejected("the Stripe connection has no webhookSecret to check events with")
    header = lower_keys(headers).get("stripe-signature")
    if not header:
        raise WebhookRejected("the Stripe event has no Stripe-Signature header")
    pairs = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for name, value in pairs if name == "t"]
    signatures = [value.lower() for name, value in pairs if name == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        raise WebhookRejected("the Stripe-Signature header has no t and v1")
    expected = webhook_signature(body, stamps[0], config.webhook_secret.get_secret_value())
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise WebhookRejected("the Stripe signature does not match")
    signed = datetime.fromtimestamp(int(stamps[0]), tz=UTC)
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if abs(aware - signed) > WEBHOOK_TOLERANCE:
        raise WebhookRejected(f"the Stripe event was signed at {signed.isoformat()}, too long ago")
    try:
        event = loads_exact(body)
    except ValueError:
        raise WebhookRejected("the Stripe event is not JSON") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookRejected("the Stripe event has no id and type")
    found = _result(
        str(event["id"]), str(event["type"]), _obj(_obj(event.get("data")).get("object"))
    )
    return [found] if found is not None else []


def _result(event_id: str, kind: str, obj: dict[str, Any]) -> WebhookResult | None:
    ours = _str(_obj(obj.get("metadata")).get("meterline_key"))
    if kind in ("setup_intent.succeeded", "setup_intent.setup_failed") and obj.get("id"):
        # A setup-mode checkout's SetupIntent: the saved method is its payment_method.
        return WebhookResult(
            str(obj["id"]),
            succeeded=kind == "setup_intent.succeeded",
            event_id=event_id,
            kind="method",
            # A failed setup saved nothing: recorded, no effect.
            final=kind == "setup_intent.succeeded",
            ours=ours,
            method=_id(obj.get("payment_method")),
            customer_reference=_id(obj.get("customer")),
        )
    if kind == "checkout.session.completed" and obj.get("mode") == "setup":
        # Names the SetupIntent, not the method: setup_intent.succeeded carries it.
        intent = _id(obj.get("setup_intent"))
        return WebhookResult(
            intent or str(obj.get("id")),
            succeeded=True,
            event_id=event_id,
            kind="method",
            final=False,
            ours=ours,
            customer_reference=_id(obj.get("customer")),
        )
    if kind.startswith("payment_intent.") and obj.get("id"):
        ending = kind.removeprefix("payment_intent.")
        if ending not in ("succeeded", "payment_failed", "canceled", "processing"):
            return None
        return WebhookResult(
            str(obj["id"]),
            succeeded=ending == "succeeded",
            event_id=event_id,
            final=ending != "processing",
            ours=ours,
            **_paid(obj.get("amount_received"), obj.get("currency")),
        )
    if kind.startswith("checkout.session.") and obj.get("payment_intent"):
        ending = kind.removeprefix("checkout.session.")
        paid = obj.get("payment_status") in ("paid", "no_payment_required")
        outcomes = {
            "completed": (paid, paid),
            "async_payment_succeeded": (True, True),
            "async_payment_failed": (False, True),
        }
        if ending not in outcomes:
            return None
        succeeded, final = outcomes[ending]
        intent = obj["payment_intent"]
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        return WebhookResult(
            str(intent_id),
            succeeded=succeeded,
            event_id=event_id,
            final=final,
            ours=ours,
            **_paid(obj.get("amount_total"), obj.get("currency")),
        )
    if obj.get("object") == "refund" and obj.get("id"):
        status = str(obj.get("status") or "")
        return WebhookResult(
            str(obj["id"]),
            succeeded=status == "succeeded",
            event_id=event_id,
            kind="refund",
            final=status in ("succeeded", "failed", "canceled"),
        )
    return None


def _paid(minor: Any, currency: Any) -> dict[str, Any]:
    """What a PaymentIntent or Session says was paid, in the major unit; nothing when
    it does not say (an older API version's event)."""
    if isinstance(minor, bool) or not isinstance(minor, int) or not isinstance(currency, str):
        return {}
    code = currency.upper()
    return {"amount": Decimal(minor).scaleb(-minor_units(code)), "currency": code}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _id(value: Any) -> str | None:
    """An expandable field's id: the string, or the expanded object's `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None
