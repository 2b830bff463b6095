"""GoCardless adapter: Direct Debit payments against a customer's mandate, refunds,
hosted payment pages (Billing Requests), and the check of GoCardless webhooks.

    POST {base}/payments     {"payments": {amount, currency, description, metadata,
                                           links: {mandate}}}
    GET  {base}/payments/{id}
    POST {base}/refunds      {"refunds": {amount, total_amount_confirmation, metadata,
                                          links: {payment}}}
    POST {base}/billing_requests       {"billing_requests": {payment_request: {amount,
                                        currency, description, metadata}, metadata}}
    GET  {base}/billing_requests/{id}
    POST {base}/billing_request_flows  {"billing_request_flows": {redirect_uri?,
                                        exit_uri?, prefilled_customer?,
                                        links: {billing_request}}}
    Authorization: Bearer <access token>;  GoCardless-Version: 2015-07-06;
    Idempotency-Key on every POST that creates money movements

A checkout page (a customer saves a mandate, pays nothing) is a Billing Request with a
`mandate_request` {currency, metadata} and a flow for it. The mandate it makes carries
the mandate_request's metadata, our key, so the `mandates` events (`active`;
`failed`, `cancelled`, `expired`) and the billing request's `fulfilled` (its
`links.mandate_request_mandate`) name the customer; the mandate id is then the
customer's saved method, charged as `links.mandate`.

Amounts are integers of the currency's minor unit. The customer's
`paymentProviderCustomerId` is the mandate id (MD…). Every payment we create carries
our idempotency key in `metadata.meterline_key`, and GoCardless hands a resource's
metadata back in its events (`resource_metadata`): how a webhook names our attempt.

GoCardless does not replay a repeated idempotency key: it answers 409
`idempotent_creation_conflict` with the id of what the first request created in
`links.conflicting_resource_id`, and we fetch that resource and go on with it. So a
retry after a lost answer, or a second attempt after a crash, never creates a second
payment (or billing request).

Direct Debit is slow: a created payment is `pending_submission` and is collected days
later. A payment GoCardless accepted but has not collected (pending_submission,
submitted) is `pending`: the attempt is `processing`, nothing is charged again, and
the payments webhook (`confirmed`, `paid_out`; `failed`, `cancelled`) tells how it
ended. One already `confirmed` or `paid_out` is paid. A payment GoCardless refused (an
inactive mandate, a currency the scheme does not take: 4xx) is a decline.

A hosted page is a Billing Request with a `payment_request` (an Instant Bank Payment:
GBP and EUR) and a Billing Request Flow for it, whose `authorisation_url` the payer
opens. The billing request is the idempotent thing (our key); a flow is only a door to
it, made anew on each call (GoCardless has no way to fetch one), and every flow of a
billing request pays that one request, which can be fulfilled once. The payment it
makes carries the payment_request's metadata, our key, so its payments events are
matched like a charge's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from core.errors import UpstreamFailed
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
    lower_keys,
    to_minor,
)
from invoicing.tax.base import loads_exact

NAME = "gocardless"
API_VERSION = "2015-07-06"
BASE_URLS = {
    "live": "https://api.gocardless.com",
    "sandbox": "https://api-sandbox.gocardless.com",
}
# Payments collected; and accepted for collection, the result to come by webhook
# (`pending_customer_approval` is neither).
COLLECTED = frozenset({"confirmed", "paid_out"})
ACCEPTED = frozenset({"pending_submission", "submitted"})
REFUND_FAILED = frozenset({"cancelled", "bounced"})

# What a payments / refunds event's `action` says: (succeeded, final). An action not
# named here (a surcharge, a resubmission request, a mandate's news) gives no result.
PAYMENT_ACTIONS: dict[str, tuple[bool, bool]] = {
    "confirmed": (True, True),  # collected; it can still be charged back
    "paid_out": (True, True),
    "failed": (False, True),  # unless GoCardless retries it (`will_attempt_retry`)
    "cancelled": (False, True),
    "customer_approval_denied": (False, True),
    # After `confirmed`: the money went back. The attempt succeeded already, so the
    # notification is stored and a person decides (notifications.py keeps it PAID).
    "charged_back": (False, True),
    "late_failure_settled": (False, True),
    "created": (False, False),
    "customer_approval_granted": (False, False),
    "submitted": (False, False),
    "resubmission_requested": (False, False),
    "chargeback_cancelled": (False, False),
}
REFUND_ACTIONS: dict[str, tuple[bool, bool]] = {
    "paid": (True, True),
    "refund_settled": (True, True),
    "failed": (False, True),
    "cancelled": (False, True),
    "bounced": (False, True),
    "funds_returned": (False, True),
    "created": (False, False),
}


# What a mandates event's `action` says about a mandate set up on a checkout page:
# (succeeded, final). `active`: payments can be collected on it; the endings take a
# saved mandate off its customer.
MANDATE_ACTIONS: dict[str, tuple[bool, bool]] = {
    "active": (True, True),
    "reinstated": (True, True),
    "failed": (False, True),
    "cancelled": (False, True),
    "expired": (False, True),
    "created": (False, False),
    "submitted": (False, False),
}


class GoCardlessConfig(ProviderConfig):
    access_token: SecretStr = Field(min_length=1, description="a GoCardless access token")
    environment: Literal["live", "sandbox"] = "live"
    webhook_secret: SecretStr | None = Field(
        min_length=1,
        default=None,
        description="the secret of the webhook endpoint (Webhook-Signature)",
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
                "metadata": _metadata(
                    request.invoice_id, request.tenant_id, request.idempotency_key
                ),
                "links": {"mandate": request.payment_method or request.customer_reference},
            }
        }
        reply = self._create("payments", body, request.idempotency_key)
        if not reply.ok:
            return Outcome(False, error=_error(reply))
        payment = reply.body.get("payments") or {}
        reference = str(payment.get("id") or "") or None
        status = payment.get("status")
        if status in COLLECTED:
            return Outcome(True, reference=reference)
        if status in ACCEPTED:
            return Outcome(False, reference=reference, pending=True)
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

    def payment_link(self, request: LinkRequest) -> PaymentLink:
        metadata = _metadata(request.invoice_id, request.tenant_id, request.idempotency_key)
        body = {
            "billing_requests": {
                "payment_request": {
                    "amount": to_minor(request.amount, request.currency),
                    "currency": request.currency.upper(),
                    "description": f"Invoice {request.invoice_number or request.invoice_id}",
                    "metadata": metadata,
                },
                "metadata": metadata,
            }
        }
        reply = self._create("billing_requests", body, request.idempotency_key)
        billing_request = str((reply.body.get("billing_requests") or {}).get("id") or "")
        if not reply.ok or not billing_request:
            raise UpstreamFailed(
                f"GoCardless refused the billing request: {_error(reply)}",
                code="payment_link_refused",
            )
        url, expires = self._flow(
            billing_request,
            request.success_url,
            request.cancel_url,
            request.customer_email,
            refused="payment_link_refused",
        )
        return PaymentLink(
            url=url, reference=billing_request, expires_at=expires or request.expires_at
        )

    def checkout(self, request: CheckoutRequest) -> CheckoutLink:
        """A Billing Request with a mandate_request, and a flow where the customer
        authorises the Direct Debit mandate; nothing is paid."""
        metadata = {
            "meterline_customer_id": request.customer_id,
            "meterline_tenant_id": request.tenant_id,
            "meterline_key": request.idempotency_key,
        }
        body = {
            "billing_requests": {
                # The mandate_request's metadata is copied onto the mandate it makes:
                # how the mandates events name the customer.
                "mandate_request": {"currency": request.currency.upper(), "metadata": metadata},
                "metadata": metadata,
            }
        }
        reply = self._create("billing_requests", body, request.idempotency_key)
        billing_request = str((reply.body.get("billing_requests") or {}).get("id") or "")
        if not reply.ok or not billing_request:
            raise UpstreamFailed(
                f"GoCardless refused the billing request: {_error(reply)}", code="checkout_refused"
            )
        url, expires = self._flow(
            billing_request,
            request.success_url,
            request.cancel_url,
            request.customer_email,
            refused="checkout_refused",
        )
        return CheckoutLink(url=url, reference=billing_request, expires_at=expires)

    def _flow(
        self,
        billing_request: str,
        redirect: str | None,
        exit_uri: str | None,
        email: str | None,
        *,
        refused: str,
    ) -> tuple[str, datetime | None]:
        """A Billing Request Flow for `billing_request`: its authorisation_url and end;
        UpstreamFailed (code `refused`) when GoCardless makes none."""
        flow: dict[str, Any] = {"links": {"billing_request": billing_request}}
        if redirect:
            flow["redirect_uri"] = redirect
        if exit_uri:
            flow["exit_uri"] = exit_uri
        if email:
            flow["prefilled_customer"] = {"email": email}
        # No idempotency key: a repeated flow is one more door to the same billing request.
        made = self._http.post(
            "/billing_request_flows", json={"billing_request_flows": flow}, idempotency_key=None
        )
        answered = made.body.get("billing_request_flows") or {}
        if not made.ok or not answered.get("authorisation_url"):
            raise UpstreamFailed(
                f"GoCardless refused the billing request flow: {_error(made)}", code=refused
            )
        return str(answered["authorisation_url"]), _timestamp(answered.get("expires_at"))

    def _create(self, resource: str, body: dict[str, Any], key: str) -> http.Reply:
        """POST a new resource; the one an earlier request with `key` made, if any."""
        reply = self._http.post(f"/{resource}", json=body, idempotency_key=key)
        if reply.status == 409:
            existing = _conflicting_resource(reply)
            if existing is not None:
                return self._http.get(f"/{resource}/{existing}")
        return reply


def webhook_signature(body: bytes, secret: str) -> str:
    """GoCardless's `Webhook-Signature`: the hex HMAC-SHA256 of the raw request body,
    keyed with the webhook endpoint's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_webhook(
    config: GoCardlessConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[WebhookResult]:
    """What the events of a GoCardless webhook say about our payments and refunds, once
    its `Webhook-Signature` checks out; `WebhookRejected` otherwise. GoCardless signs no
    time, so there is no replay window: the event ids are the dedupe keys."""
    if config.webhook_secret is None:
        raise WebhookRejected("the GoCardless connection has no webhookSecret to check with")
    received = lower_keys(headers).get("webhook-signature")
    if not received:
        raise WebhookRejected("the GoCardless webhook has no Webhook-Signature header")
    expected = webhook_signature(body, config.webhook_secret.get_secret_value())
    if not hmac.compare_digest(expected, received.strip().lower()):
        raise WebhookRejected("the GoCardless webhook signature does not match")
    try:
        parsed = loads_exact(body)
    except ValueError:
        raise WebhookRejected("the GoCardless webhook is not JSON") from None
    events = parsed.get("events") if isinstance(parsed, dict) else None
    if not isinstance(events, list):
        raise WebhookRejected("the GoCardless webhook has no events")
    found = (_result(event) for event in events if isinstance(event, dict))
    return [result for result in found if result is not None]


