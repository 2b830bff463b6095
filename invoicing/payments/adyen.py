"""Adyen adapter: Checkout API v71 payments with a stored card, refunds, and the HMAC
check of Adyen's standard notifications.

    POST {base}/v71/payments                      a merchant-initiated card-on-file charge
    POST {base}/v71/payments/{pspReference}/refunds
    X-API-Key: <API key>;  Idempotency-Key on every POST

A charge sends `amount` {value in the currency's minor unit, currency}, our `reference`
(the invoice number), the `shopperReference` and `paymentMethod.storedPaymentMethodId`
of the customer's stored card, `shopperInteraction: ContAuth` and
`recurringProcessingModel: UnscheduledCardOnFile` (we charge when an invoice is due,
not on a fixed schedule). The customer's `paymentProviderCustomerId` is
`<shopperReference>/<storedPaymentMethodId>`, or just the shopper reference when the
tenant's config names one `storedPaymentMethodId` for all its shoppers.

`resultCode: Authorised` is paid (the merchant account captures automatically, Adyen's
default); `Refused` is a decline with Adyen's refusal reason; any other code (Pending,
Received, Error, a shopper redirect) is not paid. Timeouts, 429 and 5xx are retried
with the same idempotency key, which Adyen answers with the first result.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
from pydantic import Field, SecretStr

from core.errors import InvalidInput
from invoicing.payments import http
from invoicing.payments.base import (
    ChargeRequest,
    Outcome,
    ProviderConfig,
    RefundRequest,
    to_minor,
)

NAME = "adyen"
TEST_BASE_URL = "https://checkout-test.adyen.com"
API_VERSION = "v71"
MAX_IDEMPOTENCY_KEY = 64  # Adyen's limit on the Idempotency-Key header


class AdyenConfig(ProviderConfig):
    api_key: SecretStr = Field(description="a Checkout API key (X-API-Key)")
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
        default=None, description="hex HMAC key of the notification webhook"
    )

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
        if not stored:
            return Outcome(False, error="no stored Adyen payment method for the shopper")
        body = {
            "merchantAccount": self._config.merchant_account,
            "amount": _amount(request.amount, request.currency),
            "reference": request.invoice_number or request.invoice_id,
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


def _error(reply: http.Reply) -> str:
    # ServiceError: {"status", "errorCode", "message", "errorType", "pspReference"}
    message = reply.body.get("message") or f"HTTP {reply.status}"
    code = reply.body.get("errorCode")
    return f"{message} ({code})" if code else str(message)
