"""Cashfree Payments adapter (PG API, version 2023-08-01): charges raised on a
customer's on-demand subscription, refunds of those charges, hosted Payment Links, and
the check of Cashfree's webhook signature.

    POST {base}/subscriptions/pay                  {subscription_id, payment_id,
                                                    payment_amount, payment_type: CHARGE,
                                                    payment_remarks}
    GET  {base}/subscriptions/{sid}/payments/{payment_id}
    POST {base}/subscriptions/{sid}/refunds        {subscription_id, payment_id, refund_id,
                                                    refund_amount, refund_note}
    GET  {base}/subscriptions/{sid}/refunds/{refund_id}
    GET  {base}/subscriptions/{sid}                the customer's phone, for a link
    POST {base}/links                              {link_id, link_amount, link_currency,
                                                    link_purpose, customer_details,
                                                    link_partial_payments, link_expiry_time,
                                                    link_notify, link_notes, link_meta?}
    GET  {base}/links/{link_id}
    POST {base}/orders/{order_id}/refunds          {refund_amount, refund_id, refund_note}
    GET  {base}/orders/{order_id}/refunds/{refund_id}
    x-client-id, x-client-secret, x-api-version: 2023-08-01;
    x-idempotency-key (a UUID) on every POST

Why subscriptions and not orders: a Cashfree order is paid by the customer at a
checkout, with the customer present; the documented way for a merchant to
collect without the customer is to raise a CHARGE on a subscription whose mandate
(card, UPI Autopay or eNACH) the customer authorized once, under an ON_DEMAND plan. The
customer's `paymentProviderCustomerId` is that `subscription_id`. A charge names no
currency (the plan's is used), so an invoice in another currency than the config's
`currency` (INR unless set) is refused before anything is sent.

Idempotency is twofold. `payment_id` (a refund's `refund_id`, a link's `link_id`) is
ours and unique at Cashfree: `cf-<first 32 hex of SHA-256 of our key>`, so every retry
and every later pass names the same payment. `x-idempotency-key` carries
`key_uuid(<our key>)`, and Cashfree answers a repeat with the first response; once it
has forgotten the key, the duplicate id is refused (409) and the adapter fetches what
the first request made instead.

A charge on a mandate may settle asynchronously (eNACH takes days): `SUCCESS` is paid;
a charge Cashfree accepted but has not collected (`PENDING`, `INITIALIZED`) is
`pending`: the attempt is `processing`, nothing is charged again, and the webhook
(SUBSCRIPTION_PAYMENT_SUCCESS or _FAILED) tells how it ended. `FAILED`,
`CANCELLED` or a 4xx is a decline with Cashfree's message. The charge's reference is
`<subscription_id>/<payment_id>`, which its refund needs.

A hosted page is a Payment Link. Cashfree requires the payer's phone
(`customer_details.customer_phone`), which an invoice does not carry: it is read from
the customer's subscription (Cashfree requires a phone there too), and a customer with
no subscription gets no link (InvalidInput). Our key goes in `link_notes.meterline_key`,
which the PAYMENT_LINK_EVENT webhook echoes. Paying a link makes a Cashfree order
(`CFPay_…`); the payment's reference is `order:<order_id>`, and its refund goes through
the orders API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

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

NAME = "cashfree"
API_VERSION = "2023-08-01"
BASE_URLS = {
    "production": "https://api.cashfree.com/pg",
    "sandbox": "https://sandbox.cashfree.com/pg",
}
KEY_HEADER = "x-idempotency-key"
ACCEPTED = frozenset({"PENDING", "INITIALIZED"})  # accepted, collected later
REFUND_ACCEPTED = frozenset({"SUCCESS", "PENDING", "INITIALIZED", "ONHOLD"})
WEBHOOK_TOLERANCE = timedelta(minutes=5)
IST = timezone(timedelta(hours=5, minutes=30))  # Cashfree's times without an offset
ORDER = "order:"  # the reference of a payment made on a link: order:<order_id>
# Subscription payment events: (succeeded, final).
SUBSCRIPTION_PAYMENT_EVENTS = {
    "SUBSCRIPTION_PAYMENT_SUCCESS": (True, True),
    "SUBSCRIPTION_PAYMENT_FAILED": (False, True),
    "SUBSCRIPTION_PAYMENT_CANCELLED": (False, True),
    "SUBSCRIPTION_PAYMENT_NOTIFICATION_INITIATED": (False, False),  # the pre-debit notice
}
# Order payment events (an order made by paying a link).
ORDER_PAYMENT_EVENTS = {
    "PAYMENT_SUCCESS_WEBHOOK": (True, True),
    "PAYMENT_FAILED_WEBHOOK": (False, True),
    "PAYMENT_USER_DROPPED_WEBHOOK": (False, False),  # the payer may try again on the link
}
REFUND_EVENTS = frozenset({"SUBSCRIPTION_REFUND_STATUS", "REFUND_STATUS_WEBHOOK"})
REFUND_FINAL = frozenset({"SUCCESS", "CANCELLED", "FAILED"})


class CashfreeConfig(ProviderConfig):
    client_id: str = Field(min_length=1, description="the PG app id (x-client-id)")
    client_secret: SecretStr = Field(
        min_length=1, description="the PG secret key (x-client-secret); it also signs webhooks"
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
        if status == "SUCCESS":
            return Outcome(True, reference=reference)
        if status in ACCEPTED:
            return Outcome(False, reference=reference, pending=True)
        reason = reply.body.get("failure_details") or reply.body.get("payment_message")
        if isinstance(reason, dict):
            reason = reason.get("failure_reason")
        return Outcome(False, reference=reference, error=str(reason or f"the charge is {status}"))

    def refund(self, request: RefundRequest) -> Outcome:
        if request.charge_reference.startswith(ORDER):
            return self._refund_order(request, request.charge_reference.removeprefix(ORDER))
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

    def _refund_order(self, request: RefundRequest, order_id: str) -> Outcome:
        """A refund of a payment made on a link, through the orders API."""
        refund_id = cashfree_id(request.idempotency_key)
        body = {
            "refund_amount": _major(request.amount, request.currency),
            "refund_id": refund_id,
            "refund_note": f"Meterline {request.idempotency_key}",
        }
        reply = self._create(
            f"/orders/{order_id}/refunds",
            body,
            request.idempotency_key,
            existing=f"/orders/{order_id}/refunds/{refund_id}",
        )
        if not reply.ok:
            return Outcome(False, error=_error(reply))
        status = reply.body.get("refund_status")
        reference = _str(reply.body.get("cf_refund_id")) or refund_id
        if status in REFUND_ACCEPTED:
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=f"the refund is {status}")

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        customer = self._link_customer(request)
        link_id = cashfree_id(request.idempotency_key)
        body: dict[str, Any] = {
            "link_id": link_id,
            "link_amount": _major(request.amount, request.currency),
            "link_currency": request.currency.upper(),
            "link_purpose": f"Invoice {request.invoice_number or request.invoice_id}",
            "customer_details": customer,
            "link_partial_payments": False,
            "link_expiry_time": request.expires_at.astimezone(IST).isoformat(timespec="seconds"),
            # We hand the URL to the caller; Cashfree sends nothing to the payer.
            "link_notify": {"send_sms": False, "send_email": False},
            "link_notes": {
                "meterline_key": request.idempotency_key,
                "meterline_invoice_id": request.invoice_id,
                "meterline_tenant_id": request.tenant_id,
            },
        }
        if request.success_url:
            body["link_meta"] = {"return_url": request.success_url}
        reply = self._create("/links", body, request.idempotency_key, existing=f"/links/{link_id}")
        if not reply.ok or not reply.body.get("link_url"):
            raise UpstreamFailed(
                f"Cashfree refused the payment link: {_error(reply)}",
                code="payment_link_refused",
            )
        expiry = _time(reply.body.get("link_expiry_time"))
        return PaymentLink(
            url=str(reply.body["link_url"]),
            reference=str(reply.body.get("link_id") or link_id),
            expires_at=expiry or request.expires_at,
        )

    def _link_customer(self, request: LinkRequest) -> dict[str, str]:
        """`customer_details` for a link: Cashfree requires a phone, which only the
        customer's subscription (their `paymentProviderCustomerId`) has."""
        subscription = request.customer_reference
        if not subscription or "/" in subscription:
            raise InvalidInput(
                "a Cashfree payment link needs the payer's phone number, which Meterline "
                "reads from the customer's Cashfree subscription: set the customer's "
                "paymentProviderCustomerId to their subscription_id",
                code="payer_phone_required",
            )
        found = self._http.get(f"/subscriptions/{subscription}")
        if not found.ok:
            raise UpstreamFailed(
                f"Cashfree could not give subscription {subscription}: {_error(found)}",
                code="payment_link_refused",
            )
        known = _obj(found.body.get("customer_details"))
        phone = _str(known.get("customer_phone"))
        if phone is None:
            raise InvalidInput(
                f"Cashfree subscription {subscription} has no customer_phone; a payment "
                "link needs one",
                code="payer_phone_required",
            )
        customer = {"customer_phone": phone}
        email = request.customer_email or _str(known.get("customer_email"))
        name = request.customer_name or _str(known.get("customer_name"))
        if email:
            customer["customer_email"] = email
        if name:
            customer["customer_name"] = name
        return customer

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
) -> list[WebhookResult]:
    """What a Cashfree webhook says about a charge, link payment or refund of ours, once
    its signature checks out and its timestamp is within 5 minutes of `now`;
    `WebhookRejected` otherwise. Verify the bytes as received, before parsing. A type we
    do not act on (a subscription's status, a mandate's authorization) gives nothing."""
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
    result = _result(kind, data)
    return [result] if result is not None else []


