"""The API request log: a pure ASGI middleware that times every request and, after the
response, hands one row to a background writer (docs/audit-log.md).

Only requests authenticated by a tenant's API key are logged (`current_tenant` names
the tenant and the key id on the request); a request without a valid key has no tenant
whose log could show it. A row holds the method, the path without its query string,
the route template, the status, the duration and the key id: never a body, a header
(so neither the key, a portal token nor a session cookie) or a query string.

The writer is a bounded queue drained by one thread in batches: the event loop only
appends to a deque. When the queue is full, or a batch cannot be written, the rows are
dropped and the drop is logged: the log must never fail or slow a request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.ids import new_id
from invoicing import request_log
from invoicing.request_log import Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("meterline.request_log")

# Probes, the scrape endpoint and the ingest hot path (a batch of events per request,
# counted by /metrics and the rejected-events API instead) are not logged.
UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNLOGGED_ROUTES = frozenset({("POST", "/api/v1/events")})
STATIC_SUFFIXES = (".js", ".css", ".map", ".png", ".svg", ".ico", ".woff", ".woff2", ".jpg")
REQUEST_ID_HEADER = b"x-request-id"


class RequestLogWriter:
    """Rows queued by the event loop, written in batches by one daemon thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        capacity: int = 10_000,
        batch: int = 500,
        interval: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._capacity, self._batch, self._interval = capacity, batch, interval
        self._items: deque[Request] = deque()
        self._cond = threading.Condition()
        self._unwritten = 0  # queued or being written
        self._flushing = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def put(self, item: Request) -> None:
        """Queue one row; never blocks on the database (a full queue drops it)."""
        with self._cond:
            if self._closed or self._unwritten >= self._capacity:
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.warning("request log full or closed: %d rows dropped", self.dropped)
                return
            self._items.append(item)
            self._unwritten += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="request-log-writer", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every row queued so far is written (or dropped); False on timeout."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._unwritten == 0, timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._items) or self._closed)
                if not self._items:
                    return
                # A short wait gathers a batch, unless someone waits for the rows.
                deadline = time.monotonic() + self._interval
                while len(self._items) < self._batch and not self._closed and not self._flushing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = [self._items.popleft() for _ in range(min(self._batch, len(self._items)))]
            try:
                with self._sessions() as session, session.begin():
                    request_log.write(session, batch)
            except Exception:
                self.dropped += len(batch)
                log.exception("request log: a batch of %d rows could not be written", len(batch))
            finally:
                with self._cond:
                    self._unwritten -= len(batch)
                    self._cond.notify_all()


def writer_of(app: Any) -> RequestLogWriter | None:
    """The writer the middleware of `app` uses (None before the first logged request)."""
    writer: RequestLogWriter | None = getattr(getattr(app, "state", None), "request_log", None)
    return writer


class RequestLog:
    """The middleware: outermost of the app's own, so a 413 or an auth error is timed
    and logged like any answer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._app(scope, self._closing(scope, receive), send)
            return
        runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
        if scope["type"] != "http" or runtime is None or not _logged(scope):
            await self._app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = new_id("req")
        state["request_id"] = request_id
        arrived = runtime.clock.now()
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            tenant_id = state.get("tenant_id")
            if tenant_id is not None:
                route = _template(scope)
                self._writer(scope, runtime).put(
                    Request(
                        tenant_id=tenant_id,
                        at=arrived,
                        request_id=request_id,
                        api_key_id=state.get("api_key_id"),
                        method=scope["method"],
                        path=scope["path"],
                        route=route,
                        status=status,
                        duration_us=int((time.perf_counter() - started) * 1_000_000),
                    )
                )

    def _writer(self, scope: Scope, runtime: Any) -> RequestLogWriter:
        app = scope["app"]
        writer = writer_of(app)
        if writer is None:
            writer = RequestLogWriter(runtime.sessions)
            app.state.request_log = writer
        return writer

    def _closing(self, scope: Scope, receive: Receive) -> Receive:
        # At shutdown, before the app closes its runtime: what is queued is written.
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                writer = writer_of(scope.get("app"))
                if writer is not None:
                    await asyncio.to_thread(writer.close)
                    scope["app"].state.request_log = None
            return message

        return wrapped


def _logged(scope: Scope) -> bool:
    path: str = scope["path"]
    if path in UNLOGGED_PATHS or "/static/" in path or path.endswith(STATIC_SUFFIXES):
        return False
    return (scope["method"], path.rstrip("/")) not in UNLOGGED_ROUTES


def _template(scope: Scope) -> str | None:
    """The matched route's path template with the prefix it was included under
    (/api/v1/customers/{external_id}); None when no route matched (a 404 of the app)."""
    route = scope.get("route")
    fmt = getattr(route, "path_format", None)
    if not isinstance(fmt, str):
        return None
    path: str = scope["path"]
    try:
        rendered = fmt.format(**{k: str(v) for k, v in scope.get("path_params", {}).items()})
    except (KeyError, IndexError, ValueError):
        return fmt
    return path[: -len(rendered)] + fmt if rendered and path.endswith(rendered) else fmt
