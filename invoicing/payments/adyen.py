"""Adyen adapter: Checkout API v71 payments with a stored card, refunds, Pay by Link
pages, and Adyen's HMAC-signed standard notifications.

    POST {base}/v71/payments                      a merchant-initiated card-on-file charge
    POST {base}/v71/payments/{pspReference}/refunds
    POST {base}/v71/paymentLinks                  a hosted Pay by Link page
    X-API-Key: <API key>;  Idempotency-Key on every POST

A charge sends `amount` {value in the currency's minor unit, currency}, our idempotency
key as `reference` (Adyen's unique reference of one payment, echoed back in every
notification as `merchantReference`), the invoice number as `merchantOrderReference`
(Adyen's link between the attempts at one order: every dunning step of an invoice),
the `shopperReference` and `paymentMethod.storedPaymentMethodId` of the customer's
stored card, `shopperInteraction: ContAuth` and `recurringProcessingModel:
UnscheduledCardOnFile` (we charge when an invoice is due, not on a fixed schedule).
The customer's `paymentProviderCustomerId` is `<shopperReference>/<storedPaymentMethodId>`,
or just the shopper reference when the tenant's config names one
`storedPaymentMethodId` for all its shoppers.

`resultCode: Authorised` is paid (the merchant account captures automatically, Adyen's
default); `Received` and `Pending` are accepted, their result comes by notification
(`Outcome.pending`); `Refused` is a decline with Adyen's refusal reason; any other code
(Error, Cancelled, a shopper redirect) is not paid. Timeouts, 429 and 5xx are retried
with the same idempotency key, which Adyen answers with the first result.

A Pay by Link page is created with our link key as `reference` and as Idempotency-Key,
`expiresAt` (ISO 8601, UTC) and `returnUrl`; Adyen answers `{id, url, expiresAt,
status: active}`. The payment made on it is notified as an AUTHORISATION whose
`merchantReference` is that reference (and `additionalData.paymentLinkId` the link).

A checkout page (a customer saves a card, pays nothing) is a Pay by Link page of amount
0 (a zero-value authorisation) with `storePaymentMethodMode: enabled`,
`recurringProcessingModel: UnscheduledCardOnFile` and the customer's shopperReference
(ours, `cus_…`, when the customer has no Adyen id yet; it becomes its id). The card
stored is told by a RECURRING_CONTRACT notification; the zero-value AUTHORISATION that
comes with it pays no invoice.

Notifications (`verify_webhook`) are a batch, `{"live", "notificationItems":
[{"NotificationRequestItem": {…}}]}`; each item carries its own HMAC in
`additionalData.hmacSignature` over `pspReference:originalReference:
merchantAccountCode:merchantReference:value:currency:eventCode:success`. A post is
accepted only when EVERY item is signed with the tenant's key: one forged item refuses
the whole post (Adyen redelivers the genuine ones). Only signed fields are read, so
nothing unsigned (`reason`, `additionalData.*`) can change what an item means. Adyen
signs no delivery time: a replay is caught by the event id
(`pspReference:eventCode:success`) the notification store deduplicates on.

    AUTHORISATION                 charge `pspReference`, succeeded = success
    CAPTURE                       charge `originalReference`, succeeded = success
    CAPTURE_FAILED, CANCELLATION, TECHNICAL_CANCEL, OFFER_CLOSED (success=true)
                                  charge failed for good (its original payment)
    RECURRING_CONTRACT (success=true)  a card stored: `pspReference` is its
                                  storedPaymentMethodId, `merchantReference` our key
    REFUND                        refund `pspReference` (as refund() returned it)
    REFUND_FAILED, REFUNDED_REVERSED  that refund failed
    anything else (chargebacks, reports, …)   no result
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator

from core.errors import InvalidInput, UpstreamFailed
from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    CheckoutLink,
    CheckoutRequest,
    LinkRequest,
    Outcome,
    PaymentLink,
    ProviderConfig,
    RefundRequest,
    WebhookRejected,
    WebhookResult,
    to_minor,
)
from invoicing.tax.base import loads_exact

NAME = "adyen"
TEST_BASE_URL = "https://checkout-test.adyen.com"
API_VERSION = "v71"
MAX_IDEMPOTENCY_KEY = 64  # Adyen's limit on the Idempotency-Key header
# Adyen's answers to a payment whose result it notifies later (a SEPA debit, a bank
# transfer): nothing is charged again until the notification says how it ended.
PENDING_RESULTS = ("Received", "Pending")


class AdyenConfig(ProviderConfig):
    api_key: SecretStr = Field(min_length=1, description="a Checkout API key (X-API-Key)")
    merchant_account: str = Field(min_length=1)
    live_url_prefix: str | None = Field(
        default=None,
        description="the live endpoint prefix of the Customer Area; unset and no baseUrl "
        "means Adyen's test environment",
    )
    stored_payment_method_id: str | None = Field(
        default=None, description="the stored card of shoppers whose customer id names none"
    )
    hmac_key: SecretStr | None = Field(
        min_length=1, default=None, description="hex HMAC key of the notification webhook"
    )

    @field_validator("hmac_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Adyen's key is hexadecimal; a mistyped one would refuse every notification.
        if value is not None and not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", value.get_secret_value()):
            raise ValueError("must be the hexadecimal HMAC key of the Adyen webhook")
        return value

    def url(self) -> str:
        if self.base_url:
            return self.base_url
        if self.live_url_prefix:
            return f"https://{self.live_url_prefix}-checkout-live.adyenpayments.com/checkout"
        return TEST_BASE_URL


class AdyenGateway:
    name = NAME

    def __init__(
        self,
        config: AdyenConfig,
        *,
        timeout: float = 30.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._config = config
        headers = {"X-API-Key": config.api_key.get_secret_value()}
        self._http = http.ProviderHttp(
            NAME, http.client(config.url(), headers, timeout=timeout, given=client), retry=retry
        )

    def close(self) -> None:
        self._http.close()

    def charge(self, request: ChargeRequest) -> Outcome:
        shopper, _, stored = request.customer_reference.rpartition("/")
        if not shopper:  # no "/": the whole reference is the shopper's
            shopper, stored = stored, self._config.stored_payment_method_id or ""
        if request.payment_method:  # saved on a checkout page: the latest the shopper chose
            stored = request.payment_method
        if not stored:
            return Outcome(False, error="no stored Adyen payment method for the shopper")
        body = {
            "merchantAccount": self._config.merchant_account,
            "amount": _amount(request.amount, request.currency),
            "reference": request.idempotency_key,
            "merchantOrderReference": request.invoice_number or request.invoice_id,
            "shopperReference": shopper,
            "paymentMethod": {"type": "scheme", "storedPaymentMethodId": stored},
            "shopperInteraction": "ContAuth",
            "recurringProcessingModel": "UnscheduledCardOnFile",
            "metadata": {
                "meterlineInvoiceId": request.invoice_id,
                "meterlineTenantId": request.tenant_id,
            },
        }
        reply = self._http.post(
            f"/{API_VERSION}/payments", json=body, idempotency_key=_key(request.idempotency_key)
        )
        reference = _str(reply.body.get("pspReference"))
        if not reply.ok:
            return Outcome(False, reference=reference, error=_error(reply))
        result = reply.body.get("resultCode")
        if result == "Authorised":
            return Outcome(True, reference=reference)
        if result == "Refused":
            reason = reply.body.get("refusalReason") or "Refused"
            code = reply.body.get("refusalReasonCode")
            return Outcome(
                False, reference=reference, error=f"{reason} ({code})" if code else str(reason)
            )
        if result in PENDING_RESULTS and reference:
            return Outcome(False, reference=reference, pending=True)
        return Outcome(False, reference=reference, error=f"the payment is {result}")

    def refund(self, request: RefundRequest) -> Outcome:
        body = {
            "merchantAccount": self._config.merchant_account,
            "amount": _amount(request.amount, request.currency),
            "reference": request.idempotency_key,
        }
        reply = self._http.post(
            f"/{API_VERSION}/payments/{request.charge_reference}/refunds",
            json=body,
            idempotency_key=_key(request.idempotency_key),
        )
        reference = _str(reply.body.get("pspReference"))
        # `received`: Adyen accepted the refund; the REFUND notification confirms it later.
        if reply.ok and reply.body.get("status") == "received":
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=_error(reply))

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        body: dict[str, Any] = {
            "merchantAccount": self._config.merchant_account,
            "amount": _amount(request.amount, request.currency),
            "reference": request.idempotency_key,
            "description": f"Invoice {request.invoice_number or request.invoice_id}",
            "expiresAt": _iso(request.expires_at),
            "metadata": {
                "meterlineInvoiceId": request.invoice_id,
                "meterlineTenantId": request.tenant_id,
            },
        }
        return_url = request.success_url or request.cancel_url  # Adyen has one return URL
        if return_url:
            body["returnUrl"] = return_url
        shopper = _shopper(request.customer_reference)
        if shopper:
            body["shopperReference"] = shopper
        if request.customer_email:
            body["shopperEmail"] = request.customer_email
        reply = self._http.post(
            f"/{API_VERSION}/paymentLinks", json=body, idempotency_key=_key(request.idempotency_key)
        )
        url, link_id = reply.body.get("url"), reply.body.get("id")
        if not reply.ok or not isinstance(url, str) or not isinstance(link_id, str):
            raise UpstreamFailed(
                f"Adyen refused the payment link: {_error(reply)}", code="payment_link_refused"
            )
        expires = _parse_time(reply.body.get("expiresAt")) or request.expires_at
        return PaymentLink(url=url, reference=link_id, expires_at=expires)

    def checkout(self, request: CheckoutRequest) -> CheckoutLink:
        """A Pay by Link page for a zero-value authorisation that stores the card for the
        shopper (`storePaymentMethodMode: enabled`), for card-on-file charges later."""
        shopper = _shopper(request.customer_reference) or request.customer_id
        body: dict[str, Any] = {
            "merchantAccount": self._config.merchant_account,
            "amount": {"value": 0, "currency": request.currency.upper()},
            "reference": request.idempotency_key,
            "description": "Save a payment method",
            "expiresAt": _iso(request.expires_at),
            "shopperReference": shopper,
            "storePaymentMethodMode": "enabled",
            "recurringProcessingModel": "UnscheduledCardOnFile",
            "metadata": {
                "meterlineCustomerId": request.customer_id,
                "meterlineTenantId": request.tenant_id,
            },
        }
        return_url = request.success_url or request.cancel_url
        if return_url:
            body["returnUrl"] = return_url
        if request.customer_email:
            body["shopperEmail"] = request.customer_email
        reply = self._http.post(
            f"/{API_VERSION}/paymentLinks", json=body, idempotency_key=_key(request.idempotency_key)
        )
        url, link_id = reply.body.get("url"), reply.body.get("id")
        if not reply.ok or not isinstance(url, str) or not isinstance(link_id, str):
            raise UpstreamFailed(
                f"Adyen refused the payment link: {_error(reply)}", code="checkout_refused"
            )
        return CheckoutLink(
            url=url,
            reference=link_id,
            expires_at=_parse_time(reply.body.get("expiresAt")) or request.expires_at,
            customer_reference=shopper,
        )


def _shopper(reference: str | None) -> str | None:
    """The shopperReference in a customer's Adyen id (`<shopper>/<stored id>` or `<shopper>`)."""
    if not reference:
        return None
    return reference.rpartition("/")[0] or reference


