"""A local HTTP server that answers as Cashfree's PG API (2023-08-01) documents for
subscription charges and refunds, and checks what it gets.

Every request must carry `x-client-id`, `x-client-secret` (401 otherwise) and
`x-api-version: 2023-08-01` (400 otherwise); every POST a JSON body and an
`x-idempotency-key` that is a UUID. A key seen before is answered with the first
response and creates nothing. `POST /subscriptions/pay` must be exactly {subscription_id,
payment_id, payment_amount, payment_type: CHARGE, payment_remarks} on an ACTIVE
subscription, the amount a JSON number in rupees and paise, not above the plan's
maximum; a `payment_id` already used is refused with 409 (what Cashfree does once it
no longer remembers the key: `forget_keys()`). A subscription made with `declines=True`
makes a FAILED charge. `POST /subscriptions/{id}/refunds` refunds a SUCCESS payment,
not more than is left, under a unique `refund_id`. GETs fetch a payment or a refund.
`server.script(...)` / `server.lose_answers(...)` fail before / after the effect.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.helpers.loopback import IdempotencyKeys, LoopbackServer, Request, Response

CLIENT_ID = "TEST10234567meterline"
CLIENT_SECRET = "cfsk_ma_test_meterline_secret_5150"
API_VERSION = "2023-08-01"
SUBSCRIPTION = "sub_acme_ondemand_01"
PAY = "/subscriptions/pay"
PAY_FIELDS = {"subscription_id", "payment_id", "payment_amount", "payment_type", "payment_remarks"}
REFUND_FIELDS = {"subscription_id", "payment_id", "refund_id", "refund_amount", "refund_note"}


@dataclass
class Subscription:
    max_amount: Decimal
    status: str = "ACTIVE"
    declines: bool = False


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> Response:
    return Response(status, {"message": message, "code": code, "type": kind})


def _uuid(value: str | None) -> bool:
    try:
        return value is not None and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _rupees(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value <= 0:
        return False
    return isinstance(value, int) or -value.as_tuple().exponent <= 2  # type: ignore[operator]


class FakeCashfree:
    def __init__(self) -> None:
        self.server = LoopbackServer(self.app)
        self.subscriptions: dict[str, Subscription] = {}
        self.payments: dict[str, dict[str, Any]] = {}  # by payment_id
        self.refunds: dict[str, dict[str, Any]] = {}  # by refund_id
        self.refunded: dict[str, Decimal] = {}  # by payment_id
        self._keys = IdempotencyKeys()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url

    def add_subscription(
        self, subscription_id: str, *, max_amount: str = "100000", status: str = "ACTIVE",
        declines: bool = False,
    ) -> None:  # fmt: skip
        self.subscriptions[subscription_id] = Subscription(Decimal(max_amount), status, declines)

    def forget_keys(self) -> None:
        """Idempotency keys expire: later repeats reach the ids' uniqueness checks."""
        self._keys = IdempotencyKeys()

    def posts(self, path: str = PAY) -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    def app(self, request: Request) -> Response:
        headers = request.headers
        if (headers.get("x-client-id"), headers.get("x-client-secret")) != (
            CLIENT_ID,
            CLIENT_SECRET,
        ):
            return _error(401, "authentication Failed", "request_failed", "authentication_error")
        if headers.get("x-api-version") != API_VERSION:
            return _error(400, "x-api-version is missing or unknown", "request_failed")
        parts = request.path.strip("/").split("/")
        with self._lock:
            if request.method == "GET":
                return self._get(parts)
            key = headers.get("x-idempotency-key")
            if not _uuid(key):
                return _error(400, "x-idempotency-key must be a UUID", "idempotency_key_invalid")
            if not headers.get("content-type", "").startswith("application/json"):
                return _error(400, "Content-Type must be application/json", "request_invalid")
            body = request.json()
            mismatch = _error(422, "idempotency key reused with another body", "idempotency_error")
            if request.path == PAY:
                return self._keys.once(str(key), body, lambda: self._pay(body), mismatch)
            if len(parts) == 3 and parts[0] == "subscriptions" and parts[2] == "refunds":
                return self._keys.once(
                    str(key), body, lambda: self._refund(parts[1], body), mismatch
                )
            return _error(404, f"no route {request.path}", "request_invalid")

    def _get(self, parts: list[str]) -> Response:
        if len(parts) == 4 and parts[0] == "subscriptions" and parts[2] == "payments":
            found = self.payments.get(parts[3])
            if found is not None and found["subscription_id"] == parts[1]:
                return Response(200, found)
            return _error(404, "payment not found", "payment_not_found")
        if len(parts) == 4 and parts[0] == "subscriptions" and parts[2] == "refunds":
            refund = self.refunds.get(parts[3])
            if refund is not None:
                return Response(200, refund)
            return _error(404, "refund not found", "refund_not_found")
        return _error(404, "no such resource", "request_invalid")

    def _pay(self, body: dict[str, Any]) -> Response:
        if set(body) != PAY_FIELDS:
            return _error(400, f"fields must be exactly {sorted(PAY_FIELDS)}", "request_invalid")
        subscription = self.subscriptions.get(body["subscription_id"])
        if subscription is None:
            return _error(404, "subscription not found", "subscription_not_found")
        if subscription.status != "ACTIVE":
            return _error(400, "subscription is not active", "subscription_not_active")
        if body["payment_type"] != "CHARGE":
            return _error(400, "payment_type must be CHARGE after the auth", "request_invalid")
        amount = body["payment_amount"]
        if not _rupees(amount):
            return _error(400, "payment_amount must be a number in INR", "payment_amount_invalid")
        if amount > subscription.max_amount:
            return _error(400, "payment_amount exceeds the plan's maximum", "amount_exceeds")
        if body["payment_id"] in self.payments:
            return _error(409, "payment_id already exists", "payment_id_already_exists")
        payment = {
            "payment_id": body["payment_id"],
            "cf_payment_id": str(5114910001 + len(self.payments)),
            "subscription_id": body["subscription_id"],
            "payment_amount": amount,
            "payment_type": "CHARGE",
            "payment_status": "FAILED" if subscription.declines else "SUCCESS",
            "failure_details": {"failure_reason": "Insufficient balance in the account"}
            if subscription.declines
            else None,
        }
        self.payments[body["payment_id"]] = payment
        return Response(200, payment)

    def _refund(self, subscription_id: str, body: dict[str, Any]) -> Response:
        if set(body) != REFUND_FIELDS or body["subscription_id"] != subscription_id:
            return _error(400, f"fields must be exactly {sorted(REFUND_FIELDS)}", "request_invalid")
        payment = self.payments.get(body["payment_id"])
        if payment is None or payment["subscription_id"] != subscription_id:
            return _error(404, "payment not found", "payment_not_found")
        if payment["payment_status"] != "SUCCESS":
            return _error(
                400, "only a successful payment can be refunded", "payment_not_refundable"
            )
        if body["refund_id"] in self.refunds:
            return _error(409, "refund_id already exists", "refund_id_already_exists")
        amount = body["refund_amount"]
        if not _rupees(amount):
            return _error(400, "refund_amount must be a number in INR", "refund_amount_invalid")
        already = self.refunded.get(body["payment_id"], Decimal(0))
        if already + amount > payment["payment_amount"]:
            return _error(400, "refund amount is greater than the refundable amount",
                          "refund_amount_invalid")  # fmt: skip
        self.refunded[body["payment_id"]] = already + amount
        refund = {
            "refund_id": body["refund_id"],
            "cf_refund_id": f"ref_{len(self.refunds) + 1:04d}",
            "payment_id": body["payment_id"],
            "refund_amount": amount,
            "refund_note": body["refund_note"],
            "refund_status": "PENDING",
        }
        self.refunds[body["refund_id"]] = refund
        return Response(200, refund)


@contextmanager
def fake_cashfree() -> Iterator[FakeCashfree]:
    fake = FakeCashfree()
    with fake.server.running():
        yield fake
