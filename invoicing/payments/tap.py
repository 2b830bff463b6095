"""Tap Payments adapter (API v2): merchant-initiated charges of a saved card, refunds,
Tap's hosted payment page, and the check of Tap's `hashstring` webhook header.

    POST {base}/v2/tokens     {saved_card: {card_id, customer_id}}   -> a one-use token
    POST {base}/v2/charges    amount, currency, customer_initiated: false,
                              threeDSecure: false, save_card: false,
                              payment_agreement {id}, customer {id}, source {id: token},
                              reference {transaction, order, idempotent}, metadata
    POST {base}/v2/charges    the hosted page: customer_initiated: true, source
                              {id: "src_all"}, customer {first_name, last_name, email}
                              (or {id}), redirect {url}, post {url}?, transaction
                              {expiry {period, type: MINUTE}}, the same reference and
                              metadata -> status INITIATED and `transaction.url`
    POST {base}/v2/refunds    charge_id, amount, currency, reason,
                              reference {merchant, idempotent}, metadata
    Authorization: Bearer <secret key>

Tap charges a saved card only through a fresh token made from the saved card's id and
its customer's id, and without 3-D Secure only under the payment agreement the
customer accepted when the card was saved. The customer's `paymentProviderCustomerId`
is therefore `<customer id>/<card id>/<payment agreement id>` (cus_…/card_…/
payment_agreement_…).

Tap has no idempotency header: `reference.idempotent` is its idempotency key, and a
request repeating one within 24 hours is answered with the first response, creating
nothing. It carries our idempotency key, so a retry after a timeout or a 5xx (and a
second pass after a crash, under a new token) never charges twice; a hosted page asked
for twice under one key is the same page. `reference.transaction` carries our key too:
Tap echoes it in every post about the charge, which is how a payment made on a hosted
page finds its invoice (`WebhookResult.ours`).

Amounts are in the MAJOR unit, as exact JSON numbers at the currency's precision
(10.500 KWD, 12.34 SAR). `status: CAPTURED` is paid; every other status (DECLINED,
FAILED, RESTRICTED, VOID, TIMEDOUT, UNKNOWN, INITIATED, ABANDONED …) is not, with
Tap's `response.message`.

A hosted page lives what Tap allows a charge to wait for its payer: 5 to 60 minutes
(`transaction.expiry`, 30 by default). We ask for the 60 (a link is asked for well
before its `expires_at`; the adapter reads no clock to tell how long before) and
answer the earlier of the request's `expires_at` and the end Tap gives
(`transaction.created` + `transaction.expiry`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

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
    lower_keys,
    to_minor,
)
from invoicing.tax.base import loads_exact
from rating.money import quantum

NAME = "tap"
DEFAULT_BASE_URL = "https://api.tap.company"
PAID = "CAPTURED"
REFUNDED = frozenset({"PENDING", "REFUNDED"})  # PENDING: accepted, the bank pays it later
HOSTED_SOURCE = "src_all"  # every payment method the merchant has, on Tap's page
# How long Tap lets a charge wait for its payer (`transaction.expiry`): 5 to 60 minutes.
EXPIRY_MINUTES = 60
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What a posted charge's `status` says (Tap's list in its Charges reference). A charge
# INITIATED or IN_PROGRESS waits for its payer (a Fawry charge waits days at the
# shop); Tap documents every other status but CAPTURED as a failed payment, UNKNOWN
# included. Any status not listed here is recorded and changes nothing.
CHARGE_FAILED = frozenset(
    {"ABANDONED", "CANCELLED", "FAILED", "DECLINED", "RESTRICTED", "VOID", "TIMEDOUT", "UNKNOWN"}
)
REFUND_FAILED = frozenset({"FAILED", "DECLINED", "CANCELLED"})  # PENDING: still on the way
# Per posted object: the status that moved the money, and the final failures.
STATUSES: dict[str, tuple[str, frozenset[str]]] = {
    "charge": (PAID, CHARGE_FAILED),
    "refund": ("REFUNDED", REFUND_FAILED),
}


class TapConfig(ProviderConfig):
    secret_key: SecretStr = Field(
        min_length=1,
        description="a Tap secret API key (sk_live_… / sk_test_…); it also signs webhooks",
    )
    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="where Tap posts a hosted page's result (sent as the charge's post.url)",
    )


class TapGateway:
    name = NAME

    def __init__(
        self,
        config: TapConfig,
        *,
        timeout: float = 30.0,
        retry: http.RetryPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._config = config
        headers = {"Authorization": f"Bearer {config.secret_key.get_secret_value()}"}
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
        if len(parts) != 3 or not all(parts):
            return Outcome(
                False,
                error="the Tap customer id must be <customer id>/<card id>/<payment agreement id>",
            )
        customer, card, agreement = parts
        amount = _major(request.amount, request.currency)
        token = self._http.post(
            "/v2/tokens",
            json={"saved_card": {"card_id": card, "customer_id": customer}},
            idempotency_key=None,  # a token moves no money; an unused one expires
        )
        token_id = token.body.get("id")
        if not token.ok or not isinstance(token_id, str) or not token_id:
            return Outcome(False, error=_error(token))
        body = {
            "amount": amount,
            "currency": request.currency.upper(),
            "customer_initiated": False,
            "threeDSecure": False,
            "save_card": False,
            "payment_agreement": {"id": agreement},
            "customer": {"id": customer},
            "source": {"id": token_id},
            "description": f"Invoice {request.invoice_number or request.invoice_id}",
            "reference": {
                "transaction": request.idempotency_key,
                "order": request.invoice_number or request.invoice_id,
                "idempotent": request.idempotency_key,
            },
            "metadata": {
                "meterline_invoice_id": request.invoice_id,
                "meterline_tenant_id": request.tenant_id,
            },
        }
        reply = self._http.post("/v2/charges", json=body, idempotency_key=None)
        reference = _str(reply.body.get("id"))
        if not reply.ok:
            return Outcome(False, reference=reference, error=_error(reply))
        status = reply.body.get("status")
        if status == PAID:
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=_declined(reply.body, status))

    def refund(self, request: RefundRequest) -> Outcome:
        body = {
            "charge_id": request.charge_reference,
            "amount": _major(request.amount, request.currency),
            "currency": request.currency.upper(),
            "reason": "requested_by_customer",
            "reference": {
                "merchant": request.idempotency_key,
                "idempotent": request.idempotency_key,
            },
            "metadata": {"meterline_refund": request.idempotency_key},
        }
        reply = self._http.post("/v2/refunds", json=body, idempotency_key=None)
        reference = _str(reply.body.get("id"))
        if not reply.ok:
            return Outcome(False, reference=reference, error=_error(reply))
        status = reply.body.get("status")
        if status in REFUNDED:
            return Outcome(True, reference=reference)
        return Outcome(False, reference=reference, error=_declined(reply.body, status))

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        """Tap's hosted page: a customer-initiated charge on `src_all`, INITIATED, whose
        `transaction.url` the payer opens; its `chg_…` id is the link's reference (and
        what a refund of the payment names)."""
        redirect = request.success_url or request.cancel_url
        if not redirect:
            raise InvalidInput(
                "Tap's hosted page needs successUrl (or cancelUrl): Tap sends the payer "
                "back there, paid or not"
            )
        body: dict[str, Any] = {
            "amount": _major(request.amount, request.currency),
            "currency": request.currency.upper(),
            "customer_initiated": True,
            "threeDSecure": True,
            "save_card": False,
            "description": f"Invoice {request.invoice_number or request.invoice_id}",
            "reference": {
                "transaction": request.idempotency_key,
                "order": request.invoice_number or request.invoice_id,
                "idempotent": request.idempotency_key,
            },
            "metadata": {
                "meterline_invoice_id": request.invoice_id,
                "meterline_tenant_id": request.tenant_id,
            },
            "customer": _customer(request),
            "source": {"id": HOSTED_SOURCE},
            "redirect": {"url": redirect},
            "transaction": {"expiry": {"period": EXPIRY_MINUTES, "type": "MINUTE"}},
        }
        if self._config.webhook_url:
            body["post"] = {"url": self._config.webhook_url}
        reply = self._http.post("/v2/charges", json=body, idempotency_key=None)
        if not reply.ok:
            raise UpstreamFailed(
                f"tap: hosted charge refused: {_error(reply)}", code="payment_link_refused"
            )
        charge_id = _str(reply.body.get("id"))
        transaction = _obj(reply.body.get("transaction"))
        url = _str(transaction.get("url"))
        if not charge_id or not url:
            status = reply.body.get("status")
            raise UpstreamFailed(
                f"tap: no payment page: {_declined(reply.body, status)}",
                code="payment_link_refused",
            )
        ends = _expiry(transaction)
        return PaymentLink(
            url=url,
            reference=charge_id,
            expires_at=min(ends, request.expires_at) if ends else request.expires_at,
        )


# -- webhooks -------------------------------------------------------------------------------


def webhook_hashstring(event: Mapping[str, Any], secret_key: str) -> str:
    """Tap's `hashstring` of a posted charge, authorize or refund: hex HMAC-SHA256, keyed
    with the secret API key, over `x_id<id>x_amount<amount>x_currency<currency>`
    `x_gateway_reference<reference.gateway>x_payment_reference<reference.payment>`
    `x_status<status>x_created<created>`, the amount at the currency's decimals
    (1.0 SAR -> `1.00`, KWD -> `1.000`) and `created` the transaction's creation time
    (`transaction.created`; a refund's own `created`)."""
    currency = str(event.get("currency") or "")
    amount = event.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal | str):
        raise WebhookRejected("the Tap event has no amount")
    try:
        shown = format(Decimal(amount).quantize(quantum(currency.upper())), "f")
    except ArithmeticError:
        raise WebhookRejected(f"the Tap event's amount {amount!r} is not a number") from None
    reference = event.get("reference") or {}
    transaction = event.get("transaction") or {}
    created = transaction.get("created") if isinstance(transaction, dict) else None
    if created is None:
        created = event.get("created")
    payload = (
        f"x_id{_text(event.get('id'))}x_amount{shown}x_currency{currency}"
        f"x_gateway_reference{_text(reference.get('gateway'))}"
        f"x_payment_reference{_text(reference.get('payment'))}"
        f"x_status{_text(event.get('status'))}x_created{_text(created)}"
    )
    return hmac.new(secret_key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify_webhook(
    config: TapConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[WebhookResult]:
    """What a Tap post says about a charge or a refund, once its `hashstring` header
    checks out; `WebhookRejected` otherwise. Tap posts one object per request; an
    authorize (we never make one) gives no result. Tap signs no delivery time, so `now`
    bounds nothing here (a redelivery carries the same id and status: the event id)."""
    del now  # same signature as every provider; Tap gives no timestamp to check
    received = lower_keys(headers).get("hashstring")
    if not received:
        raise WebhookRejected("the Tap post has no hashstring header")
    try:
        event = loads_exact(body)
    except ValueError:
        raise WebhookRejected("the Tap post is not JSON") from None
    if not isinstance(event, dict) or not event.get("id"):
        raise WebhookRejected("the Tap post is not a charge, authorize or refund")
    expected = webhook_hashstring(event, config.secret_key.get_secret_value())
    if not hmac.compare_digest(expected, received.strip().lower()):
        raise WebhookRejected("the Tap hashstring does not match")
    kind = event.get("object") or "charge"
    if kind not in STATUSES:
        return []
    done, failed = STATUSES[kind]
    reference, status = str(event["id"]), str(event.get("status") or "")
    # Our key as the request carried it: a charge's reference.transaction, a refund's
    # reference.merchant.
    ours = _obj(event.get("reference")).get("transaction" if kind == "charge" else "merchant")
    return [
        WebhookResult(
            reference,
            succeeded=status == done,
            event_id=f"{reference}:{status}",
            kind="charge" if kind == "charge" else "refund",
            # A status on the way (INITIATED, PENDING …) or one Tap adds later: recorded,
            # and the next post tells how it ended.
            final=status == done or status in failed,
            ours=str(ours) if ours else None,
        )
    ]


# -- the wire -------------------------------------------------------------------------------


def _major(amount: Decimal, currency: str) -> Decimal:
    to_minor(amount, currency)  # refuses an amount finer than the minor unit
    return amount.quantize(quantum(currency.upper()))


def _customer(request: LinkRequest) -> dict[str, Any]:
    """Who pays on the hosted page: the Tap customer when known (`cus_…`, the first part
    of the customer's id), otherwise a new one, for which Tap wants a first name and an
    email (or a phone, which we do not have)."""
    known = (request.customer_reference or "").split("/")[0]
    names = (request.customer_name or "").split(maxsplit=1)
    if known.startswith("cus_"):
        return {"id": known}
    if not names or not request.customer_email:
        raise InvalidInput(
            "Tap's hosted page needs the customer's name and email (Tap creates its "
            "customer from them): set the customer's name and email"
        )
    customer: dict[str, Any] = {"first_name": names[0], "email": request.customer_email}
    if len(names) > 1:
        customer["last_name"] = names[1]
    return customer


def _expiry(transaction: Mapping[str, Any]) -> datetime | None:
    """When Tap stops taking the payment: `transaction.created` (epoch milliseconds) plus
    `transaction.expiry` ({period, type: MINUTE}); None when Tap did not say."""
    created, expiry = transaction.get("created"), _obj(transaction.get("expiry"))
    period, unit = expiry.get("period"), str(expiry.get("type") or "").upper()
    units = {"MINUTE": timedelta(minutes=1), "HOUR": timedelta(hours=1)}
    if not str(created or "").isdigit() or not isinstance(period, int) or unit not in units:
        return None
    return EPOCH + timedelta(milliseconds=int(str(created))) + period * units[unit]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _declined(body: Mapping[str, Any], status: Any) -> str:
    response = body.get("response") or {}
    message = response.get("message") if isinstance(response, dict) else None
    code = response.get("code") if isinstance(response, dict) else None
    if message:
        return f"{message} ({code})" if code else str(message)
    return f"the charge is {status}"


def _error(reply: http.Reply) -> str:
    # {"errors": [{"code": "1216", "description": "Agreement id is missing"}]}
    errors = reply.body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        description = first.get("description") or first.get("message") or "error"
        return f"{description} ({first['code']})" if first.get("code") else str(description)
    return str(reply.body.get("message") or f"HTTP {reply.status}")