def _result(kind: str, data: dict[str, Any]) -> WebhookResult | None:
    """Cashfree signs no event id: ours is the type, the object's id and its status, so
    a redelivery repeats it and each change of status is a new one."""
    if kind in SUBSCRIPTION_PAYMENT_EVENTS:
        payment = _obj(data.get("payment")) or data
        subscription, payment_id = payment.get("subscription_id"), payment.get("payment_id")
        if not subscription or not payment_id:
            return None
        succeeded, final = SUBSCRIPTION_PAYMENT_EVENTS[kind]
        if succeeded and payment.get("payment_status") != "SUCCESS":
            # A "success" event whose payment says otherwise: not an ending to act on.
            succeeded = final = False
        unique = payment.get("cf_payment_id") or payment_id
        return WebhookResult(
            f"{subscription}/{payment_id}", succeeded, f"{kind}:{unique}", final=final
        )
    if kind in REFUND_EVENTS:
        refund = _obj(data.get("refund")) or data
        reference = _str(refund.get("cf_refund_id")) or _str(refund.get("refund_id"))
        if reference is None:
            return None
        status = str(refund.get("refund_status") or "")
        return WebhookResult(
            reference,
            status == "SUCCESS",
            f"{kind}:{reference}:{status}",
            kind="refund",
            final=status in REFUND_FINAL,
        )
    if kind == "PAYMENT_LINK_EVENT":
        return _link_result(kind, data)
    if kind in ORDER_PAYMENT_EVENTS:
        order, payment = _obj(data.get("order")), _obj(data.get("payment"))
        if not order.get("order_id"):
            return None
        succeeded, final = ORDER_PAYMENT_EVENTS[kind]
        succeeded = succeeded and payment.get("payment_status") == "SUCCESS"
        unique = payment.get("cf_payment_id") or order["order_id"]
        return WebhookResult(
            f"{ORDER}{order['order_id']}", succeeded, f"{kind}:{unique}", final=final
        )
    return None


