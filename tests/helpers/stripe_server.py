"""A local HTTP server that answers as Stripe's API documents, and checks what it gets.

It checks every request as Stripe would: `Authorization: Bearer <secret key>` (401
otherwise), form-encoded POST bodies, an `Idempotency-Key` on every POST (our rule:
400 without), a replay of the FIRST answer for a repeated key (and 400
`idempotency_error` when the same key comes with other parameters). Customers are
set up by the test (`add_customer`); a customer whose card declines answers 402
`card_error`. `fail_next(n)` makes the next n POSTs answer 500 (before any effect),
to test retries under the same key. `requests` records everything received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SECRET = "sk_test_meterline_4242"


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
    requests: list[Received] = field(default_factory=list)
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
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "customer": form["customer"],
                "status": status,
            }
            self.intents[intent_id] = intent
            if customer["declines"]:
                body = _error("card_error", "Your card has insufficient funds.")
                body["error"].update(
                    code="card_declined", decline_code="insufficient_funds", payment_intent=intent
                )
                return 402, body
            return 200, intent
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
