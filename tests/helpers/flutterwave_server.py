"""A local HTTP server that answers as Flutterwave's API v3 documents, and checks what
it gets.

Every request must carry `Authorization: Bearer <secret key>` (401 otherwise).
`POST /v3/tokenized-charges` must be exactly {token, email, currency, amount, tx_ref,
narration}, with `amount` a JSON number in the currency's major unit (never a string)
and the email the token was saved with; a `tx_ref` already used is refused as a
duplicate, as `tx_ref` is Flutterwave's unique transaction reference. A card set up
with `declines=True` makes a `failed` transaction. `verify_by_reference` finds a
transaction by `tx_ref`; a refund names a successful transaction and not more than it.
`POST /v3/payments` (Flutterwave Standard) must be {tx_ref, amount, currency,
redirect_url, customer: {email, name?}, customizations?, meta?}; it answers the hosted
link (`data.link`, on this server), the same page again for the same request under the
same `tx_ref`, and refuses a `tx_ref` already used otherwise. `pay_page(tx_ref)` is the
customer paying (or failing) on that page. `server.script(...)` /
`server.lose_answers(...)` fail before / after the effect.

`charge_webhook(tx_ref)` / `refund_webhook(refund id)` build the webhook Flutterwave
posts (v3: `{"event", "data", "event.type"}` with the `verif-hash` header set to the
dashboard's secret hash): raw body and headers.
"""

from __future__ import annotations

