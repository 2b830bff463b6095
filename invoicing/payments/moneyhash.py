"""MoneyHash adapter (API v1.1): merchant-initiated payment intents on a stored card
token, refunds, MoneyHash's hosted (embedded) checkout, and the check of MoneyHash's
`MoneyHash-Signature` webhook header.

    POST {base}/api/v1.1/payments/intent/               a purchase intent, MIT
    POST {base}/api/v1.1/payments/intent/               the hosted checkout: no card
                                                        token -> `data.embed_url`
    POST {base}/api/v1.1/payments/intent/{id}/refund/   {amount}  (path unconfirmed)
    X-Api-Key: <account API key>;  X-Idempotency-Key: <UUID> on every POST

A charge creates an intent with `amount` (MAJOR unit, exact JSON number),
`amount_currency`, `operation: purchase`, the MoneyHash `customer`, the stored
`card_token`, `merchant_initiated: true`, `payment_type: UNSCHEDULED` (we charge when an
invoice is due, not on the card network's schedule) and `recurring_data.agreement_id`,
the agreement the card was stored under. The customer's `paymentProviderCustomerId` is
`<customer id>/<card token>[/<agreement id>]`; without an agreement id the customer id
is the agreement (the one a tokenizing checkout usually names).

A hosted page is the same intent without a card token: `billing_data` (what we know
of the payer), `successful_redirect_url` / `failed_redirect_url`,
`expires_after_seconds`, and the answer's `embed_url` is the page (MoneyHash's
Embedded experience, opened by redirect). Every intent carries our idempotency key in
`custom_fields.meterline_key`; MoneyHash echoes custom_fields in its intent and
transaction webhooks, which is how a payment made on the page finds its invoice.

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

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    LinkRequest,
    Outcome,
    PaymentLink,
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
WEBHOOK_TOLERANCE = timedelta(minutes=5)
OURS = "meterline_key"  # the custom field that carries our idempotency key

# What each event type says about the intent (a charge) or a refund on it: (kind,
# succeeded, final). Intent events are `intent.{status}`, transaction events
# `transaction.{operation}.{status}`. A purchase still on its way (pending
# authentication, pending an external action) is recorded and changes nothing; so is
# every type not listed, except card, customer and subscription events, which are
# not about a payment at all and give no result.
EVENTS: dict[str, tuple[str, bool, bool]] = {
    "intent.processed": ("charge", True, True),
    "transaction.purchase.successful": ("charge", True, True),
    "transaction.purchase.failed": ("charge", False, True),
    "intent.time_expired": ("charge", False, True),
    "intent.closed": ("charge", False, True),
    "transaction.refund.successful": ("refund", True, True),
    "transaction.refund.failed": ("refund", False, True),
}
PAYMENT_PREFIXES = ("intent.", "transaction.purchase.", "transaction.refund.")


class MoneyhashConfig(ProviderConfig):
    api_key: SecretStr = Field(min_length=1, description="the account's secret API key (X-Api-Key)")
    signature_key: SecretStr | None = Field(
        min_length=1, default=None, description="the organization's webhook signature key"
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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._config = config
        self._clock = clock
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
                OURS: request.idempotency_key,
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

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        """MoneyHash's hosted checkout: a purchase intent without a card token, whose
        `embed_url` the payer opens; the intent id is the link's reference (and what a
        refund of the payment names)."""
        now = request.requested_at or self._clock.now()
        # In whole minutes: two asks under one key seconds apart (a retry, a race) then
        # send the same body, which MoneyHash answers with the first response.
        seconds = int((request.expires_at - now).total_seconds()) // 60 * 60
        if seconds <= 0:
            raise InvalidInput(
                f"the link would expire at {request.expires_at.isoformat()}, already past"
            )
        body: dict[str, Any] = {
            "amount": _major(request.amount, request.currency),
            "amount_currency": request.currency.upper(),
            "operation": "purchase",
            "expires_after_seconds": seconds,
            "custom_fields": {
                "meterline_invoice_id": request.invoice_id,
                "meterline_invoice_number": request.invoice_number or "",
                "meterline_tenant_id": request.tenant_id,
                OURS: request.idempotency_key,
            },
        }
        billing = _billing_data(request)
        if billing:
            body["billing_data"] = billing
        customer = (request.customer_reference or "").split("/")[0]
        if customer:
            body["customer"] = customer
        if request.success_url:
            body["successful_redirect_url"] = request.success_url
        if request.cancel_url:
            body["failed_redirect_url"] = request.cancel_url
        if self._config.webhook_url:
            body["webhook_url"] = self._config.webhook_url
        reply = self._http.post(
            INTENTS,
            json=body,
            idempotency_key=key_uuid(request.idempotency_key),
            key_header=KEY_HEADER,
        )
        if not reply.ok:
            raise UpstreamFailed(
                f"moneyhash: hosted intent refused: {_error(reply)}", code="payment_link_refused"
            )
        intent = _data(reply)
        intent_id, url = _str(intent.get("id")), _str(intent.get("embed_url"))
        if not intent_id or not url:
            raise UpstreamFailed(
                "moneyhash: the intent came back without an id or embed_url",
                code="payment_link_refused",
            )
        return PaymentLink(
            url=url, reference=intent_id, expires_at=now + timedelta(seconds=seconds)
        )


# -- webhooks -------------------------------------------------------------------------------


def webhook_signature(body: bytes, timestamp: str, signature_key: str) -> str:
    """MoneyHash's v3 signature: hex HMAC-SHA256, keyed with the organization's
    signature key, over base64(raw body) followed by the header's timestamp."""
    signed = base64.b64encode(body) + timestamp.encode()
    return hmac.new(signature_key.encode(), signed, hashlib.sha256).hexdigest()


