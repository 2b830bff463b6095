"""A local HTTP server that answers as Stripe's API documents, and checks what it gets.

It checks every request as Stripe would: `Authorization: Bearer <secret key>` (401
otherwise), form-encoded POST bodies, an `Idempotency-Key` on every POST (our rule:
400 without), a replay of the FIRST answer for a repeated key (and 400
`idempotency_error` when the same key comes with other parameters). Customers are
set up by the test (`add_customer`); a customer whose card declines answers 402
`card_error`. `fail_next(n)` makes the next n POSTs answer 500 (before any effect),
to test retries under the same key. `requests` records everything received.

A setup-mode session (a checkout page that saves a method) is checked as Stripe
checks one (currency, an existing customer, no line items) and `complete_setup` plays
the customer saving a card: the SetupIntent's events.

Checkout: `POST /v1/checkout/sessions` checks what Stripe requires of a payment-mode
session (one line item with price_data, success_url, an expires_at 30 minutes to 24
hours ahead) and answers an open session with its `url`. `pay_session` plays the payer:
Stripe makes the PaymentIntent (its metadata from `payment_intent_data[metadata]`), and
the test gets the events Stripe would post. `event(...)` builds any event, and `signed`
gives the exact bytes and `Stripe-Signature` header Stripe would send, computed here
from Stripe's documented scheme (`t=…,v1=` hex HMAC-SHA256 of `<t>.<body>`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SECRET = "sk_test_meterline_4242"
WEBHOOK_SECRET = "whsec_meterline_signing_0042"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    query: dict[str, str]


@dataclass
class FakeStripe:
    url: str = ""
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    clock: Any = time.time  # what "now" is for expires_at checks (seconds since the epoch)
    processing: bool = False  # charges answer `processing` (a bank debit being collected)
    _replies: dict[str, tuple[dict[str, str], int, dict[str, Any]]] = field(default_factory=dict)
    _fail: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_customer(
        self, customer_id: str, *, card: str | None = "pm_card_visa", declines: bool = False
    ) -> None:
        self.customers[customer_id] = {"card": card, "declines": declines}

    def fail_next(self, count: int) -> None:
        self._fail = count

    def posts(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    # -- the payer and the events -------------------------------------------------------

    def pay_session(self, session_id: str) -> list[dict[str, Any]]:
        """The payer pays the Checkout Session: the events Stripe sends, in its order."""
        session = self.sessions[session_id]
        intent_id = f"pi_{len(self.intents) + 1:04d}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": session["amount_total"],
            "currency": session["currency"],
            "status": "succeeded",
            "metadata": session["payment_intent_metadata"],
        }
        self.intents[intent_id] = intent
        session.update(status="complete", payment_status="paid", payment_intent=intent_id)
        public = {k: v for k, v in session.items() if k != "payment_intent_metadata"}
        return [
            self.event("payment_intent.succeeded", intent),
            self.event("checkout.session.completed", public),
        ]

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_{hashlib.sha256(json.dumps([kind, obj]).encode()).hexdigest()[:24]}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(self.clock()),
            "type": kind,
            "livemode": False,
            "data": {"object": obj},
        }

    def signed(
        self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(event, indent=2).encode()  # Stripe pretty-prints its payloads
        stamp = str(int(self.clock()) if at is None else at)
        digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        header = f"t={stamp},v1={digest.hexdigest()}"
        return body, {"Stripe-Signature": header, "Content-Type": "application/json"}

    # -- what the handler calls --------------------------------------------------------

    def handle(self, request: Received) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {SECRET}":
                return 401, _error("invalid_request_error", "Invalid API Key provided")
            if request.method == "GET":
                return self._get(request)
            key = request.headers.get("idempotency-key")
            if not key:
                return 400, _error("invalid_request_error", "an Idempotency-Key is required")
            if key in self._replies:
                form, status, body = self._replies[key]
                if form != request.form:
                    return 400, _error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used "
                        "with the same parameters they were first used with.",
                    )
                return status, body
            if self._fail > 0:
                self._fail -= 1
                return 500, _error("api_error", "simulated outage")
            status, body = self._post(request)
            self._replies[key] = (request.form, status, body)
            return status, body

    def _get(self, request: Received) -> tuple[int, dict[str, Any]]:
        parts = request.path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["v1", "customers"]:
            customer = self.customers.get(parts[2])
            if customer is None:
                return 404, _error("invalid_request_error", f"No such customer: '{parts[2]}'")
            if len(parts) == 3:
                return 200, {
                    "id": parts[2],
                    "object": "customer",
                    "invoice_settings": {"default_payment_method": None},
                }
            if parts[3:] == ["payment_methods"]:
                data = [{"id": customer["card"], "object": "payment_method"}]
                return 200, {"object": "list", "data": data if customer["card"] else []}
        return 404, _error("invalid_request_error", f"Unrecognized request URL {request.path}")

    def _post(self, request: Received) -> tuple[int, dict[str, Any]]:
        form = request.form
        if request.path == "/v1/payment_intents":
            customer = self.customers.get(form.get("customer", ""))
            if customer is None:
                return 400, _error("invalid_request_error", "No such customer")
            if not form.get("amount", "").isdigit():
                return 400, _error("invalid_request_error", "Invalid integer: amount")
            intent_id = f"pi_{len(self.intents) + 1:04d}"
            status = "requires_payment_method" if customer["declines"] else "succeeded"
            if self.processing and not customer["declines"]:
                status = "processing"
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "customer": form["customer"],
                "status": status,
                "amount_received": 0 if customer["declines"] else int(form["amount"]),
            }
            self.intents[intent_id] = intent
            if customer["declines"]:
                body = _error("card_error", "Your card has insufficient funds.")
                body["error"].update(
                    code="card_declined", decline_code="insufficient_funds", payment_intent=intent
                )
                return 402, body
            return 200, intent
        if request.path == "/v1/checkout/sessions":
            return self._checkout(form)
        if request.path == "/v1/refunds":
            intent = self.intents.get(form.get("payment_intent", ""))
            if intent is None:
                return 400, _error("invalid_request_error", "No such payment_intent")
            refund_id = f"re_{len(self.refunds) + 1:04d}"
            refund = {"id": refund_id, "object": "refund", "amount": int(form["amount"]),
                      "payment_intent": intent["id"], "status": "succeeded"}  # fmt: skip
            self.refunds[refund_id] = refund
            return 200, refund
        return 404, _error("invalid_request_error", f"Unrecognized request URL {request.path}")

    def _checkout(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("mode") == "setup":
            return self._setup_checkout(form)
        if form.get("mode") != "payment":
            return 400, _error("invalid_request_error", "mode: payment expected")
        price = "line_items[0][price_data]"
        amount = form.get(f"{price}[unit_amount]", "")
        if not amount.isdigit() or not form.get(f"{price}[currency]"):
            return 400, _error("invalid_request_error", "Invalid integer: unit_amount")
        if (
            not form.get(f"{price}[product_data][name]")
            or form.get("line_items[0][quantity]") != "1"
        ):
            return 400, _error("invalid_request_error", "line_items[0] needs a name and quantity")
        if not form.get("success_url", "").startswith(("http://", "https://")):
            return 400, _error("invalid_request_error", "Not a valid URL: success_url")
        expires = int(form.get("expires_at") or 0)
        now = int(self.clock())
        if not now + 1800 <= expires <= now + 86400:
            return 400, _error(
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            )
        session_id = f"cs_test_{len(self.sessions) + 1:04d}"
        metadata = _nested(form, "metadata")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(amount) * int(form["line_items[0][quantity]"]),
            "currency": form[f"{price}[currency]"],
            "customer": form.get("customer"),
            "customer_email": form.get("customer_email"),
            "client_reference_id": form.get("client_reference_id"),
            "success_url": form["success_url"],
            "cancel_url": form.get("cancel_url"),
            "expires_at": expires,
            "metadata": metadata,
            "payment_intent": None,
            "url": f"{self.url}/c/pay/{session_id}",
            "payment_intent_metadata": _nested(form, "payment_intent_data[metadata]"),
        }
        self.sessions[session_id] = session
        return 200, {k: v for k, v in session.items() if k != "payment_intent_metadata"}

    def _setup_checkout(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A setup-mode session as Stripe checks one: no line items and no
        payment_intent_data, a currency (no payment_method_types given), a known
        customer to attach the method to, success_url, expires_at as in payment mode."""
        wrong = [k for k in form if k.startswith(("line_items", "payment_intent_data"))]
        if wrong:
            return 400, _error("invalid_request_error", f"{wrong[0]} is not allowed in setup mode")
        if "payment_method_types[0]" not in form and len(form.get("currency", "")) != 3:
            return 400, _error(
                "invalid_request_error",
                "currency is required in setup mode when payment_method_types is not set",
            )
        if form.get("customer", "") not in self.customers:
            return 400, _error(
                "invalid_request_error", f"No such customer: '{form.get('customer')}'"
            )
        if not form.get("success_url", "").startswith(("http://", "https://")):
            return 400, _error("invalid_request_error", "Not a valid URL: success_url")
        expires = int(form.get("expires_at") or 0)
        now = int(self.clock())
        if not now + 1800 <= expires <= now + 86400:
            return 400, _error(
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            )
        session_id = f"cs_test_{len(self.sessions) + 1:04d}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "setup",
            "status": "open",
            "payment_status": "no_payment_required",
            "amount_total": None,
            "currency": form["currency"],
            "customer": form["customer"],
            "client_reference_id": form.get("client_reference_id"),
            "success_url": form["success_url"],
            "cancel_url": form.get("cancel_url"),
            "expires_at": expires,
            "metadata": _nested(form, "metadata"),
            "payment_intent": None,
            "setup_intent": None,
            "url": f"{self.url}/c/setup/{session_id}",
            "setup_intent_metadata": _nested(form, "setup_intent_data[metadata]"),
        }
        self.sessions[session_id] = session
        return 200, {k: v for k, v in session.items() if k != "setup_intent_metadata"}

    def complete_setup(
        self, session_id: str, payment_method: str = "pm_saved_0001"
    ) -> list[dict[str, Any]]:
        """The customer saves a card on a setup-mode session: the events Stripe sends
        (the SetupIntent's metadata from `setup_intent_data[metadata]`)."""
        session = self.sessions[session_id]
        intent = {
            "id": f"seti_{len(self.sessions):04d}",
            "object": "setup_intent",
            "customer": session["customer"],
            "payment_method": payment_method,
            "status": "succeeded",
            "usage": "off_session",
            "metadata": session["setup_intent_metadata"],
        }
        session.update(status="complete", setup_intent=intent["id"])
        self.customers[session["customer"]]["card"] = payment_method
        public = {k: v for k, v in session.items() if k != "setup_intent_metadata"}
        return [
            self.event("setup_intent.succeeded", intent),
            self.event("checkout.session.completed", public),
        ]


def _nested(form: dict[str, str], prefix: str) -> dict[str, str]:
    """`prefix[key]=value` fields of a form as {key: value} (Stripe's hash encoding)."""
    start = f"{prefix}["
    return {
        name[len(start) : -1]: value
        for name, value in form.items()
        if name.startswith(start) and name.endswith("]") and "[" not in name[len(start) : -1]
    }


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


@contextmanager
def fake_stripe() -> Iterator[FakeStripe]:
    state = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            if (
                self.command == "POST"
                and raw
                and not self.headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"
                )
            ):
                status, body = 400, _error("invalid_request_error", "form encoding expected")
            else:
                form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = state.handle(Received(self.command, url.path, headers, form, query))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
