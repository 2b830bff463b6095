"""A local HTTP server that answers as Tap Payments' API v2 documents, and checks what
it gets.

Every request must carry `Authorization: Bearer <secret key>` (401 otherwise) and a
JSON body. `POST /v2/tokens` takes exactly {saved_card: {card_id, customer_id}} of a
card saved on that customer and answers a one-use token. `POST /v2/charges` must be
exactly the merchant-initiated shape (customer_initiated false, threeDSecure false,
save_card false, the card's payment_agreement, the token's customer, amount a JSON
number in the major unit at the currency's precision); a token is used once. A
`reference.idempotent` seen before is answered with the first response and creates
nothing, whatever the token (Tap keys on the idempotent string). A card saved with
`declines=True` makes a DECLINED charge. `POST /v2/refunds` names a CAPTURED charge and
not more than is left of it, also under `reference.idempotent`.
`server.script(...)` / `server.lose_answers(...)` fail before / after the effect of
the next requests, whatever their path; `fail_next(path, …)` / `lose_next(path, …)` do
so for one path only (a charge is preceded by its token request).

The hosted page is a customer-initiated `POST /v2/charges` on `source.id: src_all`: it
must be exactly that shape (threeDSecure true, a customer with an id or a first name and
an email or phone, redirect.url, transaction.expiry of 5 to 60 MINUTE, the reference
with `idempotent`), and is answered INITIATED with `transaction.url` on this server
and `transaction.created` from `fake.now`. A test plays the payer with `pay(charge_id)`
/ `pay(charge_id, "DECLINED")`, and `settle_refund(refund_id)`; each gives the post Tap
would make (`notification(obj)`): the object's JSON as body and a `hashstring` header,
hex HMAC-SHA256 under the secret key of Tap's documented `x_id…x_created…` string,
written out here apart from the adapter's code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.helpers.loopback import LoopbackServer, Request, Response

SECRET_KEY = "sk_test_meterlineTap0000000042"
CUSTOMER = "cus_TS01A0520231538Ps321805785"
CARD = "card_gv7U4235591d8l21OQ4u663"
AGREEMENT = "payment_agreement_TS05A1920230911b2K12105431"
TOKENS = "/v2/tokens"
CHARGES = "/v2/charges"
REFUNDS = "/v2/refunds"
CHARGE_FIELDS = {
    "amount", "currency", "customer_initiated", "threeDSecure", "save_card",
    "payment_agreement", "customer", "source", "description", "reference", "metadata",
}  # fmt: skip
HOSTED_FIELDS = {
    "amount", "currency", "customer_initiated", "threeDSecure", "save_card", "description",
    "reference", "metadata", "customer", "source", "redirect", "transaction",
}  # fmt: skip
HOSTED_SOURCES = {"src_all", "src_card"}
PAGE = "/gosell/v2/payment/tap_process.aspx"
REFUND_FIELDS = {"charge_id", "amount", "currency", "reason", "reference", "metadata"}
DECIMALS = {"KWD": 3, "BHD": 3, "OMR": 3, "JPY": 0}


@dataclass
class Card:
    customer: str
    agreement: str
    declines: bool = False


def _errors(status: int, code: str, description: str) -> Response:
    return Response(status, {"errors": [{"code": code, "description": description}]})


def _exact_amount(amount: Any, currency: str) -> bool:
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0:
        return False
    decimals = DECIMALS.get(currency, 2)
    return isinstance(amount, int) or -amount.as_tuple().exponent <= decimals  # type: ignore[operator]


class FakeTap:
    def __init__(self) -> None:
        self.server = LoopbackServer(self.app)
        self.cards: dict[str, Card] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # what `created` stamps say
        self._idempotent: dict[str, tuple[Any, Response]] = {}
        self._before: defaultdict[str, deque[Response]] = defaultdict(deque)
        self._after: defaultdict[str, deque[Response]] = defaultdict(deque)
        self._lock = threading.Lock()

    def fail_next(self, path: str, *responses: Response) -> None:
        """Answer the next requests to `path` with these, before any effect."""
        self._before[path].extend(responses)

    def lose_next(self, path: str, *responses: Response) -> None:
        """Let the next requests to `path` take effect, then answer these instead."""
        self._after[path].extend(responses)

    @property
    def url(self) -> str:
        return self.server.url

    def save_card(
        self, card: str, customer: str, agreement: str, *, declines: bool = False
    ) -> None:
        self.cards[card] = Card(customer, agreement, declines)

    def posts(self, path: str = CHARGES) -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    def pay(self, charge_id: str, status: str = "CAPTURED") -> tuple[bytes, dict[str, str]]:
        """The payer finishes on the hosted page (CAPTURED, or DECLINED, CANCELLED …):
        the charge as Tap then holds it, and the post Tap makes about it."""
        with self._lock:
            charge = self.charges[charge_id]
            number = list(self.charges).index(charge_id) + 1
            charge["status"] = status
            charge["reference"] = {
                **charge["reference"],
                "gateway": "123456789",
                "payment": f"42222302030514764{number:02d}",
            }
            charge["response"] = (
                {"code": "000", "message": "Captured"}
                if status == "CAPTURED"
                else {"code": "051", "message": status.capitalize()}
            )
            return self.notification(charge)

    def settle_refund(
        self, refund_id: str, status: str = "REFUNDED"
    ) -> tuple[bytes, dict[str, str]]:
        """The bank pays the refund out (REFUNDED) or refuses it (FAILED): Tap's post."""
        with self._lock:
            refund = next(r for r in self.refunds if r["id"] == refund_id)
            refund["status"] = status
            return self.notification(refund)

    def notification(self, obj: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """Tap's post of a charge or refund: the object as JSON (amounts as doubles, as
        Tap's Java writes them) and its `hashstring` header."""
        shown = {k: v for k, v in obj.items() if k != "refunded"}
        body = json.dumps(shown, default=float).encode()
        return body, {"Content-Type": "application/json", "hashstring": hashstring(shown)}

    def app(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return _errors(401, "2107", "Invalid API key")
        if request.method != "POST" or request.path not in (TOKENS, CHARGES, REFUNDS):
            return _errors(404, "404", f"no route {request.method} {request.path}")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _errors(400, "1100", "Content-Type must be application/json")
        with self._lock:
            if self._before[request.path]:
                return self._before[request.path].popleft()
            answer = self._handle(request.path, request.json())
            lost = self._after[request.path]
            return lost.popleft() if lost else answer

    def _handle(self, path: str, body: dict[str, Any]) -> Response:
        """Called with the lock held."""
        if path == TOKENS:
            return self._token(body)
        idempotent = (body.get("reference") or {}).get("idempotent")
        if not idempotent:
            return _errors(400, "1110", "reference.idempotent is required here")
        # Tap keys on the idempotent string alone; a new token for the same charge
        # (a second pass after a crash) is answered like the first.
        comparable = {**body, "source": None}
        if idempotent in self._idempotent:
            seen, answer = self._idempotent[idempotent]
            if seen != comparable:
                return _errors(400, "1120", "idempotent string reused for another request")
            return answer
        answer = self._charge(body) if path == CHARGES else self._refund(body)
        self._idempotent[idempotent] = (comparable, answer)
        return answer

    def _token(self, body: dict[str, Any]) -> Response:
        saved = body.get("saved_card") if set(body) == {"saved_card"} else None
        if not isinstance(saved, dict) or set(saved) != {"card_id", "customer_id"}:
            return _errors(
                400, "1130", "a token from a saved card is {saved_card: {card_id, customer_id}}"
            )
        card = self.cards.get(saved["card_id"])
        if card is None or card.customer != saved["customer_id"]:
            return _errors(400, "1131", "Card not found for this customer")
        token = {"id": f"tok_meterline{len(self.tokens) + 1:04d}", "object": "token",
                 "customer": card.customer, "card_id": saved["card_id"], "used": False}  # fmt: skip
        self.tokens[token["id"]] = token
        return Response(200, token)

    def _charge(self, body: dict[str, Any]) -> Response:
        if (body.get("source") or {}).get("id") in HOSTED_SOURCES:
            return self._hosted(body)
        if set(body) != CHARGE_FIELDS:
            return _errors(400, "1101", f"fields must be exactly {sorted(CHARGE_FIELDS)}")
        if body["customer_initiated"] is not False or body["threeDSecure"] is not False:
            return _errors(400, "1117", "a merchant-initiated charge is not customer initiated")
        if body["save_card"] is not False:
            return _errors(400, "1118", "save_card must be false")
        if not _exact_amount(body["amount"], body["currency"]):
            return _errors(
                400, "1102", "amount must be a positive number at the currency's decimals"
            )
        token = self.tokens.get((body.get("source") or {}).get("id", ""))
        if token is None:
            return _errors(400, "1125", "Invalid source id")
        if token["used"]:
            return _errors(400, "1126", "Source already used")
        customer = (body.get("customer") or {}).get("id")
        if customer != token["customer"]:
            return _errors(400, "1127", "The token belongs to another customer")
        card = self.cards[token["card_id"]]
        if (body.get("payment_agreement") or {}).get("id") != card.agreement:
            return _errors(400, "1216", "Agreement id is missing")
        token["used"] = True
        number = len(self.charges) + 1
        charge = {
            "id": f"chg_TS0{number}A4020230203x2XZ2205881",
            "object": "charge",
            "customer_initiated": False,
            "status": "DECLINED" if card.declines else "CAPTURED",
            "amount": body["amount"],
            "currency": body["currency"],
            "reference": {
                **body["reference"],
                "gateway": "123456789",
                "payment": f"42222302030514764{number:02d}",
            },
            "response": {"code": "051", "message": "Insufficient Funds"}
            if card.declines
            else {"code": "000", "message": "Captured"},
            "customer": {"id": customer},
            "source": {"object": "token", "id": token["id"]},
            "payment_agreement": {"id": card.agreement},
            "metadata": body["metadata"],
            "refunded": Decimal(0),
        }
        self.charges[charge["id"]] = charge
        return Response(200, {k: v for k, v in charge.items() if k != "refunded"})

    def _hosted(self, body: dict[str, Any]) -> Response:
        """A charge on Tap's hosted page, INITIATED until the payer acts (`pay`)."""
        if set(body) - {"post"} != HOSTED_FIELDS:
            return _errors(400, "1101", f"fields must be {sorted(HOSTED_FIELDS)} (+ post)")
        if (body["customer_initiated"], body["threeDSecure"], body["save_card"]) != (
            True,
            True,
            False,
        ):
            return _errors(400, "1117", "a hosted charge is customer initiated, with 3-D Secure")
        if not _exact_amount(body["amount"], body["currency"]):
            return _errors(
                400, "1102", "amount must be a positive number at the currency's decimals"
            )
        customer = body["customer"] if isinstance(body["customer"], dict) else {}
        if not customer.get("id") and not (
            customer.get("first_name") and (customer.get("email") or customer.get("phone"))
        ):
            return _errors(400, "1105", "customer first_name and email or phone are required")
        redirect = body["redirect"] if isinstance(body["redirect"], dict) else {}
        if not str(redirect.get("url", "")).startswith(("http://", "https://")):
            return _errors(400, "1106", "redirect.url is required for a hosted charge")
        if "post" in body and not str((body["post"] or {}).get("url", "")).startswith("http"):
            return _errors(400, "1107", "post.url must be a URL")
        expiry = (body["transaction"] or {}).get("expiry") or {}
        period = expiry.get("period")
        if (
            set(body["transaction"]) != {"expiry"}
            or expiry.get("type") != "MINUTE"
            or isinstance(period, bool)
            or not isinstance(period, int)
            or not 5 <= period <= 60
        ):
            return _errors(400, "1108", "transaction.expiry is {period: 5..60, type: MINUTE}")
        number = len(self.charges) + 1
        charge_id = f"chg_TS0{number}A1120261103Hp7q0311{number:03d}"
        charge = {
            "id": charge_id,
            "object": "charge",
            "customer_initiated": True,
            "status": "INITIATED",
            "amount": body["amount"],
            "currency": body["currency"],
            "threeDSecure": True,
            "description": body["description"],
            "metadata": body["metadata"],
            "transaction": {
                "timezone": "UTC+03:00",
                "created": str(int(self.now.timestamp() * 1000)),
                "expiry": {"period": period, "type": "MINUTE"},
                "asynchronous": False,
                "amount": body["amount"],
                "currency": body["currency"],
                "url": f"{self.url}{PAGE}?chg={charge_id}",
            },
            "reference": {k: v for k, v in body["reference"].items() if k != "idempotent"},
            "response": {"code": "100", "message": "Initiated"},
            "customer": customer,
            "source": {"object": "source", "id": body["source"]["id"]},
            "redirect": {"status": "PENDING", "url": redirect["url"]},
            "post": {"status": "PENDING", "url": (body.get("post") or {}).get("url")},
            "refunded": Decimal(0),
        }
        self.charges[charge_id] = charge
        return Response(200, {k: v for k, v in charge.items() if k != "refunded"})

    def _refund(self, body: dict[str, Any]) -> Response:
        if set(body) != REFUND_FIELDS:
            return _errors(400, "1101", f"fields must be exactly {sorted(REFUND_FIELDS)}")
        charge = self.charges.get(body["charge_id"])
        if charge is None or charge["status"] != "CAPTURED":
            return _errors(400, "1140", "Charge not found or not captured")
        if body["currency"] != charge["currency"] or not _exact_amount(
            body["amount"], body["currency"]
        ):
            return _errors(400, "1102", "amount must be a positive number in the charge's currency")
        if charge["refunded"] + body["amount"] > charge["amount"]:
            return _errors(400, "1141", "Refund amount exceeds the remaining charge amount")
        charge["refunded"] += body["amount"]
        refund = {"id": f"re_TS0{len(self.refunds) + 1}A5720231211", "object": "refund",
                  "charge_id": charge["id"], "amount": body["amount"],
                  "currency": body["currency"], "status": "PENDING",
                  "created": str(int(self.now.timestamp() * 1000)),
                  "reference": body["reference"],
                  "response": {"code": "100", "message": "Refund in process"}}  # fmt: skip
        self.refunds.append(refund)
        return Response(200, refund)


def hashstring(obj: dict[str, Any], key: str = SECRET_KEY) -> str:
    """Tap's documented hashstring of a posted charge or refund."""
    decimals = DECIMALS.get(str(obj["currency"]), 2)
    amount = f"{Decimal(str(obj['amount'])):.{decimals}f}"
    reference = obj.get("reference") or {}
    created = (obj.get("transaction") or {}).get("created") or obj.get("created") or ""
    text = (
        f"x_id{obj['id']}x_amount{amount}x_currency{obj['currency']}"
        f"x_gateway_reference{reference.get('gateway') or ''}"
        f"x_payment_reference{reference.get('payment') or ''}"
        f"x_status{obj['status']}x_created{created}"
    )
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


@contextmanager
def fake_tap() -> Iterator[FakeTap]:
    fake = FakeTap()
    with fake.server.running():
        yield fake
