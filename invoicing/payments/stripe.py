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

import logging
from decimal import Decimal
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from core.errors import InvalidInput
from invoicing.payments.base import ChargeRequest, Outcome, PaymentUnavailable, RefundRequest
from rating.money import minor_units

log = logging.getLogger(__name__)

NAME = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"


class _Retryable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` in the currency's smallest unit: Decimal('12.34') USD -> 1234."""
    scaled = amount.scaleb(minor_units(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


class StripeGateway:
    name = NAME

    def __init__(
        self,
        secret_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str | None = None,
        timeout: float = 20.0,
        attempts: int = 3,
        backoff: float = 0.5,
        client: httpx.Client | None = None,
    ) -> None:
        if not secret_key:
            raise InvalidInput("stripe needs config.secretKey")
        headers = {"Authorization": f"Bearer {secret_key}", "Accept": "application/json"}
        if api_version:
            headers["Stripe-Version"] = api_version
        self._client = client or httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout
        )
        if client is not None:
            self._client.headers.update(headers)
        self._attempts = attempts
        self._backoff = backoff

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StripeGateway:
        return cls(
            str(config.get("secretKey") or ""),
            base_url=str(config.get("baseUrl") or DEFAULT_BASE_URL),
            api_version=config.get("apiVersion"),
        )

    def close(self) -> None:
        self._client.close()

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
        return self._send(lambda: self._client.get(path, params=params))

    def _post(self, path: str, form: dict[str, str], key: str) -> tuple[int, dict[str, Any]]:
        return self._send(
            lambda: self._client.post(path, data=form, headers={"Idempotency-Key": key})
        )

    def _send(self, call: Any) -> tuple[int, dict[str, Any]]:
        def attempt() -> tuple[int, dict[str, Any]]:
            try:
                response: httpx.Response = call()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                raise _Retryable(f"stripe unreachable: {exc!r}") from exc
            should_retry = response.headers.get("Stripe-Should-Retry")
            if (
                response.status_code in (409, 429) and should_retry != "false"
            ) or response.status_code >= 500:
                # 409: a concurrent request with the same key is still in flight.
                raise _Retryable(f"stripe answered {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                body = {}
            return response.status_code, body if isinstance(body, dict) else {}

        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, min=self._backoff, max=8),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            raise PaymentUnavailable(f"{exc.message} (after {self._attempts} attempts)") from exc


def _log_retry(state: RetryCallState) -> None:
    log.warning("stripe: attempt %d failed, retrying", state.attempt_number)


def _message(body: dict[str, Any], status: int) -> str:
    error = body.get("error") or {}
    parts = [str(error.get(k)) for k in ("code", "decline_code") if error.get(k)]
    message = error.get("message") or f"HTTP {status}"
    return f"{message} ({', '.join(parts)})" if parts else str(message)


def _intent_id(body: dict[str, Any]) -> str | None:
    intent = (body.get("error") or {}).get("payment_intent") or {}
    return str(intent["id"]) if isinstance(intent, dict) and intent.get("id") else None