import json
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
PAYMENTS = "/v3/payments"
CHARGE_FIELDS = {"token", "email", "currency", "amount", "tx_ref", "narration"}
PAGE_REQUIRED = {"tx_ref", "amount", "currency", "redirect_url", "customer"}
PAGE_FIELDS = PAGE_REQUIRED | {"customizations", "meta"}


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
        self.pages: dict[str, dict[str, Any]] = {}  # by tx_ref: the request and its link
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
            parts = request.path.strip("/").split("/")
            if request.method == "GET" and len(parts) == 4 and parts[3] == "verify":
                by_id = {str(t["id"]): t for t in self.transactions.values()}
                found = by_id.get(parts[2]) if parts[:2] == ["v3", "transactions"] else None
                if found is None:
                    return _error(400, "No transaction was found for this id")
                return _success("Transaction fetched successfully", found)
            if request.method != "POST":
                return _error(404, f"no route {request.path}")
            if not request.headers.get("content-type", "").startswith("application/json"):
                return _error(400, "Content-Type must be application/json")
            if request.path == CHARGE:
                return self._charge(request.json())
            if request.path == PAYMENTS:
                return self._page(request.json())
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
        transaction = self._transaction(
            body["tx_ref"], amount, body["currency"], body["email"], not card.declines
        )
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
                  "flw_ref": found["flw_ref"], "amount_refunded": amount,
                  "status": "completed", "destination": "payment_source",
                  "created_at": "2026-11-04T10:00:00.000Z"}  # fmt: skip
        self.refunds.append(refund)
        return _success("Transaction refund initiated", refund)

    def _page(self, body: dict[str, Any]) -> Response:
        problems = [f"unexpected field {k}" for k in sorted(set(body) - PAGE_FIELDS)]
        problems += [f"missing field {k}" for k in sorted(PAGE_REQUIRED - set(body))]
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0:
            problems.append("amount must be a positive number")
        customer = body.get("customer")
        if not isinstance(customer, dict) or not customer.get("email"):
            problems.append("customer.email is required")
        elif set(customer) - {"email", "name", "phonenumber"}:
            problems.append("customer is {email, name?, phonenumber?}")
        if not str(body.get("redirect_url", "")).startswith(("http://", "https://")):
            problems.append("redirect_url must be an http(s) URL")
        if problems:
            return _error(400, "; ".join(problems))
        tx_ref = body["tx_ref"]
        page = self.pages.get(tx_ref)
        if page is None:
            if tx_ref in self.transactions:
                return _error(400, "Duplicate transaction reference")
            page = {"request": body, "link": f"{self.url}/v3/hosted/pay/{len(self.pages) + 1:08x}"}
            self.pages[tx_ref] = page
        elif page["request"] != body:
            return _error(400, "Duplicate transaction reference")
        return _success("Hosted Link", {"link": page["link"]})

    def _transaction(
        self, tx_ref: str, amount: Decimal, currency: str, email: str, succeeds: bool
    ) -> dict[str, Any]:
        number = len(self.transactions) + 1
        transaction: dict[str, Any] = {
            "id": 277036700 + number,
            "tx_ref": tx_ref,
            "flw_ref": f"FLW-MOCK-{number:04d}",
            "amount": amount,
            "currency": currency,
            "status": "successful" if succeeds else "failed",
            "processor_response": "Approved" if succeeds else "Insufficient funds",
            "refunded": Decimal(0),
            "customer_email": email,
        }
        self.transactions[tx_ref] = transaction
        return transaction

    # -- what customers do, and what Flutterwave posts ------------------------------------

    def pay_page(self, tx_ref: str, *, success: bool = True) -> int:
        """The customer pays (or fails to) on the page of `tx_ref`: the transaction id."""
        with self._lock:
            request = self.pages[tx_ref]["request"]
            assert tx_ref not in self.transactions, f"{tx_ref} is paid already"
            transaction = self._transaction(
                tx_ref,
                request["amount"],
                request["currency"],
                request["customer"]["email"],
                success,
            )
            return int(transaction["id"])

    def charge_webhook(
        self, tx_ref: str, *, status: str | None = None, secret_hash: str = SECRET_HASH
    ) -> tuple[bytes, dict[str, str]]:
        """The `charge.completed` webhook of the transaction of `tx_ref`, as v3 posts it."""
        found = self.transactions[tx_ref]
        data = {
            "id": found["id"],
            "tx_ref": tx_ref,
            "flw_ref": found["flw_ref"],
            "device_fingerprint": "N/A",
            "amount": found["amount"],
            "currency": found["currency"],
            "charged_amount": found["amount"],
            "app_fee": Decimal("1.4"),
            "merchant_fee": 0,
            "processor_response": found["processor_response"],
            "auth_model": "PIN",
            "ip": "197.210.64.96",
            "narration": "CARD Transaction ",
            "status": status or found["status"],
            "payment_type": "card",
            "created_at": "2026-11-03T10:00:00.000Z",
            "account_id": 17321,
            "customer": {"id": 215604089, "name": "Acme Billing", "phone_number": None,
                         "email": found["customer_email"],
                         "created_at": "2026-11-03T09:59:00.000Z"},
        }  # fmt: skip
        event = {"event": "charge.completed", "data": data, "event.type": "CARD_TRANSACTION"}
        return _post(event, secret_hash)

    def refund_webhook(
        self, refund_id: int, *, status: str = "completed", secret_hash: str = SECRET_HASH
    ) -> tuple[bytes, dict[str, str]]:
        """The `refund.completed` webhook of refund `refund_id`, as v3 posts it."""
        refund = next(r for r in self.refunds if r["id"] == refund_id)
        data = {
            "id": refund_id,
            "AmountRefunded": refund["amount_refunded"],
            "status": status,
            "FlwRef": refund["flw_ref"],
            "destination": "payment_source",
            "comments": "Refund",
            "settlement_id": "NEW",
            "meta": "{}",
            "createdAt": "2026-11-04T10:00:00.000Z",
            "updatedAt": "2026-11-04T10:00:05.000Z",
            "walletId": 17300,
            "AccountId": 17321,
            "TransactionId": refund["tx_id"],
        }
        return _post({"event": "refund.completed", "data": data}, secret_hash)


def _post(event: dict[str, Any], secret_hash: str) -> tuple[bytes, dict[str, str]]:
    # Flutterwave's numbers are JSON doubles; the hash is the header, not a signature.
    body = json.dumps(event, default=float).encode()
    return body, {"Content-Type": "application/json", "verif-hash": secret_hash}


@contextmanager
def fake_flutterwave() -> Iterator[FakeFlutterwave]:
    fake = FakeFlutterwave()
    with fake.server.running():
        yield fake
