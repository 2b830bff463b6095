"""A local HTTP server that answers as MoneyHash's API v1.1 documents, and checks what
it gets.

Every request must carry `X-Api-Key: <API key>` (401 otherwise); every POST a JSON body
and an `X-Idempotency-Key` that is a version-4 UUID (400 otherwise). A key seen before
(with the same API key) is answered with the first response and creates nothing; the
same key with another body is refused. `POST /api/v1.1/payments/intent/` must be exactly
a merchant-initiated purchase on a card token stored for that customer under that
agreement, `amount` a JSON number with at most the currency's decimals. A card stored
with `declines=True` makes an intent whose transaction is `purchase.failed`.
`POST …/intent/{id}/refund/` takes {amount} of a PROCESSED intent, not more than is left.
Answers are MoneyHash's envelope: {"status": {code, message, errors}, "data": {…}}.
`server.script(...)` / `server.lose_answers(...)` fail before / after the effect.

An intent without a `card_token` is the hosted checkout: a purchase with
`custom_fields`, and optionally billing_data (first_name, last_name, email,
phone_number), customer, successful/failed redirect URLs, webhook_url and
`expires_after_seconds` (a positive integer); it is answered UNPROCESSED with an
`embed_url` on this server. A test plays the payer with `pay(intent_id)` (the two
events MoneyHash sends: transaction.purchase.successful, then intent.processed),
`fail(intent_id)` and `expire(intent_id)`, and settles a refund with
`settle_refund(refund_id)`. Each event comes as MoneyHash posts it: the JSON body and
a `MoneyHash-Signature: t=<unix seconds>,v1=…,v2=…,v3=<hex>` header, v3 being HMAC-
SHA256 under the signature key of base64(body) + t, written out here apart from the
adapter's code (v1 and v2, which the adapter ignores, are filled with other digests).
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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.helpers.loopback import IdempotencyKeys, LoopbackServer, Request, Response

API_KEY = "mh_test_meterline_api_key_7781"
SIGNATURE_KEY = "mh_signature_key_meterline_0042"
CUSTOMER = "7c9a2f1e-8d3b-4b6a-9c1d-2e5f6a7b8c9d"
CARD_TOKEN = "9f0e1d2c-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
INTENTS = "/api/v1.1/payments/intent/"
INTENT_FIELDS = {
    "amount", "amount_currency", "operation", "customer", "card_token",
    "merchant_initiated", "payment_type", "recurring_data", "custom_fields",
}  # fmt: skip
HOSTED_FIELDS = {"amount", "amount_currency", "operation", "custom_fields"}
HOSTED_OPTIONAL = {
    "billing_data", "customer", "successful_redirect_url", "failed_redirect_url",
    "expires_after_seconds", "webhook_url",
}  # fmt: skip
BILLING_FIELDS = {"first_name", "last_name", "email", "phone_number"}
EMBED = "/embed/payment/"
Notification = tuple[bytes, dict[str, str]]


@dataclass
class StoredCard:
    customer: str
    agreement: str
    declines: bool = False


def _envelope(code: int, data: dict[str, Any], message: str = "success") -> Response:
    return Response(
        code,
        {
            "status": {"code": code, "message": message, "errors": []},
            "data": data,
            "count": None,
            "next": None,
            "previous": None,
        },
    )


def _error(code: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    return Response(
        code, {"status": {"code": code, "message": message, "errors": errors or []}, "data": {}}
    )


def _uuid4(value: str | None) -> bool:
    try:
        return (
            value is not None and uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
        )
    except ValueError:
        return False


class FakeMoneyhash:
    def __init__(self) -> None:
        self.server = LoopbackServer(self.app)
        self.cards: dict[str, StoredCard] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # when events are signed
        self._keys = IdempotencyKeys()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url

    def store_card(
        self, token: str, customer: str, *, agreement: str | None = None, declines: bool = False
    ) -> None:
        self.cards[token] = StoredCard(customer, agreement or customer, declines)

    def posts(self, path: str = INTENTS) -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    def pay(self, intent_id: str) -> list[Notification]:
        """The payer pays on the hosted checkout: the intent PROCESSED, and the two
        events MoneyHash then posts, in its order."""
        with self._lock:
            intent = self.intents[intent_id]
            transaction = self._transaction(intent, "purchase.successful")
            intent["status"] = "PROCESSED"
            return [
                self._transaction_event("transaction.purchase.successful", intent, transaction),
                self._intent_event("intent.processed", intent),
            ]

    def fail(self, intent_id: str) -> Notification:
        """The payer's card is declined on the checkout (the intent stays open)."""
        with self._lock:
            intent = self.intents[intent_id]
            transaction = self._transaction(intent, "purchase.failed")
            return self._transaction_event("transaction.purchase.failed", intent, transaction)

    def expire(self, intent_id: str) -> Notification:
        """`expires_after_seconds` ran out before anyone paid."""
        with self._lock:
            intent = self.intents[intent_id]
            intent["status"] = "TIME_EXPIRED"
            return self._intent_event("intent.time_expired", intent)

    def settle_refund(self, refund_id: str, status: str = "successful") -> Notification:
        """The refund's transaction event (`transaction.refund.successful` / `.failed`)."""
        with self._lock:
            refund = next(r for r in self.refunds if r["id"] == refund_id)
            intent = self.intents[refund["intent_id"]]
            transaction = {"type": "payment", "id": f"tx-refund-{refund_id}",
                           "status": f"refund.{status}", "amount": refund["amount"],
                           "operation": "refund"}  # fmt: skip
            return self._transaction_event(
                f"transaction.refund.{status}", intent, transaction, operation=refund_id
            )

    def notification(self, event: dict[str, Any]) -> Notification:
        """`event` as MoneyHash posts it, signed at `self.now`."""
        body = json.dumps(event, default=float).encode()
        stamp = str(int(self.now.timestamp()))
        v3 = signature_v3(body, stamp)
        v1 = hashlib.sha256(body).hexdigest()  # not what the adapter checks
        v2 = hashlib.sha256(stamp.encode() + body).hexdigest()
        header = f"t={stamp},v1={v1},v2={v2},v3={v3}"
        return body, {"Content-Type": "application/json", "MoneyHash-Signature": header}

    def _transaction(self, intent: dict[str, Any], status: str) -> dict[str, Any]:
        transaction = {
            "type": "payment",
            "id": f"tx-{intent['id']}-{len(intent['transactions']) + 1}",
            "created": self.now.isoformat(),
            "status": status,
            "billing_data": intent.get("billing_data"),
            "amount": intent["amount"],
        }
        intent["transactions"].append(transaction)
        intent["active_transaction"] = transaction
        return transaction

    def _transaction_event(
        self,
        kind: str,
        intent: dict[str, Any],
        transaction: dict[str, Any],
        *,
        operation: str | None = None,
    ) -> Notification:
        number = len(intent["transactions"])
        event = {
            "type": kind,
            "status_id": f"st-{transaction['id']}-{transaction['status']}",
            "operation_id": operation or f"op{number:02d}{intent['id']}",
            "intent": {
                "id": intent["id"],
                "created": intent["created"],
                "custom_fields": intent["custom_fields"],
                "amount": intent["amount"],
            },
            "account": {"id": "gy0y7KL"},
            "transaction": transaction,
        }
        return self.notification(event)

    def _intent_event(self, kind: str, intent: dict[str, Any]) -> Notification:
        shown = {k: v for k, v in intent.items() if k not in ("refunded", "transactions")}
        shown["amount"] = intent["amount"]["value"]  # intent events: a scalar amount
        shown["amount_currency"] = intent["amount"]["currency"]
        event = {
            "type": kind,
            "intent_type": "PAYMENT",
            "data": {"intent_id": intent["id"], "intent": shown},
        }
        return self.notification(event)

    def app(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return _error(401, "Authentication credentials were not provided.")
        if request.method != "POST":
            return _error(404, f"no route {request.method} {request.path}")
        key = request.headers.get("x-idempotency-key")
        if not _uuid4(key):
            return _error(400, "Invalid idempotency key, it must be a valid UUID v4")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "Content-Type must be application/json")
        body = request.json()
        mismatch = _error(422, "Idempotency key already used for a different request")
        with self._lock:
            if request.path == INTENTS:
                return self._keys.once(str(key), body, lambda: self._intent(body), mismatch)
            parts = request.path.strip("/").split("/")
            if (
                len(parts) == 6
                and parts[:4] == ["api", "v1.1", "payments", "intent"]
                and (parts[5] == "refund")
            ):
                return self._keys.once(
                    str(key), body, lambda: self._refund(parts[4], body), mismatch
                )
            return _error(404, f"no route {request.path}")

    def _intent(self, body: dict[str, Any]) -> Response:
        if "card_token" not in body:
            return self._hosted(body)
        if set(body) - {"webhook_url"} != INTENT_FIELDS:
            return _error(
                400, "Invalid data", [{"__all__": [f"fields must be {sorted(INTENT_FIELDS)}"]}]
            )
        amount = body["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0:
            return _error(400, "Invalid data", [{"amount": ["A valid number is required."]}])
        if isinstance(amount, Decimal) and -amount.as_tuple().exponent > 2:  # type: ignore[operator]
            return _error(400, "Invalid data", [{"amount": ["Max 2 decimal places."]}])
        if (body["operation"], body["merchant_initiated"], body["payment_type"]) != (
            "purchase",
            True,
            "UNSCHEDULED",
        ):
            return _error(400, "Invalid data", [{"merchant_initiated": ["an MIT purchase only"]}])
        card = self.cards.get(body["card_token"])
        if card is None or card.customer != body["customer"]:
            return _error(400, "Invalid data", [{"card_token": ["Card token not found."]}])
        if (body.get("recurring_data") or {}).get("agreement_id") != card.agreement:
            return _error(400, "Invalid data", [{"recurring_data": ["Unknown agreement_id."]}])
        intent_id = f"Z{len(self.intents) + 1:02d}mhIntent"
        transaction = {
            "id": f"tx-{len(self.intents) + 1:04d}",
            "status": "purchase.failed" if card.declines else "purchase.successful",
            "external_action_message": "Insufficient funds" if card.declines else None,
        }
        intent = {
            "id": intent_id,
            "status": "UNPROCESSED" if card.declines else "PROCESSED",
            "amount": {"value": amount, "currency": body["amount_currency"]},
            "active_transaction": transaction,
            "custom_fields": body["custom_fields"],
        }
        self.intents[intent_id] = {
            **intent,
            "created": self.now.isoformat(),
            "refunded": Decimal(0),
            "transactions": [transaction],
        }
        return _envelope(201, intent)

    def _hosted(self, body: dict[str, Any]) -> Response:
        """An intent the payer completes on MoneyHash's checkout (embed_url)."""
        if not HOSTED_FIELDS <= set(body) <= HOSTED_FIELDS | HOSTED_OPTIONAL:
            return _error(
                400,
                "Invalid data",
                [
                    {
                        "__all__": [
                            f"fields must be {sorted(HOSTED_FIELDS)} + {sorted(HOSTED_OPTIONAL)}"
                        ]
                    }
                ],
            )
        amount = body["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0:
            return _error(400, "Invalid data", [{"amount": ["A valid number is required."]}])
        if isinstance(amount, Decimal) and -amount.as_tuple().exponent > 2:  # type: ignore[operator]
            return _error(400, "Invalid data", [{"amount": ["Max 2 decimal places."]}])
        if body["operation"] != "purchase" or not isinstance(body["custom_fields"], dict):
            return _error(400, "Invalid data", [{"operation": ["purchase, with custom_fields"]}])
        seconds = body.get("expires_after_seconds", 1)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            return _error(400, "Invalid data", [{"expires_after_seconds": ["A positive integer."]}])
        billing = body.get("billing_data", {})
        if not isinstance(billing, dict) or not set(billing) <= BILLING_FIELDS:
            return _error(
                400, "Invalid data", [{"billing_data": [f"keys {sorted(BILLING_FIELDS)}"]}]
            )
        for field in ("successful_redirect_url", "failed_redirect_url", "webhook_url"):
            if field in body and not str(body[field]).startswith(("http://", "https://")):
                return _error(400, "Invalid data", [{field: ["Enter a valid URL."]}])
        intent_id = f"H{len(self.intents) + 1:02d}mhIntent"
        intent = {
            "id": intent_id,
            "status": "UNPROCESSED",
            "amount": {"value": amount, "currency": body["amount_currency"]},
            "embed_url": f"{self.url}{EMBED}{intent_id}/",
            "custom_fields": body["custom_fields"],
            "billing_data": billing,
            "active_transaction": None,
        }
        self.intents[intent_id] = {
            **intent,
            "created": self.now.isoformat(),
            "refunded": Decimal(0),
            "transactions": [],
        }
        return _envelope(201, intent)

    def _refund(self, intent_id: str, body: dict[str, Any]) -> Response:
        intent = self.intents.get(intent_id)
        if intent is None or intent["status"] != "PROCESSED":
            return _error(400, "The intent is not processed and cannot be refunded")
        amount = body.get("amount")
        if (
            set(body) != {"amount"}
            or isinstance(amount, bool)
            or not isinstance(amount, int | Decimal)
        ):
            return _error(400, "Invalid data", [{"amount": ["A valid number is required."]}])
        if intent["refunded"] + amount > intent["amount"]["value"]:
            return _error(400, "Refund amount exceeds the refundable amount")
        intent["refunded"] += amount
        refund = {"id": f"rf-{len(self.refunds) + 1:04d}", "status": "refund.successful",
                  "amount": amount, "intent_id": intent_id}  # fmt: skip
        self.refunds.append(refund)
        return _envelope(201, refund)


def signature_v3(body: bytes, stamp: str, key: str = SIGNATURE_KEY) -> str:
    """MoneyHash's documented v3: hex HMAC-SHA256 of base64(raw body) then the timestamp."""
    message = base64.b64encode(body).decode("ascii") + stamp
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


@contextmanager
def fake_moneyhash() -> Iterator[FakeMoneyhash]:
    fake = FakeMoneyhash()
    with fake.server.running():
        yield fake
