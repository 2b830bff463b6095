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

API_KEY = "mh_test_meterline_api_key_7781"
SIGNATURE_KEY = "mh_signature_key_meterline_0042"
CUSTOMER = "7c9a2f1e-8d3b-4b6a-9c1d-2e5f6a7b8c9d"
CARD_TOKEN = "9f0e1d2c-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
INTENTS = "/api/v1.1/payments/intent/"
INTENT_FIELDS = {
    "amount", "amount_currency", "operation", "customer", "card_token",
    "merchant_initiated", "payment_type", "recurring_data", "custom_fields",
}  # fmt: skip


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
        self.intents[intent_id] = {**intent, "refunded": Decimal(0)}
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


@contextmanager
def fake_moneyhash() -> Iterator[FakeMoneyhash]:
    fake = FakeMoneyhash()
    with fake.server.running():
        yield fake
