"""A local HTTP server that answers as Flutterwave's API v3 documents, and checks what
it gets.

Every request must carry `Authorization: Bearer <secret key>` (401 otherwise).
`POST /v3/tokenized-charges` must be exactly {token, email, currency, amount, tx_ref,
narration}, with `amount` a JSON number in the currency's major unit (never a string)
and the email the token was saved with; a `tx_ref` already used is refused as a
duplicate, as `tx_ref` is Flutterwave's unique transaction reference. A card set up
with `declines=True` makes a `failed` transaction. `verify_by_reference` finds a
transaction by `tx_ref`; a refund names a successful transaction and not more than it.
`server.script(...)` / `server.lose_answers(...)` fail before / after the effect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.helpers.loopback import LoopbackServer, Request, Response

SECRET_KEY = "FLWSECK_TEST-meterline0000000000000000-X"
SECRET_HASH = "meterline-flw-hash-5521"
TOKEN = "flw-t1nf-5b0f12d565cd961f73c51370b1340f1f-m03k"
CHARGE = "/v3/tokenized-charges"
VERIFY = "/v3/transactions/verify_by_reference"
CHARGE_FIELDS = {"token", "email", "currency", "amount", "tx_ref", "narration"}


@dataclass
class Card:
    email: str
    declines: bool = False


def _error(status: int, message: str) -> Response:
    return Response(status, {"status": "error", "message": message, "data": None})


def _success(message: str, data: dict[str, Any]) -> Response:
    return Response(200, {"status": "success", "message": message, "data": data})


class FakeFlutterwave:
    def __init__(self) -> None:
        self.server = LoopbackServer(self.app)
        self.cards: dict[str, Card] = {}
        self.transactions: dict[str, dict[str, Any]] = {}  # by tx_ref
        self.refunds: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url

    def add_card(self, token: str, email: str, *, declines: bool = False) -> None:
        self.cards[token] = Card(email, declines)

    def posts(self, path: str = CHARGE) -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    def app(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return _error(401, "Invalid authorization key")
        with self._lock:
            if request.method == "GET" and request.path == VERIFY:
                found = self.transactions.get((request.query.get("tx_ref") or [""])[0])
                if found is None:
                    return _error(400, "No transaction was found for this id")
                return _success("Transaction fetched successfully", found)
            if request.method != "POST":
                return _error(404, f"no route {request.path}")
            if not request.headers.get("content-type", "").startswith("application/json"):
                return _error(400, "Content-Type must be application/json")
            if request.path == CHARGE:
                return self._charge(request.json())
            parts = request.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["v3", "transactions"] and parts[3] == "refund":
                return self._refund(parts[2], request.json())
            return _error(404, f"no route {request.path}")

    def _charge(self, body: dict[str, Any]) -> Response:
        if set(body) != CHARGE_FIELDS:
            return _error(400, f"fields must be exactly {sorted(CHARGE_FIELDS)}")
        amount = body["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0:
            return _error(400, "amount must be a positive number")
        card = self.cards.get(body["token"])
        if card is None or card.email != body["email"]:
            return _error(400, "Token not found for this email")
        if body["tx_ref"] in self.transactions:
            return _error(400, "Duplicate transaction reference")
        transaction: dict[str, Any] = {
            "id": 277036700 + len(self.transactions) + 1,
            "tx_ref": body["tx_ref"],
            "flw_ref": f"FLW-MOCK-{len(self.transactions) + 1:04d}",
            "amount": amount,
            "currency": body["currency"],
            "status": "failed" if card.declines else "successful",
            "processor_response": "Insufficient funds" if card.declines else "Approved",
            "refunded": Decimal(0),
        }
        self.transactions[body["tx_ref"]] = transaction
        if card.declines:
            return Response(400, {"status": "error", "message": "Insufficient funds",
                                  "data": transaction})  # fmt: skip
        return _success("Charge successful", transaction)

    def _refund(self, transaction_id: str, body: dict[str, Any]) -> Response:
        found = next(
            (t for t in self.transactions.values() if str(t["id"]) == transaction_id), None
        )
        if found is None or found["status"] != "successful":
            return _error(400, "Transaction not found or not successful")
        amount = body.get("amount")
        if (
            set(body) != {"amount"}
            or isinstance(amount, bool)
            or not isinstance(amount, int | Decimal)
        ):
            return _error(400, "a refund is {amount}")
        if found["refunded"] + amount > found["amount"]:
            return _error(400, "Refund amount exceeds the transaction amount")
        found["refunded"] += amount
        refund = {"id": 75900 + len(self.refunds) + 1, "tx_id": found["id"],
                  "amount_refunded": amount, "status": "completed"}  # fmt: skip
        self.refunds.append(refund)
        return _success("Transaction refund initiated", refund)


@contextmanager
def fake_flutterwave() -> Iterator[FakeFlutterwave]:
    fake = FakeFlutterwave()
    with fake.server.running():
        yield fake
