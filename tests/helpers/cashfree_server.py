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
not more than is left, under a unique `refund_id`. GETs fetch a payment, a refund or a
subscription (with its customer_details: Cashfree requires a phone and an email).

Payment links: `POST /links` must be exactly {link_id, link_amount, link_currency,
link_purpose, customer_details: {customer_phone, customer_email?, customer_name?},
link_partial_payments, link_expiry_time (ISO 8601, in the future), link_notify,
link_notes (at most 5, strings), link_meta?: {return_url}}; a taken link_id is 409.
`pay_link(link_id)` plays the payer (an order `CFPay_…` is made and paid, refundable
through `POST /orders/{order_id}/refunds`), `expire_link` ends one. `notification(...)`
builds a webhook as Cashfree posts it: the raw body and its headers, signed
base64(HMAC-SHA256(timestamp + body, client secret)) with the millisecond timestamp.

`server.script(...)` / `server.lose_answers(...)` fail before / after the effect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
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
ORDER_REFUND_FIELDS = {"refund_amount", "refund_id", "refund_note"}
LINK_FIELDS = {
    "link_id", "link_amount", "link_currency", "link_purpose", "customer_details",
    "link_partial_payments", "link_expiry_time", "link_notify", "link_notes",
}  # fmt: skip
LINK_OPTIONAL = {"link_meta"}
PHONE = "9876543210"
IST = timezone(timedelta(hours=5, minutes=30))