def _link_result(kind: str, data: dict[str, Any]) -> WebhookResult | None:
    link_id, status = _str(data.get("link_id")), str(data.get("link_status") or "")
    if link_id is None:
        return None
    ours = _str(_obj(data.get("link_notes")).get("meterline_key"))
    order = _obj(data.get("order"))
    event_id = f"{kind}:{link_id}:{status}:{order.get('transaction_id') or ''}"
    if status == "PAID" and order.get("order_id"):
        paid = order.get("transaction_status") == "SUCCESS"
        return WebhookResult(f"{ORDER}{order['order_id']}", paid, event_id, ours=ours)
    if status in ("EXPIRED", "CANCELLED"):
        return WebhookResult(link_id, False, event_id, ours=ours)
    # PARTIALLY_PAID (we never allow it), ACTIVE: nothing settled.
    return WebhookResult(link_id, False, event_id, final=False, ours=ours)


# -- the wire -------------------------------------------------------------------------------


def _major(amount: Decimal, currency: str) -> Decimal:
    to_minor(amount, currency)  # refuses an amount finer than the minor unit
    return amount.quantize(quantum(currency.upper()))


def _time(value: Any) -> datetime | None:
    """A Cashfree time; one without an offset is India's (as its examples are)."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=IST)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _error(reply: http.Reply) -> str:
    # {"message": "…", "code": "subscription_not_active", "type": "invalid_request_error"}
    message = str(reply.body.get("message") or f"HTTP {reply.status}")
    code = reply.body.get("code")
    return f"{message} ({code})" if code else message
