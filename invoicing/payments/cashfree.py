"""Cashfree Payments adapter (PG API, version 2023-08-01): charges raised on a
customer's on-demand subscription, refunds of those charges, and the check of
Cashfree's webhook signature.

    POST {base}/subscriptions/pay                  {subscription_id, payment_id,
                                                    payment_amount, payment_type: CHARGE,
                                                    payment_remarks}
    GET  {base}/subscriptions/{sid}/payments/{payment_id}
    POST {base}/subscriptions/{sid}/refunds        {subscription_id, payment_id, refund_id,
                                                    refund_amount, refund_note}
    GET  {base}/subscriptions/{sid}/refunds/{refund_id}
    x-client-id, x-client-secret, x-api-version: 2023-08-01;
    x-idempotency-key (a UUID) on every POST

Why subscriptions and not orders: a Cashfree order is paid by the customer at a
checkout, with the customer present; the documented way for a merchant to
collect without the customer is to raise a CHARGE on a subscription whose mandate
(card, UPI Autopay or eNACH) the customer authorized once, under an ON_DEMAND plan. The
customer's `paymentProviderCustomerId` is that `subscription_id`. A charge names no
currency (the plan's is used), so an invoice in another currency than the config's
`currency` (INR unless set) is refused before anything is sent.

Idempotency is twofold. `payment_id` (and a refund's `refund_id`) is ours and unique
at Cashfree: `cf-<first 32 hex of SHA-256 of our key>`, so every retry and every later
pass names the same payment. `x-idempotency-key` carries `key_uuid(<our key>)`, and
Cashfree answers a repeat with the first response; once it has forgotten the key, the
duplicate `payment_id` is refused (409) and the adapter fetches the payment instead.

A charge on a mandate may settle asynchronously (eNACH takes days): a charge Cashfree
accepted (`SUCCESS`, `PENDING`, `INITIALIZED`) counts as paid, since charging again at
the next dunning step could collect twice; a later failure arrives by webhook
(SUBSCRIPTION_PAYMENT_FAILED) and its handler must reopen the invoice. `FAILED`,
`CANCELLED` or a 4xx is a decline with Cashfree's message. The charge's reference is
`<subscription_id>/<payment_id>`, which its refund needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    Outcome,
    ProviderConfig,
    RefundRequest,
    WebhookRejected,
    WebhookResult,
    key_uuid,
    lower_keys,
    to_minor,
)
from invoicing.tax.base import loads_exact
from rating.money import quantum

NAME = "cashfree"
API_VERSION = "2023-08-01"
BASE_URLS = {
    "production": "https://api.cashfree.com/pg",
    "sandbox": "https://sandbox.cashfree.com/pg",
}
KEY_HEADER = "x-idempotency-key"
ACCEPTED = frozenset({"SUCCESS", "PENDING", "INITIALIZED"})
REFUND_ACCEPTED = frozenset({"SUCCESS", "PENDING", "INITIALIZED", "ONHOLD"})
WEBHOOK_TOLERANCE = timedelta(minutes=5)


class CashfreeConfig(ProviderConfig):
    client_id: str = Field(min_length=1, description="the PG app id (x-client-id)")
    client_secret: SecretStr = Field(
        description="the PG secret key (x-client-secret); it also signs webhooks"
    )
    environment: Literal["production", "sandbox"] = "production"
    api_version: str = Field(default=API_VERSION, pattern=r"^\d{4}-\d{2}-\d{2}$")
    currency: str = Field(
        default="INR", pattern=r"^[A-Z]{3}$", description="the currency of the tenant's plans"
    )

    def url(self) -> str:
        return self.base_url or BASE_URLS[self.environment]


class CashfreeGateway:
    name = NAME

    def __init__(
        self,
        config: CashfreeConfig,
        *,
        timeout: float = 30.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {
            "x-client-id": config.client_id,
            "x-client-secret": config.client_secret.get_secret_value(),
            "x-api-version": config.api_version,
        }
        self._currency = config.currency
        self._http = http.ProviderHttp(
            NAME, http.client(config.url(), headers, timeout=timeout, given=client), retry=retry
        )

    def close(self) -> None:
        self._http.close()

    def charge(self, request: ChargeRequest) -> Outcome:
        subscription = request.customer_reference
        if not subscription or "/" in subscription:
            return Outcome(False, error="the Cashfree customer id must be a subscription_id")
        if request.currency.upper() != self._currency:
            # A charge names no currency: it is collected in the plan's. Never send an
            # amount in one currency to be collected in another.
            return Outcome(
                False,
                error=f"Cashfree collects {self._currency}; the invoice is in {request.currency}",
            )
        payment_id = cashfree_id(request.idempotency_key)
        body = {
            "subscription_id": subscription,
            "payment_id": payment_id,
            "payment_amount": _major(request.amount, request.currency),
            "payment_type": "CHARGE",
            "payment_remarks": f"Invoice {request.invoice_number or request.invoice_id}",
        }
        reply = self._create(
            "/subscriptions/pay",
            body,
            request.idempotency_key,
            existing=f"/subscriptions/{subscription}/payments/{payment_id}",
        )
        reference = f"{subscription}/{payment_id}"
        if not reply.ok:
            return Outcome(False, error=_error(reply))
        status = reply.body.get("payment_status")
        if status in ACCEPTED:
            return Outcome(True, reference=reference)
        reason = reply.body.get("failure_details") or reply.body.get("payment_message")
        if isinstance(reason, dict):
            reason = reason.get("failure_reason")
        return Outcome(False, reference=reference, error=str(reason or f"the charge is {status}"))

    def refund(self, request: RefundRequest) -> Outcome:
        subscription, _, payment_id = request.charge_reference.partition("/")
        if not subscription or not payment_id:
            return Outcome(False, error="a Cashfree charge is <subscription_id>/<payment_id>")
        refund_id = cashfree_id(request.idempotency_key)
        body = {
            "subscription_id": subscription,
            "payment_id": payment_id,
            "refund_id": refund_id,
            "refund_amount": _major(request.amount, request.currency),
            "refund_note": f"Meterline {request.idempotency_key}",
        }
        reply = self._create(
            f"/subscriptions/{subscription}/refunds",
            body,
            request.idempotency_key,
            existing=f"/subscriptions/{subscription}/refunds/{refund_id}",
        )
        if not reply.ok:
            return Outcome(False, error=_error(reply))
        status = reply.body.get("refund_status")
        reference = _str(reply.body.get("cf_refund_id")) or refund_id
        if status in REFUND_ACCEPTED:
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=f"the refund is {status}")

    def _create(self, path: str, body: dict[str, Any], key: str, *, existing: str) -> http.Reply:
        """POST a new payment or refund; the one an earlier pass made under `key`, if
        Cashfree refuses our id as taken."""
        reply = self._http.post(
            path, json=body, idempotency_key=key_uuid(key), key_header=KEY_HEADER
        )
        if reply.status == 409:
            return self._http.get(existing)
        return reply


def cashfree_id(key: str) -> str:
    """Our id at Cashfree (payment_id, refund_id) for an idempotency key: short, of the
    characters Cashfree takes, the same for every retry."""
    return "cf-" + hashlib.sha256(key.encode()).hexdigest()[:32]


# -- webhooks -------------------------------------------------------------------------------


def webhook_signature(body: bytes, timestamp: str, client_secret: str) -> str:
    """Cashfree's `x-webhook-signature`: base64 of HMAC-SHA256, keyed with the client
    secret, over the `x-webhook-timestamp` value followed by the raw body."""
    digest = hmac.new(client_secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook(
    config: CashfreeConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> WebhookResult:
    """The subscription payment (or refund) a Cashfree webhook is about, once its
    signature checks out and its timestamp is within 5 minutes of `now`;
    `WebhookRejected` otherwise. Verify the bytes as received, before parsing."""
    found = lower_keys(headers)
    received, timestamp = found.get("x-webhook-signature"), found.get("x-webhook-timestamp")
    if not received or not timestamp or not timestamp.strip().isdigit():
        raise WebhookRejected("the Cashfree webhook has no x-webhook-signature and timestamp")
    expected = webhook_signature(body, timestamp, config.client_secret.get_secret_value())
    if not hmac.compare_digest(expected, received.strip()):
        raise WebhookRejected("the Cashfree webhook signature does not match")
    stamp = int(timestamp)
    sent = datetime.fromtimestamp(stamp / 1000 if stamp > 10**11 else stamp, tz=UTC)  # ms or s
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if abs(aware - sent) > WEBHOOK_TOLERANCE:
        raise WebhookRejected(
            f"the Cashfree webhook was signed at {sent.isoformat()}, too long ago"
        )
    try:
        event = loads_exact(body)
    except ValueError:
        raise WebhookRejected("the Cashfree webhook is not JSON") from None
    data = _obj(_obj(event).get("data"))
    kind = str(_obj(event).get("type") or "")
    if not data or not kind:
        raise WebhookRejected("the Cashfree webhook has no type and data")
    payment = _obj(data.get("payment")) or data
    if "REFUND" in kind:
        refund = _obj(data.get("refund")) or data
        reference = _str(refund.get("cf_refund_id")) or _str(refund.get("refund_id"))
        succeeded = refund.get("refund_status") == "SUCCESS"
    else:
        subscription, payment_id = payment.get("subscription_id"), payment.get("payment_id")
        reference = f"{subscription}/{payment_id}" if subscription and payment_id else None
        succeeded = payment.get("payment_status") == "SUCCESS"
    if reference is None:
        raise WebhookRejected("the Cashfree webhook names no subscription payment or refund")
    unique = payment.get("cf_payment_id") or reference
    return WebhookResult(reference, succeeded, f"{kind}:{unique}")


# -- the wire -------------------------------------------------------------------------------


def _major(amount: Decimal, currency: str) -> Decimal:
    to_minor(amount, currency)  # refuses an amount finer than the minor unit
    return amount.quantize(quantum(currency.upper()))


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _error(reply: http.Reply) -> str:
    # {"message": "…", "code": "subscription_not_active", "type": "invalid_request_error"}
    message = str(reply.body.get("message") or f"HTTP {reply.status}")
    code = reply.body.get("code")
    return f"{message} ({code})" if code else message