@dataclass
class Subscription:
    max_amount: Decimal
    status: str = "ACTIVE"
    declines: bool = False
    phone: str | None = PHONE
    email: str = "ap@acme.example"
    settles: str = "SUCCESS"  # or PENDING: an eNACH charge, collected later


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
        self.links: dict[str, dict[str, Any]] = {}  # by link_id
        self.orders: dict[str, dict[str, Any]] = {}  # by order_id (paid links)
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # the fake's clock
        self._keys = IdempotencyKeys()
        self._lock = threading.Lock()
        self._before: dict[str, list[Response]] = {}  # path -> answers before the effect
        self._after: dict[str, list[Response]] = {}  # path -> answers replacing the app's

    @property
    def url(self) -> str:
        return self.server.url

    def add_subscription(
        self, subscription_id: str, *, max_amount: str = "100000", status: str = "ACTIVE",
        declines: bool = False, phone: str | None = PHONE, settles: str = "SUCCESS",
    ) -> None:  # fmt: skip
        self.subscriptions[subscription_id] = Subscription(
            Decimal(max_amount), status, declines, phone, settles=settles
        )

    def fail(self, path: str, *answers: Response, after: bool = False) -> None:
        """The next POSTs to `path` get `answers`: before anything is made, or `after`
        the effect (the answer lost on the way back)."""
        (self._after if after else self._before).setdefault(path, []).extend(answers)

    def forget_keys(self) -> None:
        """Idempotency keys expire: later repeats reach the ids' uniqueness checks."""
        self._keys = IdempotencyKeys()

    def posts(self, path: str = PAY) -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    def app(self, request: Request) -> Response:
        if request.method == "POST" and self._before.get(request.path):
            return self._before[request.path].pop(0)
        answer = self._app(request)
        if request.method == "POST" and self._after.get(request.path):
            return self._after[request.path].pop(0)
        return answer

    def _app(self, request: Request) -> Response:
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
            if request.path == "/links":
                return self._keys.once(str(key), body, lambda: self._link(body), mismatch)
            if len(parts) == 3 and parts[0] == "orders" and parts[2] == "refunds":
                return self._keys.once(
                    str(key), body, lambda: self._refund_order(parts[1], body), mismatch
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
        if len(parts) == 2 and parts[0] == "subscriptions" and parts[1] in self.subscriptions:
            return Response(200, self._subscription(parts[1]))
        if len(parts) == 2 and parts[0] == "links" and parts[1] in self.links:
            return Response(200, self.links[parts[1]])
        if len(parts) == 4 and parts[0] == "orders" and parts[2] == "refunds":
            found = self.refunds.get(parts[3])
            if found is not None and found.get("order_id") == parts[1]:
                return Response(200, found)
            return _error(404, "refund not found", "refund_not_found")
        return _error(404, "no such resource", "request_invalid")

    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        held = self.subscriptions[subscription_id]
        return {
            "cf_subscription_id": "23639356",
            "subscription_id": subscription_id,
            "subscription_status": held.status,
            "customer_details": {
                "customer_name": "Acme",
                "customer_email": held.email,
                "customer_phone": held.phone,
            },
            "plan_details": {
                "plan_type": "ON_DEMAND",
                "plan_max_amount": held.max_amount,
                "plan_currency": "INR",
            },
        }

    def _link(self, body: dict[str, Any]) -> Response:
        if not LINK_FIELDS <= set(body) <= LINK_FIELDS | LINK_OPTIONAL:
            return _error(400, f"fields must be {sorted(LINK_FIELDS)} and link_meta",
                          "request_invalid")  # fmt: skip
        link_id = body["link_id"]
        if (
            not isinstance(link_id, str)
            or not 0 < len(link_id) <= 50
            or not all(c.isalnum() or c in "-_" for c in link_id)
        ):
            return _error(
                400, "link_id : alphanumeric, - and _ only, at most 50", "link_id_invalid"
            )
        if not _rupees(body["link_amount"]):
            return _error(
                400, "link_amount : must be a number with 2 decimals", "link_amount_invalid"
            )
        customer = body["customer_details"]
        if not isinstance(customer, dict) or not customer.get("customer_phone"):
            return _error(400, "customer_details.customer_phone : is missing in the request",
                          "customer_details.customer_phone_missing")  # fmt: skip
        if set(customer) - {"customer_phone", "customer_email", "customer_name"}:
            return _error(400, "customer_details has unknown fields", "request_invalid")
        try:
            expiry = datetime.fromisoformat(body["link_expiry_time"])
        except (TypeError, ValueError):
            return _error(400, "link_expiry_time : must be ISO 8601", "link_expiry_time_invalid")
        if expiry.tzinfo is None or expiry <= self.now:
            return _error(400, "link_expiry_time : must be in the future, with an offset",
                          "link_expiry_time_invalid")  # fmt: skip
        notes = body["link_notes"]
        if (
            not isinstance(notes, dict)
            or len(notes) > 5
            or not all(isinstance(v, str) for v in notes.values())
        ):
            return _error(400, "link_notes : at most 5 string values", "link_notes_invalid")
        if set(body.get("link_meta") or {}) - {"return_url", "notify_url", "upi_intent",
                                               "payment_methods"}:  # fmt: skip
            return _error(400, "link_meta has unknown fields", "request_invalid")
        if link_id in self.links:
            return _error(409, "link_id already exists", "link_post_failed")
        short = hashlib.sha256(link_id.encode()).hexdigest()[:12]
        link = {
            "cf_link_id": 1576977 + len(self.links),
            "link_id": link_id,
            "link_status": "ACTIVE",
            "link_currency": body["link_currency"],
            "link_amount": body["link_amount"],
            "link_amount_paid": 0,
            "link_partial_payments": body["link_partial_payments"],
            "link_minimum_partial_amount": None,
            "link_purpose": body["link_purpose"],
            "link_created_at": self.now.astimezone(IST).replace(tzinfo=None).isoformat(),
            "customer_details": customer,
            "link_meta": body.get("link_meta") or {},
            "link_url": f"{self.url}/links/{short}",
            # as Cashfree answers it: India's time, no offset
            "link_expiry_time": expiry.astimezone(IST).replace(tzinfo=None).isoformat(),
            "link_notes": notes,
            "link_auto_reminders": False,
            "link_notify": body["link_notify"],
        }
        self.links[link_id] = link
        return Response(200, link)

    def pay_link(self, link_id: str, *, succeeds: bool = True) -> str:
        """The payer paid the link: an order is made (and paid). Its order_id."""
        with self._lock:
            link = self.links[link_id]
            order_id = f"CFPay_{link['link_url'].rsplit('/', 1)[1]}_{len(self.orders) + 1:04d}"
            self.orders[order_id] = {
                "order_id": order_id,
                "order_amount": link["link_amount"],
                "transaction_id": 1021206 + len(self.orders),
                "transaction_status": "SUCCESS" if succeeds else "FAILED",
            }
            if succeeds:
                link["link_status"] = "PAID"
                link["link_amount_paid"] = link["link_amount"]
            return order_id

    def expire_link(self, link_id: str) -> None:
        self.links[link_id]["link_status"] = "EXPIRED"

    def _refund_order(self, order_id: str, body: dict[str, Any]) -> Response:
        if set(body) != ORDER_REFUND_FIELDS:
            return _error(400, f"fields must be exactly {sorted(ORDER_REFUND_FIELDS)}",
                          "request_invalid")  # fmt: skip
        order = self.orders.get(order_id)
        if order is None or order["transaction_status"] != "SUCCESS":
            return _error(404, "order not found or not paid", "order_not_found")
        if body["refund_id"] in self.refunds:
            return _error(409, "refund_id already exists", "refund_id_already_exists")
        already = self.refunded.get(order_id, Decimal(0))
        if not _rupees(body["refund_amount"]) or already + body["refund_amount"] > Decimal(
            order["order_amount"]
        ):
            return _error(400, "refund amount is greater than the refundable amount",
                          "refund_amount_invalid")  # fmt: skip
        self.refunded[order_id] = already + body["refund_amount"]
        refund = {
            "refund_id": body["refund_id"],
            "cf_refund_id": f"ref_{len(self.refunds) + 1:04d}",
            "order_id": order_id,
            "entity": "refund",
            "refund_amount": body["refund_amount"],
            "refund_currency": "INR",
            "refund_note": body["refund_note"],
            "refund_status": "PENDING",
        }
        self.refunds[body["refund_id"]] = refund
        return Response(200, refund)

    # -- webhooks ----------------------------------------------------------------------

    def link_event(self, link_id: str, order_id: str | None = None) -> dict[str, Any]:
        """The PAYMENT_LINK_EVENT Cashfree posts for a link as it is now."""
        data = dict(self.links[link_id])
        for amount in ("link_amount", "link_amount_paid"):  # strings in this webhook
            data[amount] = f"{Decimal(data[amount]):.2f}"
        if order_id is not None:
            order = self.orders[order_id]
            data["order"] = {
                "order_amount": f"{Decimal(order['order_amount']):.2f}",
                "order_id": order_id,
                "order_expiry_time": data["link_expiry_time"],
                "order_hash": "Gb2gC7z0tILhGbZUIeds",
                "transaction_id": order["transaction_id"],
                "transaction_status": order["transaction_status"],
            }
        return self._event("PAYMENT_LINK_EVENT", data)

    def payment_event(
        self, payment_id: str, kind: str = "SUBSCRIPTION_PAYMENT_SUCCESS"
    ) -> dict[str, Any]:
        """A subscription payment event about one payment of this fake."""
        payment = self.payments[payment_id]
        status = {"SUBSCRIPTION_PAYMENT_SUCCESS": "SUCCESS",
                  "SUBSCRIPTION_PAYMENT_NOTIFICATION_INITIATED": "PENDING",
                  "SUBSCRIPTION_PAYMENT_CANCELLED": "CANCELLED"}.get(kind, "FAILED")  # fmt: skip
        payment["payment_status"] = status
        return self._event(kind, {**payment, "payment_status": status, "retry_attempts": 0})

    def refund_event(self, refund_id: str, status: str = "SUCCESS",
                     kind: str = "SUBSCRIPTION_REFUND_STATUS") -> dict[str, Any]:  # fmt: skip
        refund = self.refunds[refund_id]
        refund["refund_status"] = status
        data = {"refund": dict(refund)} if kind == "REFUND_STATUS_WEBHOOK" else dict(refund)
        return self._event(kind, data)

    def _event(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        at = self.now.astimezone(IST).isoformat(timespec="seconds")
        return {"data": data, "event_time": at, "type": kind}

    def notification(
        self, event: dict[str, Any], *, at: datetime | None = None, secret: str = CLIENT_SECRET
    ) -> tuple[bytes, dict[str, str]]:
        """`event` as Cashfree posts it: the raw body and its headers (x-webhook-signature
        over the millisecond x-webhook-timestamp and the body)."""
        body = json.dumps(event, default=float).encode()
        return self.signed(body, at=at, secret=secret)

    def signed(
        self, body: bytes, *, at: datetime | None = None, secret: str = CLIENT_SECRET
    ) -> tuple[bytes, dict[str, str]]:
        stamp = str(int((at or self.now).timestamp() * 1000))
        digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        return body, {
            "content-type": "application/json",
            "x-webhook-attempt": "1",
            "x-webhook-signature": base64.b64encode(digest).decode(),
            "x-webhook-timestamp": stamp,
            "x-webhook-version": API_VERSION,
        }

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
            "payment_status": "FAILED" if subscription.declines else subscription.settles,
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