# -- notifications ------------------------------------------------------------------------

# The fields of a NotificationRequestItem that Adyen signs, in this order.
_SIGNED = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)


def notification_signature(item: Mapping[str, Any], hmac_key: str) -> str:
    """Adyen's signature of one NotificationRequestItem: base64 of HMAC-SHA256, keyed
    with the hex-decoded HMAC key, over the signed fields joined by ':' (an absent
    field is empty: `psp::merchant:…`)."""
    try:
        key = binascii.unhexlify(hmac_key)
    except (binascii.Error, ValueError):
        raise InvalidInput("the Adyen HMAC key must be hexadecimal") from None
    amount = item.get("amount") or {}
    values = {**item, "value": amount.get("value"), "currency": amount.get("currency")}
    payload = ":".join("" if values.get(f) is None else str(values[f]) for f in _SIGNED)
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_notification(item: Mapping[str, Any], hmac_key: str) -> bool:
    """Whether `item` (a NotificationRequestItem) carries Adyen's signature made with
    `hmac_key` in `additionalData.hmacSignature`; a missing signature is a forgery."""
    received = (item.get("additionalData") or {}).get("hmacSignature")
    if not isinstance(received, str) or not received:
        return False
    expected = notification_signature(item, hmac_key)
    return hmac.compare_digest(expected.encode(), received.encode())


