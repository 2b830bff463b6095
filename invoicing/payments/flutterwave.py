"""Flutterwave adapter (API v3): tokenized card charges, refunds, and the check of
Flutterwave's webhook hash.

    POST {base}/v3/tokenized-charges      token, email, currency, amount, tx_ref, narration
    GET  {base}/v3/transactions/verify_by_reference?tx_ref=…
    POST {base}/v3/transactions/{id}/refund   amount
    Authorization: Bearer <secret key>

Flutterwave has no idempotency header: `tx_ref`, our idempotency key, is the unique
reference of the transaction. A charge is retried (timeouts, 429, 5xx) with the same
`tx_ref`; whenever the charge is not answered with a transaction (a duplicate
reference, an error after a lost answer), we look the transaction up by `tx_ref` and go
on with it if it exists, so a reference is charged at most once.

Amounts are in the currency's MAJOR unit, sent as exact JSON numbers (Decimal, never
a float), at the currency's minor-unit precision. The customer's
`paymentProviderCustomerId` is the card token (`flw-t…`) and Flutterwave requires the
customer's email, the one of the first charge: the customer's `email`.

A refund has no reference of ours at Flutterwave, so it is sent ONCE (no retries): a
lost answer is `PaymentUnavailable`, and a person checks the dashboard before trying
again, rather than risking two refunds.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Any

import httpx
from pydantic import Field, SecretStr

from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    Outcome,
    ProviderConfig,
    RefundRequest,
    to_minor,
)
from rating.money import quantum

NAME = "flutterwave"
DEFAULT_BASE_URL = "https://api.flutterwave.com"


class FlutterwaveConfig(ProviderConfig):
    secret_key: SecretStr = Field(description="a Flutterwave v3 secret key, FLWSECK-…")
    secret_hash: SecretStr | None = Field(
        default=None, description="the webhook's secret hash (verif-hash header)"
    )


class FlutterwaveGateway:
    name = NAME

    def __init__(
        self,
        config: FlutterwaveConfig,
        *,
        timeout: float = 30.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {config.secret_key.get_secret_value()}"}
        given = http.client(
            config.base_url or DEFAULT_BASE_URL, headers, timeout=timeout, given=client
        )
        self._http = http.ProviderHttp(NAME, given, retry=retry)
        self._once = http.ProviderHttp(NAME, given, retry=http.RetryPolicy(attempts=1))

    def close(self) -> None:
        self._http.close()

    def charge(self, request: ChargeRequest) -> Outcome:
        if not request.customer_email:
            return Outcome(False, error="Flutterwave needs the customer's email")
        body = {
            "token": request.customer_reference,
            "email": request.customer_email,
            "currency": request.currency.upper(),
            "amount": _major(request.amount, request.currency),
            "tx_ref": request.idempotency_key,
            "narration": f"Invoice {request.invoice_number or request.invoice_id}",
        }
        reply = self._http.post("/v3/tokenized-charges", json=body, idempotency_key=None)
        transaction = _data(reply)
        if transaction is None:
            found = self._http.get(
                "/v3/transactions/verify_by_reference", params={"tx_ref": request.idempotency_key}
            )
            transaction = _data(found)
            if transaction is None:
                return Outcome(False, error=_message(reply))
        reference = str(transaction.get("id") or "") or None
        status = transaction.get("status")
        if status == "successful":
            return Outcome(True, reference=reference)
        reason = transaction.get("processor_response") or f"the charge is {status}"
        return Outcome(False, reference=reference, error=str(reason))

    def refund(self, request: RefundRequest) -> Outcome:
        body = {"amount": _major(request.amount, request.currency)}
        reply = self._once.post(
            f"/v3/transactions/{request.charge_reference}/refund", json=body, idempotency_key=None
        )
        refund = _data(reply)
        if refund is None:
            return Outcome(False, error=_message(reply))
        reference = str(refund.get("id") or "") or None
        if refund.get("status") in ("completed", "pending", "successful"):
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=f"the refund is {refund.get('status')}")


def verify_webhook(verif_hash: str | None, secret_hash: str) -> bool:
    """Whether the `verif-hash` header of a webhook is the secret hash the tenant set
    in its Flutterwave dashboard (Flutterwave signs nothing else)."""
    if not verif_hash or not secret_hash:
        return False
    return hmac.compare_digest(verif_hash.encode(), secret_hash.encode())


def _major(amount: Decimal, currency: str) -> Decimal:
    to_minor(amount, currency)  # refuses an amount finer than the minor unit
    return amount.quantize(quantum(currency))


def _data(reply: http.Reply) -> dict[str, Any] | None:
    data = reply.body.get("data")
    if reply.ok and reply.body.get("status") == "success" and isinstance(data, dict):
        return data
    return None


def _message(reply: http.Reply) -> str:
    return str(reply.body.get("message") or f"HTTP {reply.status}")
