"""GoCardless adapter: Direct Debit payments against a customer's mandate, refunds, and
the signature check of GoCardless webhooks.

    POST {base}/payments     {"payments": {amount, currency, description, metadata,
                                           links: {mandate}}}
    GET  {base}/payments/{id}
    POST {base}/refunds      {"refunds": {amount, total_amount_confirmation, metadata,
                                          links: {payment}}}
    Authorization: Bearer <access token>;  GoCardless-Version: 2015-07-06;
    Idempotency-Key on every POST

Amounts are integers of the currency's minor unit. The customer's
`paymentProviderCustomerId` is the mandate id (MD…).

GoCardless does not replay a repeated idempotency key: it answers 409
`idempotent_creation_conflict` with the id of what the first request created in
`links.conflicting_resource_id`, and we fetch that resource and go on with it. So a
retry after a lost answer, or a second attempt after a crash, never creates a second
payment.

Direct Debit is slow: a created payment is `pending_submission` and is collected days
later. We count a payment that GoCardless accepted (pending_submission, submitted,
confirmed, paid_out) as paid, because charging the mandate again on the next dunning
step could collect twice; a payment that fails later (`failed`, `charged_back`) is
reported by webhook, whose handler must reopen the invoice. A payment GoCardless
refused (an inactive mandate, a currency the scheme does not take: 4xx) is a decline.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Literal

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

NAME = "gocardless"
API_VERSION = "2015-07-06"
BASE_URLS = {
    "live": "https://api.gocardless.com",
    "sandbox": "https://api-sandbox.gocardless.com",
}
# Payments GoCardless has accepted for collection; `pending_customer_approval` is not.
ACCEPTED = frozenset({"pending_submission", "submitted", "confirmed", "paid_out"})
REFUND_FAILED = frozenset({"cancelled", "bounced"})


class GoCardlessConfig(ProviderConfig):
    access_token: SecretStr = Field(description="a GoCardless access token")
    environment: Literal["live", "sandbox"] = "live"
    webhook_secret: SecretStr | None = Field(
        default=None, description="the secret of the webhook endpoint (Webhook-Signature)"
    )

    def url(self) -> str:
        return self.base_url or BASE_URLS[self.environment]


class GoCardlessGateway:
    name = NAME

    def __init__(
        self,
        config: GoCardlessConfig,
        *,
        timeout: float = 30.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {config.access_token.get_secret_value()}",
            "GoCardless-Version": API_VERSION,
        }
        self._http = http.ProviderHttp(
            NAME, http.client(config.url(), headers, timeout=timeout, given=client), retry=retry
        )

    def close(self) -> None:
        self._http.close()

    def charge(self, request: ChargeRequest) -> Outcome:
        body = {
            "payments": {
                "amount": to_minor(request.amount, request.currency),
                "currency": request.currency.upper(),
                "description": f"Invoice {request.invoice_number or request.invoice_id}",
                "metadata": {
                    "meterline_invoice_id": request.invoice_id,
                    "meterline_tenant_id": request.tenant_id,
                },
                "links": {"mandate": request.customer_reference},
            }
        }
        reply = self._create("payments", body, request.idempotency_key)
        if not reply.ok:
            return Outcome(False, error=_error(reply))
        payment = reply.body.get("payments") or {}
        reference = str(payment.get("id") or "") or None
        status = payment.get("status")
        if status in ACCEPTED:
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=f"the payment is {status}")

    def refund(self, request: RefundRequest) -> Outcome:
        # GoCardless wants the total refunded once this refund is made, to catch a
        # refund sent twice; a retry re-sends this same body under the same key.
        found = self._http.get(f"/payments/{request.charge_reference}")
        if not found.ok:
            return Outcome(False, error=_error(found))
        already = int((found.body.get("payments") or {}).get("amount_refunded") or 0)
        amount = to_minor(request.amount, request.currency)
        body = {
            "refunds": {
                "amount": amount,
                "total_amount_confirmation": already + amount,
                "metadata": {"meterline_refund": request.idempotency_key},
                "links": {"payment": request.charge_reference},
            }
        }
        reply = self._create("refunds", body, request.idempotency_key)
        refund = reply.body.get("refunds") or {}
        reference = str(refund.get("id") or "") or None
        if not reply.ok:
            return Outcome(False, error=_error(reply))
        if refund.get("status") in REFUND_FAILED:
            return Outcome(False, reference=reference, error=f"the refund is {refund['status']}")
        return Outcome(True, reference=reference)

    def _create(self, resource: str, body: dict[str, Any], key: str) -> http.Reply:
        """POST a new resource; the one an earlier request with `key` made, if any."""
        reply = self._http.post(f"/{resource}", json=body, idempotency_key=key)
        if reply.status == 409:
            existing = _conflicting_resource(reply)
            if existing is not None:
                return self._http.get(f"/{resource}/{existing}")
        return reply


def verify_webhook(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether `signature` (the `Webhook-Signature` header) is GoCardless's: the hex
    HMAC-SHA256 of the raw request body, keyed with the endpoint's secret."""
    if not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def _conflicting_resource(reply: http.Reply) -> str | None:
    for error in (reply.body.get("error") or {}).get("errors") or []:
        if isinstance(error, dict) and error.get("reason") == "idempotent_creation_conflict":
            found = (error.get("links") or {}).get("conflicting_resource_id")
            return str(found) if found else None
    return None


def _error(reply: http.Reply) -> str:
    # {"error": {"type", "code", "message", "errors": [{"reason" | "field", "message"}]}}
    error = reply.body.get("error") or {}
    message = str(error.get("message") or f"HTTP {reply.status}")
    details = [
        f"{item.get('field') or item.get('reason')}: {item.get('message')}"
        for item in error.get("errors") or []
        if isinstance(item, dict) and item.get("message") and item.get("message") != message
    ]
    return f"{message} ({'; '.join(details)})" if details else message