def _result(event: dict[str, Any]) -> WebhookResult | None:
    event_id, action = event.get("id"), str(event.get("action") or "")
    links, kind = _obj(event.get("links")), event.get("resource_type")
    metadata = _obj(event.get("resource_metadata"))
    if not event_id:
        return None
    if kind == "payments" and links.get("payment") and action in PAYMENT_ACTIONS:
        succeeded, final = PAYMENT_ACTIONS[action]
        if action == "failed" and _obj(event.get("details")).get("will_attempt_retry"):
            final = False  # GoCardless collects it again itself; the retry's news follows
        return WebhookResult(
            str(links["payment"]),
            succeeded,
            str(event_id),
            final=final,
            ours=_str(metadata.get("meterline_key")),
        )
    if kind == "mandates" and links.get("mandate") and action in MANDATE_ACTIONS:
        succeeded, final = MANDATE_ACTIONS[action]
        mandate = str(links["mandate"])
        return WebhookResult(
            mandate,
            succeeded,
            str(event_id),
            kind="method",
            final=final,
            ours=_str(metadata.get("meterline_key")),
            method=mandate,
        )
    if (
        kind == "billing_requests"
        and action == "fulfilled"
        and links.get("mandate_request_mandate")
    ):
        mandate = str(links["mandate_request_mandate"])
        return WebhookResult(
            str(links.get("billing_request") or mandate),
            True,
            str(event_id),
            kind="method",
            ours=_str(metadata.get("meterline_key")),
            method=mandate,
        )
    if kind == "refunds" and links.get("refund") and action in REFUND_ACTIONS:
        succeeded, final = REFUND_ACTIONS[action]
        return WebhookResult(
            str(links["refund"]),
            succeeded,
            str(event_id),
            kind="refund",
            final=final,
            ours=_str(metadata.get("meterline_refund")),
        )
    return None


def _metadata(invoice_id: str, tenant_id: str, key: str) -> dict[str, str]:
    # GoCardless takes at most 3 keys (50 characters each, values up to 500).
    return {
        "meterline_invoice_id": invoice_id,
        "meterline_tenant_id": tenant_id,
        "meterline_key": key,
    }


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return str(value) if value else None


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
