"""The loopback HTTP server that the tests of vendor adapters share (tax, payments).

`LoopbackServer` is a real HTTP/1.1 server on 127.0.0.1 (http.server in a thread). A
test file gives it an app that plays the provider: it checks the exact request shape
and answers the way the provider documents. Tests can queue scripted answers (500
twice, a 429, a slow answer) that are served before the app sees the next requests,
or answers that replace the app's after it ran (`lose_answers`: the provider acted,
the client never heard), which is what idempotency keys are for.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        """The body with every non-integer number as an exact Decimal."""
        return json.loads(self.body, parse_float=Decimal)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: Any = None  # JSON-encoded (Decimals as numbers, like the providers' doubles)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


App = Callable[[Request], Response]


def _encode(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, default=float).encode()


class LoopbackServer:
    """A real HTTP server on a free loopback port, recording every request."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.requests: list[Request] = []
        self._scripted: deque[Response] = deque()
        self._lost: deque[Response] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                url = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query, keep_blank_values=True),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
                response = server._respond(request)
                if response.delay:
                    time.sleep(response.delay)
                payload = _encode(response.body)
                try:
                    self.send_response(response.status)
                    if response.body is not None and not isinstance(response.body, bytes):
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test); nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *responses: Response) -> None:
        """Serve these answers, in order, before handing requests to the app again."""
        with self._lock:
            self._scripted.extend(responses)

    def lose_answers(self, *responses: Response) -> None:
        """Let the app handle the next requests, then send these instead of its answers."""
        with self._lock:
            self._lost.extend(responses)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def _respond(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            scripted = self._scripted.popleft() if self._scripted else None
        if scripted is not None:
            return scripted
        answer = self.app(request)
        with self._lock:
            lost = self._lost.popleft() if self._lost else None
        return lost if lost is not None else answer

    @contextmanager
    def running(self) -> Iterator[LoopbackServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()


class IdempotencyKeys:
    """A provider's memory of idempotency keys: the first answer to a key is replayed for
    a repeat with the same request, and a repeat with another request is refused."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[Any, Response]] = {}
        self._lock = threading.Lock()

    def once(
        self, key: str, request: Any, handle: Callable[[], Response], mismatch: Response
    ) -> Response:
        with self._lock:
            if key in self._first:
                seen, answer = self._first[key]
                return answer if seen == request else mismatch
            answer = handle()
            if answer.status < 500:  # a failure before any effect is not remembered
                self._first[key] = (request, answer)
            return answer
