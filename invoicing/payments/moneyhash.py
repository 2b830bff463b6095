"""MoneyHash adapter (API v1.1): merchant-initiated payment intents on a stored card
token, refunds, and the check of MoneyHash's `MoneyHash-Signature` webhook header.

    POST {base}/api/v1.1/payments/intent/               a purchase intent, MIT
    POST {base}/api/v1.1/payments/intent/{id}/refund/   {amount}  (path unconfirmed)
    X-Api-Key: <account API key>;  X-Idempotency-Key: <UUID> on every POST

A charge creates an intent with `amount` (MAJOR unit, exact JSON number),
`amount_currency`, `operation: purchase`, the MoneyHash `customer`, the stored
`card_token`, `merchant_initiated: true`, `payment_type: UNSCHEDULED` (we charge when an
invoice is due, not on the card network's schedule) and `recurring_data.agreement_id`,
the agreement the card was stored under. The customer's `paymentProviderCustomerId` is
`<customer id>/<card token>[/<agreement id>]`; without an agreement id the customer id
is the agreement (the one a tokenizing checkout usually names).

Idempotency: MoneyHash answers a repeated `X-Idempotency-Key` (with the same API key,
within 24 hours) with the first response. It takes only UUIDs, so the header carries
`key_uuid(<our key>)`, the same UUID on every retry and every later pass.

An intent is paid when it is `PROCESSED` or its transaction is `purchase.successful`;
`purchase.failed` (or any 4xx) is a decline with MoneyHash's message; anything else
(pending authentication, unprocessed) is not paid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
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
    WebhookRejected,
    WebhookResult,
    key_uuid,
    lower_keys,
    to_minor,
)
from invoicing.tax.base import loads_exact
from rating.money import quantum

NAME = "moneyhash"
DEFAULT_BASE_URL = "https://web.moneyhash.io"
INTENTS = "/api/v1.1/payments/intent/"
KEY_HEADER = "X-Idempotency-Key"
# Events that mean the intent was paid; failures and expiries are the others.
PAID_EVENTS = frozenset({"intent.processed", "transaction.purchase.successful"})
WEBHOOK_TOLERANCE = timedelta(minutes=5)


class MoneyhashConfig(ProviderConfig):
    api_key: SecretStr = Field(description="the account's secret API key (X-Api-Key)")
    signature_key: SecretStr | None = Field(
        default=None, description="the organization's webhook signature key"
    )
    webhook_url: str | None = Field(
        default=None, pattern=r"^https?://", description="where MoneyHash posts intent events"
    )


class MoneyhashGateway:
    name = NAME

    def __init__(
        self,
        config: MoneyhashConfig,
        *,
        timeout: float = 30.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._config = config
        headers = {"X-Api-Key": config.api_key.get_secret_value()}
        self._http = http.ProviderHttp(
            NAME,
            http.client(
                config.base_url or DEFAULT_BASE_URL, headers, timeout=timeout, given=client
            ),
            retry=retry,
        )

    def close(self) -> None:
        self._http.close()

    def charge(self, request: ChargeRequest) -> Outcome:
        parts = request.customer_reference.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            return Outcome(
                False,
                error="the MoneyHash customer id must be <customer id>/<card token>"
                "[/<agreement id>]",
            )
        customer, card_token = parts[0], parts[1]
        agreement = parts[2] if len(parts) == 3 else customer
        body: dict[str, Any] = {
            "amount": _major(request.amount, request.currency),
            "amount_currency": request.currency.upper(),
            "operation": "purchase",
            "customer": customer,
            "card_token": card_token,
            "merchant_initiated": True,
            "payment_type": "UNSCHEDULED",
            "recurring_data": {"agreement_id": agreement},
            "custom_fields": {
                "meterline_invoice_id": request.invoice_id,
                "meterline_invoice_number": request.invoice_number or "",
                "meterline_tenant_id": request.tenant_id,
            },
        }
        if self._config.webhook_url:
            body["webhook_url"] = self._config.webhook_url
        reply = self._http.post(
            INTENTS,
            json=body,
            idempotency_key=key_uuid(request.idempotency_key),
            key_header=KEY_HEADER,
        )
        intent = _data(reply)
        reference = _str(intent.get("id"))
        if not reply.ok:
            return Outcome(False, reference=reference, error=_error(reply))
        transaction = intent.get("active_transaction") or {}
        state = transaction.get("status") if isinstance(transaction, dict) else None
        if intent.get("status") == "PROCESSED" or state == "purchase.successful":
            return Outcome(True, reference=reference)
        reason = (
            (transaction.get("external_action_message") if isinstance(transaction, dict) else None)
            or (transaction.get("response_message") if isinstance(transaction, dict) else None)
            or f"the payment is {state or intent.get('status')}"
        )
        return Outcome(False, reference=reference, error=str(reason))

    def refund(self, request: RefundRequest) -> Outcome:
        reply = self._http.post(
            f"{INTENTS}{request.charge_reference}/refund/",
            json={"amount": _major(request.amount, request.currency)},
            idempotency_key=key_uuid(request.idempotency_key),
            key_header=KEY_HEADER,
        )
        refund = _data(reply)
        reference = _str(refund.get("id"))
        if not reply.ok:
            return Outcome(False, reference=reference, error=_error(reply))
        status = str(refund.get("status") or "")
        if "fail" in status.lower():
            return Outcome(False, reference=reference, error=f"the refund is {status}")
        return Outcome(True, reference=reference)


# -- webhooks -------------------------------------------------------------------------------


def webhook_signature(body: bytes, timestamp: str, signature_key: str) -> str:
    """MoneyHash's v3 signature: hex HMAC-SHA256, keyed with the organization's
    signature key, over base64(raw body) followed by the header's timestamp."""
    signed = base64.b64encode(body) + timestamp.encode()
    return hmac.new(signature_key.encode(), signed, hashlib.sha256).hexdigest()


