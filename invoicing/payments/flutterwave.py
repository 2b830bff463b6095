"""Flutterwave adapter (API v3): tokenized card charges, refunds, Flutterwave Standard
payment pages, and the check of Flutterwave's webhooks.

    POST {base}/v3/tokenized-charges      token, email, currency, amount, tx_ref, narration
    GET  {base}/v3/transactions/verify_by_reference?tx_ref=…
    GET  {base}/v3/transactions/{id}/verify   a webhook's success, confirmed
    POST {base}/v3/transactions/{id}/refund   amount
    POST {base}/v3/payments               a Flutterwave Standard (hosted) payment page
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

A Standard page is `{tx_ref: <link key>, amount, currency, redirect_url, customer:
{email, name}, customizations: {title}, meta}`, answered `{"data": {"link": …}}`. As for
charges, `tx_ref` is the idempotency: a retry sends the same one, and Flutterwave takes
one payment per `tx_ref`, whichever page it was made on. Flutterwave names no id of the
page, so the link's reference is the `tx_ref`. It needs the customer's email and a
`redirect_url` (our success URL, else the cancel URL: Flutterwave sends the payer back
to it with `status=successful|cancelled`); without them nothing is sent. The page has
no expiry date at Flutterwave (only `session_duration`, minutes from its creation, at
most 24 hours, which a clock-less adapter cannot compute), so the link's expiry is the
one we asked for: after it we stop handing the page out, but a payer who kept it open
can still pay on it, and that payment still reaches the invoice by its `tx_ref`.

Webhooks (`verify_webhook`): Flutterwave signs nothing; it sends the secret hash the
tenant set in its dashboard in the `verif-hash` header, compared in constant time
with the config's `secretHash` (none configured: every webhook is refused). Mapped:

    charge.completed   the transaction `data.id` (as charge() returns it, and as a
                       refund needs it), ours = `data.tx_ref`; `successful` succeeded,
                       `failed` / `cancelled` failed for good, any other status not final
    refund.completed   the refund `data.id` (as refund() returns it); `completed`
                       succeeded, `failed` failed, any other status not final
    anything else      no result (transfers, subscriptions …)

`event_id` is `<event>:<data.id>:<status>`, the same across Flutterwave's retries.

Flutterwave's guidance is to re-verify a transaction by API before giving value, and
we do: the hash proves only that the sender knows the secret and says nothing of the
body, so anyone who ever saw one delivery's headers could post any body. `verify_webhook`
stays a pure check; the gateway's `confirm` (`GET /v3/transactions/{id}/verify`) is asked
by the notification handler for every success before it is applied, and a transaction
Flutterwave does not show as `successful` with the same `tx_ref` is not applied.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
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
    PaymentUnavailable,
    ProviderConfig,
    RefundRequest,
    WebhookRejected,
    WebhookResult,
    lower_keys,
    to_minor,
)
from invoicing.tax.base import loads_exact
from rating.money import quantum

NAME = "flutterwave"
DEFAULT_BASE_URL = "https://api.flutterwave.com"


class FlutterwaveConfig(ProviderConfig):
    secret_key: SecretStr = Field(
        min_length=1, description="a Flutterwave v3 secret key, FLWSECK-…"
    )
    secret_hash: SecretStr | None = Field(
        min_length=1, default=None, description="the webhook's secret hash (verif-hash header)"
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

    def confirm(self, result: WebhookResult) -> WebhookResult:
        """A charge result of a webhook, final, as Flutterwave's API shows the
        transaction: its status, amount and currency from there, not from the body.
        PaymentUnavailable when it cannot be asked (the post is answered 503 and
        Flutterwave delivers it again); not final when Flutterwave has no such
        transaction, or not yet an ending."""
        if result.kind != "charge" or not result.final:
            return result
        if not result.reference.isdigit():
            return replace(result, succeeded=False, final=False)
        reply = self._http.get(f"/v3/transactions/{result.reference}/verify")
        if not reply.ok and reply.status not in (400, 404):  # 400: "No transaction was found"
            raise PaymentUnavailable(f"flutterwave: verify: {_message(reply)}")
        return _confirmed(result, _data(reply))

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

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        redirect = request.success_url or request.cancel_url
        if not request.customer_email:
            raise InvalidInput(
                "a Flutterwave payment page needs the customer's email; set the customer's email",
                code="customer_email_required",
            )
        if not redirect:
            raise InvalidInput(
                "a Flutterwave payment page needs a successUrl to send the payer back to",
                code="redirect_url_required",
            )
        customer = {"email": request.customer_email}
        if request.customer_name:
            customer["name"] = request.customer_name
        body = {
            "tx_ref": request.idempotency_key,
            "amount": _major(request.amount, request.currency),
            "currency": request.currency.upper(),
            "redirect_url": redirect,
            "customer": customer,
            "customizations": {"title": f"Invoice {request.invoice_number or request.invoice_id}"},
            "meta": {
                "meterline_invoice_id": request.invoice_id,
                "meterline_tenant_id": request.tenant_id,
            },
        }
        reply = self._http.post("/v3/payments", json=body, idempotency_key=None)
        page = _data(reply)
        url = page.get("link") if page else None
        if not isinstance(url, str) or not url:
            raise UpstreamFailed(
                f"Flutterwave refused the payment page: {_message(reply)}",
                code="payment_link_refused",
            )
        return PaymentLink(
            url=url, reference=request.idempotency_key, expires_at=request.expires_at
        )


# Statuses of a transaction (or refund) that are its end, and whether money moved.
_CHARGE_ENDS = {"successful": True, "failed": False, "cancelled": False}
_REFUND_ENDS = {"completed": True, "failed": False}


def _confirmed(result: WebhookResult, transaction: dict[str, Any] | None) -> WebhookResult:
    """`result` as Flutterwave's own record of the transaction says it ended: the
    record's status, amount and currency; not final (no effect) when there is no record
    of the same id and tx_ref, or it has not ended."""
    tx_ref = str(transaction.get("tx_ref") or "") if transaction else ""
    if (
        transaction is None
        or str(transaction.get("id")) != result.reference
        or (result.ours is not None and tx_ref != result.ours)
    ):
        return replace(result, succeeded=False, final=False)
    status = transaction.get("status")
    if status not in ("successful", "failed", "cancelled"):
        return replace(result, succeeded=False, final=False)
    amount = transaction.get("amount")
    try:
        paid = Decimal(str(amount)) if isinstance(amount, int | Decimal | str) else None
    except ArithmeticError:
        return replace(result, succeeded=False, final=False)
    currency = transaction.get("currency")
    return replace(
        result,
        succeeded=status == "successful",
        ours=tx_ref or result.ours,
        amount=paid,
        currency=str(currency) if currency else None,
    )


def verify_webhook(
    config: FlutterwaveConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[WebhookResult]:
    """What a Flutterwave webhook says, once its `verif-hash` header is the tenant's
    secret hash; WebhookRejected otherwise (Flutterwave signs nothing else, and no
    delivery time: redeliveries are caught by the event id)."""
    if config.secret_hash is None or not config.secret_hash.get_secret_value():
        raise WebhookRejected("no secretHash is configured for this Flutterwave connection")
    received = lower_keys(headers).get("verif-hash")
    if not received:
        raise WebhookRejected("the Flutterwave webhook has no verif-hash header")
    expected = config.secret_hash.get_secret_value()
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise WebhookRejected("the Flutterwave verif-hash is not the configured secret hash")
    try:
        event = loads_exact(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("the Flutterwave webhook is not JSON") from None
    data = event.get("data") if isinstance(event, dict) else None
    kind = event.get("event") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not isinstance(kind, str):
        raise WebhookRejected("the Flutterwave webhook has no event and data")
    found = data.get("id")
    status = str(data.get("status") or "")
    if isinstance(found, bool) or not isinstance(found, int | str) or not str(found):
        return []  # an event we do not act on may name no transaction
    reference, event_id = str(found), f"{kind}:{found}:{status}"
    if kind == "charge.completed":
        tx_ref = data.get("tx_ref")
        ours = tx_ref if isinstance(tx_ref, str) and tx_ref else None
        ended = _CHARGE_ENDS.get(status)
        return [WebhookResult(reference, bool(ended), event_id, final=ended is not None, ours=ours)]
    if kind == "refund.completed":
        ended = _REFUND_ENDS.get(status)
        return [
            WebhookResult(reference, bool(ended), event_id, kind="refund", final=ended is not None)
        ]
    return []


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
