"""Stripe adapter: PaymentIntents for charges, Refunds for refunds.

    GET  {base}/v1/customers/{customer}                    the default payment method
    GET  {base}/v1/customers/{customer}/payment_methods    else the first saved card
    POST {base}/v1/payment_intents   amount, currency, customer, payment_method,
                                     confirm=true, off_session=true, metadata[...]
    POST {base}/v1/refunds           payment_intent, amount
    Authorization: Bearer <secret key>;  Idempotency-Key on every POST

Bodies are form-encoded, amounts are integers of the currency's minor unit. A POST is
retried (timeouts, 429, 5xx) with the SAME idempotency key, which is what makes a retry
safe: Stripe answers a repeated key with the first result instead of charging again.
A 402 (`card_error`) is a decline: the PaymentIntent exists and failed; dunning retries
later with a new key. Any other 4xx is a configuration problem, reported as declined
with Stripe's message (a retry with the same request cannot succeed).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr

from core.errors import InvalidInput
from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    Outcome,
    PaymentUnavailable,
    ProviderConfig,
    RefundRequest,
    to_minor,
)

NAME = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"


class StripeConfig(ProviderConfig):
    secret_key: SecretStr = Field(description="a Stripe secret key, sk_…")
    api_version: str | None = None


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
        method = self._payment_method(request.customer_reference)
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
        }
        status, body = self._post("/v1/payment_intents", form, request.idempotency_key)
        if status == 200 and body.get("status") == "succeeded":
            return Outcome(True, reference=str(body.get("id")))
        if status == 200:
            # requires_action (3-D Secure), processing, requires_payment_method: not paid.
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