def verify_webhook(
    config: MoneyhashConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> WebhookResult:
    """The intent a MoneyHash event is about, once its `MoneyHash-Signature` v3 checks out
    and its timestamp is within 5 minutes of `now`; `WebhookRejected` otherwise."""
    if config.signature_key is None:
        raise WebhookRejected("the MoneyHash connection has no signatureKey")
    header = lower_keys(headers).get("moneyhash-signature")
    if not header:
        raise WebhookRejected("the MoneyHash event has no MoneyHash-Signature header")
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    timestamp, received = parts.get("t"), parts.get("v3")
    if not timestamp or not received or not timestamp.isdigit():
        raise WebhookRejected("the MoneyHash-Signature header has no t and v3")
    expected = webhook_signature(body, timestamp, config.signature_key.get_secret_value())
    if not hmac.compare_digest(expected, received.lower()):
        raise WebhookRejected("the MoneyHash signature does not match")
    sent = datetime.fromtimestamp(int(timestamp), tz=UTC)
    if abs(_aware(now) - sent) > WEBHOOK_TOLERANCE:
        raise WebhookRejected(f"the MoneyHash event was signed at {sent.isoformat()}, too long ago")
    try:
        event = loads_exact(body)
    except ValueError:
        raise WebhookRejected("the MoneyHash event is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRejected("the MoneyHash event is not an object")
    kind = str(event.get("type") or "")
    data, intent = _obj(event.get("data")), _obj(event.get("intent"))
    reference = intent.get("id") or data.get("intent_id") or _obj(data.get("intent")).get("id")
    if not kind or not reference:
        raise WebhookRejected("the MoneyHash event names no type or intent")
    event_id = str(event.get("id") or f"{kind}:{reference}")
    return WebhookResult(str(reference), kind in PAID_EVENTS, event_id)


# -- the wire -------------------------------------------------------------------------------


def _major(amount: Decimal, currency: str) -> Decimal:
    to_minor(amount, currency)  # refuses an amount finer than the minor unit
    return amount.quantize(quantum(currency.upper()))


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _data(reply: http.Reply) -> dict[str, Any]:
    return _obj(reply.body.get("data"))


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _error(reply: http.Reply) -> str:
    # {"status": {"code": 400, "message": "…", "errors": [{"card_token": ["…"]}]}, "data": {}}
    status = reply.body.get("status") or {}
    if not isinstance(status, dict):
        return f"HTTP {reply.status}"
    message = str(status.get("message") or f"HTTP {reply.status}")
    details = []
    for item in status.get("errors") or []:
        if isinstance(item, dict):
            for field, problems in item.items():
                text = "; ".join(problems) if isinstance(problems, list) else str(problems)
                details.append(f"{field}: {text}")
    return f"{message} ({'; '.join(details)})" if details else message
