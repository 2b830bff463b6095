"""A local HTTP server that answers as GoCardless's API (version 2015-07-06) documents,
and checks what it gets.

Every request must carry `Authorization: Bearer <access token>` (401 otherwise) and
`GoCardless-Version: 2015-07-06` (400 otherwise); a POST must be JSON and carry an
`Idempotency-Key` (our rule: 400 without). As GoCardless does, a key that already
created a resource is answered 409 `idempotent_creation_conflict` with that resource's
id in `links.conflicting_resource_id`, not replayed. A payment must be exactly
`{"payments": {amount, currency, description, metadata, links: {mandate}}}` with an
integer amount, a scheme currency and an active mandate (422 otherwise); a refund must
confirm the total refunded (`total_amount_confirmation`) and not exceed the payment.

Hosted pages: `POST /billing_requests` must be exactly `{"billing_requests":
{payment_request: {amount, currency, description, metadata}, metadata}}` (an Instant
Bank Payment: GBP or EUR), under an Idempotency-Key like any creation;
`POST /billing_request_flows` (no key needed) must link an existing billing request and
answers an `authorisation_url` on this server, expiring 7 days after `now`.
`pay(billing_request)` plays the payer: the billing request is fulfilled and a payment
made from its payment_request (its metadata copied, as GoCardless documents).

A mandate billing request (a checkout page) is `{"billing_requests": {mandate_request:
{currency, metadata}, metadata}}`; `authorise(billing_request)` plays the customer: a
mandate made (its metadata from the mandate_request) and the request fulfilled, told
by `mandate_event(...)` and `fulfilled_event(...)`.

`server.script(...)` / `server.lose_answers(...)` fail before / after the effect;
`event(...)` makes one event as GoCardless records it (with the resource's metadata in
`resource_metadata`) and `webhook(...)` the POST GoCardless sends: the body and its
headers, `Webhook-Signature` the hex HMAC-SHA256 of the body with the endpoint secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers.loopback import LoopbackServer, Request, Response

ACCESS_TOKEN = "sandbox_meterline_gocardless_token_0042"
MANDATE = "MD0000000001"  # active
INACTIVE_MANDATE = "MD0000000002"  # cancelled
WEBHOOK_SECRET = "gc_webhook_secret_meterline_7731"
VERSION = "2015-07-06"
CURRENCIES = frozenset({"AUD", "CAD", "DKK", "EUR", "GBP", "NZD", "SEK", "USD"})
PAYMENT_FIELDS = {"amount", "currency", "description", "metadata", "links"}
REFUND_FIELDS = {"amount", "total_amount_confirmation", "metadata", "links"}
PAYMENT_REQUEST_FIELDS = {"amount", "currency", "description", "metadata"}
MANDATE_REQUEST_FIELDS = {"currency", "metadata"}
FLOW_FIELDS = {"links", "redirect_uri", "exit_uri", "prefilled_customer"}
INSTANT_CURRENCIES = frozenset({"GBP", "EUR"})  # Instant Bank Pay
FLOW_LIFETIME = timedelta(days=7)
_RESOURCE = re.compile(r"/(?P<kind>payments|refunds|billing_requests)/(?P<id>[A-Z0-9]+)")


def _error(
    status: int, kind: str, message: str, errors: list[dict[str, Any]] | None = None
) -> Response:
    return Response(
        status,
        {
            "error": {
                "type": kind,
                "code": status,
                "message": message,
                "documentation_url": "https://developer.gocardless.com/api-reference#errors",
                "request_id": "deadbeef-0000-4000-8000-000000000000",
                "errors": errors or [{"reason": kind, "message": message}],
            }
        },
    )


def _invalid_state(reason: str, message: str) -> Response:
    return _error(422, "invalid_state", message, [{"reason": reason, "message": message}])


def _invalid(field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message, "request_pointer": f"/{field}"}


class FakeGoCardless:
    def __init__(self) -> None:
        self.server = LoopbackServer(self.app)
        self.mandates: dict[str, str] = {}  # id -> status
        self.mandate_metadata: dict[str, dict[str, str]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.billing_requests: dict[str, dict[str, Any]] = {}
        self.flows: dict[str, dict[str, Any]] = {}
        self._created: dict[str, str] = {}  # idempotency key -> resource id
        self._events = 0
        self._lock = threading.Lock()
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # the fake's clock

    @property
    def url(self) -> str:
        return self.server.url

    def add_mandate(self, mandate_id: str, status: str = "active") -> None:
        self.mandates[mandate_id] = status

    def posts(self, path: str = "/payments") -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    # -- the app ------------------------------------------------------------------------

    def app(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return _error(401, "invalid_api_usage", "Access token not found")
        if request.headers.get("gocardless-version") != VERSION:
            return _error(400, "invalid_api_usage", "GoCardless-Version header is required")
        with self._lock:
            if request.method == "GET":
                return self._get(request)
            if not request.headers.get("content-type", "").startswith("application/json"):
                return _error(415, "invalid_api_usage", "Content-Type must be application/json")
            if request.path == "/billing_request_flows":  # creates no money movement
                return self._flow(request.json())
            key = request.headers.get("idempotency-key")
            if not key:
                return _error(400, "invalid_api_usage", "an Idempotency-Key is required (ours)")
            if key in self._created:
                return _error(
                    409,
                    "invalid_state",
                    "A resource has already been created with this idempotency key",
                    [
                        {
                            "reason": "idempotent_creation_conflict",
                            "message": "A resource has already been created with this "
                            "idempotency key",
                            "links": {"conflicting_resource_id": self._created[key]},
                        }
                    ],
                )
            body = request.json()
            if request.path == "/payments":
                answer, created = self._payment(body)
            elif request.path == "/refunds":
                answer, created = self._refund(body)
            elif request.path == "/billing_requests":
                answer, created = self._billing_request(body)
            else:
                return _error(404, "invalid_api_usage", f"no route {request.path}")
            if created is not None:
                self._created[key] = created
            return answer

    def _get(self, request: Request) -> Response:
        found = _RESOURCE.fullmatch(request.path)
        stores = {
            "payments": self.payments,
            "refunds": self.refunds,
            "billing_requests": self.billing_requests,
        }
        store = stores[found["kind"]] if found else {}
        if found is None or found["id"] not in store:
            return _error(404, "invalid_api_usage", "Resource not found")
        return Response(200, {found["kind"]: store[found["id"]]})

    def _payment(self, body: dict[str, Any]) -> tuple[Response, str | None]:
        payment = body.get("payments")
        if set(body) != {"payments"} or not isinstance(payment, dict):
            return _error(400, "invalid_api_usage", "the body must be {payments: {...}}"), None
        problems = [_invalid(k, "is not a payment field") for k in set(payment) - PAYMENT_FIELDS]
        amount = payment.get("amount")
        if type(amount) is not int or amount < 1:
            problems.append(_invalid("amount", "must be a whole number of minor units"))
        if payment.get("currency") not in CURRENCIES:
            problems.append(_invalid("currency", "is not a supported currency"))
        metadata = payment.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 3:
            problems.append(_invalid("metadata", "must have at most 3 keys"))
        links = payment.get("links") or {}
        if set(links) != {"mandate"}:
            problems.append(_invalid("links", "must be exactly {mandate}"))
        if problems:
            return _error(422, "validation_failed", "Validation failed", problems), None
        mandate = self.mandates.get(links["mandate"])
        if mandate is None:
            return _error(404, "invalid_api_usage", "Resource not found"), None
        if mandate != "active":
            message = "The mandate for this payment is not active"
            return _error(
                422,
                "invalid_state",
                message,
                [{"reason": "mandate_is_inactive", "message": message}],
            ), None
        payment_id = f"PM{len(self.payments) + 1:010d}"
        created = {
            "id": payment_id,
            "amount": amount,
            "amount_refunded": 0,
            "currency": payment["currency"],
            "description": payment.get("description"),
            "metadata": metadata,
            "status": "pending_submission",
            "charge_date": "2026-11-06",
            "links": {"mandate": links["mandate"], "creditor": "CR0000000001"},
        }
        self.payments[payment_id] = created
        return Response(201, {"payments": created}), payment_id

    def _refund(self, body: dict[str, Any]) -> tuple[Response, str | None]:
        refund = body.get("refunds")
        if set(body) != {"refunds"} or not isinstance(refund, dict) or set(refund) != REFUND_FIELDS:
            return _error(400, "invalid_api_usage", "the body must be {refunds: {...}}"), None
        payment = self.payments.get((refund.get("links") or {}).get("payment", ""))
        if payment is None:
            return _error(404, "invalid_api_usage", "Resource not found"), None
        amount = refund["amount"]
        if type(amount) is not int or amount < 1:
            problem = _invalid("amount", "must be a whole number of minor units")
            return _error(422, "validation_failed", "Validation failed", [problem]), None
        if refund["total_amount_confirmation"] != payment["amount_refunded"] + amount:
            message = "The total amount confirmation does not match the refunded total"
            return _invalid_state("total_amount_confirmation_invalid", message), None
        if payment["amount_refunded"] + amount > payment["amount"]:
            message = "The refund would exceed the amount of the payment"
            return _invalid_state("refund_payment_invalid_state", message), None
        payment["amount_refunded"] += amount
        refund_id = f"RF{len(self.refunds) + 1:010d}"
        created = {
            "id": refund_id,
            "amount": amount,
            "currency": payment["currency"],
            "metadata": refund["metadata"],
            "status": "created",
            "links": {"payment": payment["id"], "mandate": payment["links"]["mandate"]},
        }
        self.refunds[refund_id] = created
        return Response(201, {"refunds": created}), refund_id

    def _billing_request(self, body: dict[str, Any]) -> tuple[Response, str | None]:
        wanted = body.get("billing_requests")
        if set(body) != {"billing_requests"} or not isinstance(wanted, dict):
            message = "the body must be {billing_requests: {...}}"
            return _error(400, "invalid_api_usage", message), None
        problems = [
            _invalid(k, "is not a billing request field")
            for k in set(wanted) - {"payment_request", "mandate_request", "metadata"}
        ]
        if "mandate_request" in wanted and "payment_request" not in wanted:
            return self._mandate_billing_request(wanted, problems)
        payment = wanted.get("payment_request")
        if not isinstance(payment, dict) or set(payment) != PAYMENT_REQUEST_FIELDS:
            problems.append(
                _invalid("payment_request", f"must be {sorted(PAYMENT_REQUEST_FIELDS)}")
            )
            return _error(422, "validation_failed", "Validation failed", problems), None
        if type(payment["amount"]) is not int or payment["amount"] < 1:
            problems.append(_invalid("payment_request.amount", "must be whole minor units"))
        if payment["currency"] not in INSTANT_CURRENCIES:
            problems.append(_invalid("payment_request.currency", "must be GBP or EUR"))
        for where, metadata in (("metadata", wanted.get("metadata")),
                                ("payment_request.metadata", payment["metadata"])):  # fmt: skip
            if not isinstance(metadata, dict) or len(metadata) > 3:
                problems.append(_invalid(where, "must have at most 3 keys"))
        if problems:
            return _error(422, "validation_failed", "Validation failed", problems), None
        brq_id = f"BRQ{len(self.billing_requests) + 1:010d}"
        created = {
            "id": brq_id,
            "created_at": self.now.isoformat().replace("+00:00", "Z"),
            "status": "pending",
            "mandate_request": None,
            "payment_request": {**payment, "scheme": "faster_payments", "links": {}},
            "metadata": wanted.get("metadata") or {},
            "links": {"creditor": "CR0000000001", "payment_request": f"PRQ{brq_id[3:]}"},
        }
        self.billing_requests[brq_id] = created
        return Response(201, {"billing_requests": created}), brq_id

    def _mandate_billing_request(
        self, wanted: dict[str, Any], problems: list[dict[str, Any]]
    ) -> tuple[Response, str | None]:
        """A billing request that sets up a mandate only: `mandate_request` exactly
        {currency, metadata}, a scheme currency, at most 3 metadata keys on each."""
        mandate = wanted["mandate_request"]
        if not isinstance(mandate, dict) or set(mandate) != MANDATE_REQUEST_FIELDS:
            problems.append(
                _invalid("mandate_request", f"must be {sorted(MANDATE_REQUEST_FIELDS)}")
            )
            return _error(422, "validation_failed", "Validation failed", problems), None
        if mandate["currency"] not in CURRENCIES:
            problems.append(_invalid("mandate_request.currency", "is not a supported currency"))
        for where, metadata in (("metadata", wanted.get("metadata")),
                                ("mandate_request.metadata", mandate["metadata"])):  # fmt: skip
            if not isinstance(metadata, dict) or len(metadata) > 3:
                problems.append(_invalid(where, "must have at most 3 keys"))
        if problems:
            return _error(422, "validation_failed", "Validation failed", problems), None
        brq_id = f"BRQ{len(self.billing_requests) + 1:010d}"
        created = {
            "id": brq_id,
            "created_at": self.now.isoformat().replace("+00:00", "Z"),
            "status": "pending",
            "mandate_request": {**mandate, "scheme": None, "links": {}},
            "payment_request": None,
            "metadata": wanted.get("metadata") or {},
            "links": {"creditor": "CR0000000001", "mandate_request": f"MRQ{brq_id[3:]}"},
        }
        self.billing_requests[brq_id] = created
        return Response(201, {"billing_requests": created}), brq_id

    def authorise(self, billing_request: str) -> str:
        """The customer completed a mandate flow: a mandate is made (its metadata from the
        mandate_request, as GoCardless documents) and the billing request fulfilled. The
        mandate's id."""
        with self._lock:
            brq = self.billing_requests[billing_request]
            mandate_id = f"MD{len(self.mandates) + 1:010d}"
            self.mandates[mandate_id] = "pending_submission"
            self.mandate_metadata[mandate_id] = dict(brq["mandate_request"]["metadata"])
            brq["status"] = "fulfilled"
            brq["links"]["mandate_request_mandate"] = mandate_id
            return mandate_id

    def mandate_event(self, action: str, mandate: str) -> dict[str, Any]:
        """A mandates event (`active`, `cancelled`, …), the mandate's status moved to it."""
        self._events += 1
        self.mandates[mandate] = action if action != "created" else "pending_submission"
        return {
            "id": f"EV{self._events:010d}",
            "created_at": self.now.isoformat().replace("+00:00", "Z"),
            "resource_type": "mandates",
            "action": action,
            "links": {"mandate": mandate},
            "details": {"origin": "gocardless", "cause": f"mandate_{action}"},
            "metadata": {},
            "resource_metadata": dict(self.mandate_metadata.get(mandate) or {}),
        }

    def fulfilled_event(self, billing_request: str) -> dict[str, Any]:
        """The billing_requests `fulfilled` event of a mandate billing request."""
        self._events += 1
        brq = self.billing_requests[billing_request]
        return {
            "id": f"EV{self._events:010d}",
            "created_at": self.now.isoformat().replace("+00:00", "Z"),
            "resource_type": "billing_requests",
            "action": "fulfilled",
            "links": {
                "billing_request": billing_request,
                "mandate_request_mandate": brq["links"]["mandate_request_mandate"],
            },
            "details": {"origin": "payer", "cause": "billing_request_fulfilled"},
            "metadata": {},
            "resource_metadata": dict(brq["metadata"]),
        }

    def _flow(self, body: dict[str, Any]) -> Response:
        wanted = body.get("billing_request_flows")
        if set(body) != {"billing_request_flows"} or not isinstance(wanted, dict):
            return _error(
                400, "invalid_api_usage", "the body must be {billing_request_flows: {...}}"
            )
        problems = [_invalid(k, "is not a flow field") for k in set(wanted) - FLOW_FIELDS]
        links = wanted.get("links") or {}
        if set(links) != {"billing_request"}:
            problems.append(_invalid("links", "must be exactly {billing_request}"))
        if problems:
            return _error(422, "validation_failed", "Validation failed", problems)
        if links["billing_request"] not in self.billing_requests:
            return _error(404, "invalid_api_usage", "Resource not found")
        flow_id = f"BRF{len(self.flows) + 1:010d}"
        created = {
            "id": flow_id,
            "authorisation_url": f"{self.url}/billing/static/flow?id={flow_id}",
            "created_at": self.now.isoformat().replace("+00:00", "Z"),
            "expires_at": (self.now + FLOW_LIFETIME).isoformat().replace("+00:00", "Z"),
            "redirect_uri": wanted.get("redirect_uri"),
            "exit_uri": wanted.get("exit_uri"),
            "prefilled_customer": wanted.get("prefilled_customer"),
            "lock_currency": False,
            "links": {"billing_request": links["billing_request"]},
        }
        self.flows[flow_id] = created
        return Response(201, {"billing_request_flows": created})

    def pay(self, billing_request: str, status: str = "pending_submission") -> str:
        """The payer completed the flow: the billing request is fulfilled and its payment
        made (metadata from the payment_request). The payment's id."""
        with self._lock:
            brq = self.billing_requests[billing_request]
            asked = brq["payment_request"]
            payment_id = f"PM{len(self.payments) + 1:010d}"
            self.payments[payment_id] = {
                "id": payment_id,
                "amount": asked["amount"],
                "amount_refunded": 0,
                "currency": asked["currency"],
                "description": asked["description"],
                "metadata": dict(asked["metadata"]),
                "status": status,
                "links": {"creditor": "CR0000000001"},
            }
            brq["status"] = "fulfilled"
            brq["links"]["payment_request_payment"] = payment_id
            return payment_id

    # -- webhooks ----------------------------------------------------------------------

    def event(
        self, action: str, *, payment: str | None = None, refund: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """One event as GoCardless records it, about a payment or a refund of this fake
        (its status moved to `action` where that is a status)."""
        self._events += 1
        resource, kind, key = (
            (self.payments[payment], "payments", "payment")
            if payment is not None
            else (self.refunds[str(refund)], "refunds", "refund")
        )
        if action in ("confirmed", "paid_out", "failed", "cancelled", "submitted", "paid"):
            resource["status"] = action
        return {
            "id": f"EV{self._events:010d}",
            "created_at": self.now.isoformat().replace("+00:00", "Z"),
            "resource_type": kind,
            "action": action,
            "links": {key: resource["id"]},
            "details": details
            or {"origin": "gocardless", "cause": f"{key}_{action}", "description": action},
            "metadata": {},
            "resource_metadata": dict(resource.get("metadata") or {}),
        }

    def webhook(
        self, *events: dict[str, Any], secret: str = WEBHOOK_SECRET
    ) -> tuple[bytes, dict[str, str]]:
        """The POST GoCardless sends for `events`: the raw body and its headers."""
        body = json.dumps({"events": list(events), "meta": {"webhook_id": "WB0000001"}}).encode()
        return self.webhook_of(body, secret)

    def webhook_of(self, body: bytes, secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
        """`body` sent as GoCardless sends a webhook, signed: hex HMAC-SHA256 of the raw
        body, keyed with the endpoint's secret."""
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {
            "Content-Type": "application/json",
            "Origin": "https://api.gocardless.com",
            "User-Agent": "gocardless-webhook-service/1.1",
            "Webhook-Signature": signature,
        }


@contextmanager
def fake_gocardless() -> Iterator[FakeGoCardless]:
    """A running fake with an active mandate (MANDATE) and a cancelled one."""
    fake = FakeGoCardless()
    fake.add_mandate(MANDATE)
    fake.add_mandate(INACTIVE_MANDATE, status="cancelled")
    with fake.server.running():
        yield fake
