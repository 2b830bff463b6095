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
`server.script(...)` / `server.lose_answers(...)` fail before / after the effect;
`webhook(...)` builds a signed webhook body as GoCardless sends it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers.loopback import LoopbackServer, Request, Response

ACCESS_TOKEN = "sandbox_meterline_gocardless_token_0042"
WEBHOOK_SECRET = "gc_webhook_secret_meterline_7731"
VERSION = "2015-07-06"
CURRENCIES = frozenset({"AUD", "CAD", "DKK", "EUR", "GBP", "NZD", "SEK", "USD"})
PAYMENT_FIELDS = {"amount", "currency", "description", "metadata", "links"}
REFUND_FIELDS = {"amount", "total_amount_confirmation", "metadata", "links"}
_RESOURCE = re.compile(r"/(?P<kind>payments|refunds)/(?P<id>[A-Z0-9]+)")


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
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._created: dict[str, str] = {}  # idempotency key -> resource id
        self._lock = threading.Lock()

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
            else:
                return _error(404, "invalid_api_usage", f"no route {request.path}")
            if created is not None:
                self._created[key] = created
            return answer

    def _get(self, request: Request) -> Response:
        found = _RESOURCE.fullmatch(request.path)
        store = self.payments if found and found["kind"] == "payments" else self.refunds
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

    # -- webhooks ----------------------------------------------------------------------

    def webhook(self, *events: dict[str, Any]) -> tuple[bytes, str]:
        """A webhook body as GoCardless POSTs it, and its `Webhook-Signature` header."""
        body = json.dumps({"events": list(events)}).encode()
        return body, hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


@contextmanager
def fake_gocardless() -> Iterator[FakeGoCardless]:
    fake = FakeGoCardless()
    with fake.server.running():
        yield fake