# What each event code we act on says, read from signed fields only: (kind, whose
# reference: the item's own `pspReference` or the payment's `originalReference`).
_CHARGE_OWN = ("AUTHORISATION",)
_CHARGE_ORIGINAL = ("CAPTURE",)
# Ended without money for good, when `success` is "true" (the event happened).
_CHARGE_ENDED = ("CAPTURE_FAILED", "CANCELLATION", "TECHNICAL_CANCEL", "OFFER_CLOSED")
_REFUND_FAILED = ("REFUND_FAILED", "REFUNDED_REVERSED")


def verify_webhook(
    config: AdyenConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[WebhookResult]:
    """What an Adyen notification post says, one result per item we act on;
    WebhookRejected unless every item carries Adyen's HMAC made with the config's key."""
    if config.hmac_key is None:
        raise WebhookRejected("no hmacKey is configured for this Adyen connection")
    key = config.hmac_key.get_secret_value()
    items = _items(body)
    for index, item in enumerate(items):
        try:
            genuine = verify_notification(item, key)
        except InvalidInput as exc:  # a key stored before keys were checked on connect
            raise WebhookRejected(exc.message) from None
        if not genuine:
            raise WebhookRejected(f"notificationItems[{index}]: the HMAC signature is not Adyen's")
    results = []
    for item in items:
        # A company-level webhook also carries the other merchant accounts' events.
        if item.get("merchantAccountCode") != config.merchant_account:
            continue
        result = _result(item)
        if result is not None:
            results.append(result)
    return results


def _items(body: bytes) -> list[Mapping[str, Any]]:
    try:
        post = loads_exact(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("the body is not JSON") from None
    wrapped = post.get("notificationItems") if isinstance(post, dict) else None
    if not isinstance(wrapped, list) or not wrapped:
        raise WebhookRejected("the body has no notificationItems")
    items: list[Mapping[str, Any]] = []
    for index, wrapper in enumerate(wrapped):
        item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
        if not isinstance(item, dict):
            raise WebhookRejected(f"notificationItems[{index}] is not a NotificationRequestItem")
        items.append(item)
    return items


def _result(item: Mapping[str, Any]) -> WebhookResult | None:
    code = str(item.get("eventCode") or "")
    success = item.get("success") == "true"
    own = _str(item.get("pspReference"))
    if own is None:
        return None
    # A modification (capture, cancel) names the payment it modifies; OFFER_CLOSED does not.
    original = _str(item.get("originalReference")) or own
    ours = _str(item.get("merchantReference"))
    event_id = f"{own}:{code}:{item.get('success')}"
    if code in _CHARGE_OWN:
        return WebhookResult(own, success, event_id, ours=ours)
    if code in _CHARGE_ORIGINAL:
        return WebhookResult(original, success, event_id, ours=ours)
    if code in _CHARGE_ENDED and success:
        return WebhookResult(original, False, event_id, ours=ours)
    if code == "RECURRING_CONTRACT" and success:
        # The stored card: this item's pspReference IS its storedPaymentMethodId
        # (recurringDetailReference), a signed field, unlike additionalData's copy.
        return WebhookResult(own, True, event_id, kind="method", ours=ours, method=own)
    if code == "REFUND":
        return WebhookResult(own, success, event_id, kind="refund", ours=ours)
    if code in _REFUND_FAILED and success:
        return WebhookResult(own, False, event_id, kind="refund", ours=ours)
    return None


# -- the wire -------------------------------------------------------------------------------


def _amount(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"value": to_minor(amount, currency), "currency": currency.upper()}


def _key(key: str) -> str:
    # Our keys (`<invoice id>/<purpose>`) fit; a longer one is hashed, still one per attempt.
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _iso(moment: datetime) -> str:
    # Adyen's format for expiresAt: ISO 8601 in UTC with the Z designator.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _error(reply: http.Reply) -> str:
    # ServiceError: {"status", "errorCode", "message", "errorType", "pspReference"}
    message = reply.body.get("message") or f"HTTP {reply.status}"
    code = reply.body.get("errorCode")
    return f"{message} ({code})" if code else str(message)