def verify_webhook(
    config: MoneyhashConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[WebhookResult]:
    """What a MoneyHash event says about an intent or a refund on it, once its
    `MoneyHash-Signature` v3 checks out and its timestamp is within 5 minutes of `now`;
    `WebhookRejected` otherwise. MoneyHash posts one event per request."""
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
    event_type = str(event.get("type") or "")
    if not event_type:
        raise WebhookRejected("the MoneyHash event has no type")
    if not event_type.startswith(PAYMENT_PREFIXES):
        return []  # a card token, customer or subscription event
    # Intent events: {"type", "data": {"intent_id", "intent": {…}}}; transaction events:
    # {"type", "status_id", "operation_id", "intent": {…}, "transaction": {…}}.
    data = _obj(event.get("data"))
    intent = _obj(event.get("intent")) or _obj(data.get("intent"))
    intent_id = intent.get("id") or data.get("intent_id")
    if not intent_id:
        raise WebhookRejected("the MoneyHash event names no intent")
    on_the_way = (
        "refund" if event_type.startswith("transaction.refund.") else "charge",
        False,
        False,
    )
    what, succeeded, final = EVENTS.get(event_type, on_the_way)
    if what == "refund":
        # The refund as `refund()` named it: the operation's id (else the transaction's).
        reference = event.get("operation_id") or _obj(event.get("transaction")).get("id")
    else:
        reference = intent_id
    stamp = event.get("id") or event.get("status_id") or reference
    ours = _obj(intent.get("custom_fields")).get(OURS)
    return [
        WebhookResult(
            str(reference or intent_id),
            succeeded=succeeded,
            event_id=f"{event_type}:{stamp}",
            kind="refund" if what == "refund" else "charge",
            final=final,
            ours=str(ours) if ours and what == "charge" else None,
        )
    ]


# -- the wire -------------------------------------------------------------------------------


def _major(amount: Decimal, currency: str) -> Decimal:
    to_minor(amount, currency)  # refuses an amount finer than the minor unit
    return amount.quantize(quantum(currency.upper()))


def _billing_data(request: LinkRequest) -> dict[str, str]:
    """What MoneyHash's checkout need not ask the payer again: names and email."""
    billing: dict[str, str] = {}
    names = (request.customer_name or "").split(maxsplit=1)
    if names:
        billing["first_name"] = names[0]
    if len(names) > 1:
        billing["last_name"] = names[1]
    if request.customer_email:
        billing["email"] = request.customer_email
    return billing


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
