"""The ingest front: POST /api/v1/events in a process of its own, the rest proxied.

In the embedded mode one process holds the ClickHouse engine (one chDB path is one
process), the stream worker and the API; on a 2-core machine it is the bottleneck
while the second core idles. The front takes the hot path off it: it answers
POST /api/v1/events itself (the same route: API key from the ledger, validation,
envelopes produced to Kafka, 202 once Kafka has them) and forwards every other request,
unchanged, to the main process on a private port. The front holds no ClickHouse and
no worker, only the ledger (to check keys) and a Kafka producer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from api.errors import install_error_handlers
from api.limits import DEFAULT_MAX_BYTES, BodyLimit, Scope
from api.metrics import CONTENT_TYPE, check_token, exposition, merged
from api.ports import IngestRuntime
from api.routes import events
from api.schemas.common import ERROR_RESPONSES

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP stack sets again itself.
_DROPPED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "host", "content-length", "content-encoding"}
)  # fmt: skip


def create_front_app(
    runtime: IngestRuntime,
    upstream: str,
    start: Callable[[], Any],
    stop: Callable[[], Any],
) -> FastAPI:
    """The front over `runtime`, forwarding to `upstream` (http://127.0.0.1:port);
    `start` and `stop` open and close the runtime's producer."""
    client = httpx.AsyncClient(
        base_url=upstream,
        timeout=httpx.Timeout(600.0, connect=10.0),
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime
        await start()
        try:
            yield
        finally:
            await client.aclose()
            await stop()

    app = FastAPI(title="Meterline ingest front", lifespan=lifespan, openapi_url=None)
    install_error_handlers(app)

    def body_limit(_: Scope) -> int:
        return int(getattr(runtime.settings, "max_request_bytes", DEFAULT_MAX_BYTES))

    app.add_middleware(BodyLimit, limit=body_limit)
    app.add_api_route(
        "/api/v1/events",
        events.ingest_events,
        methods=["POST"],
        status_code=202,
        responses=ERROR_RESPONSES,
    )

    async def metrics(request: Request) -> Response:
        # One scrape sees both processes: the front's series and the main process's.
        check_token(request, getattr(runtime.settings, "metrics_token", None))
        parts = [("front", exposition())]
        auth = {"authorization": request.headers.get("authorization", "")}
        try:
            upstream_metrics = await client.get("/metrics", headers=auth)
            if upstream_metrics.status_code == 200:
                parts.append(("main", upstream_metrics.content))
        except httpx.HTTPError:
            pass  # the front's own series still answer; the main's are missing
        return Response(merged(parts), media_type=CONTENT_TYPE)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)

    async def forward(request: Request) -> Response:
        # The path as the client sent it (still percent-encoded): an id with "%2F" or
        # "%20" in it reaches the main process unchanged.
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        target = raw_path + (b"?" + request.url.query.encode() if request.url.query else b"")
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in _DROPPED or k.lower() == "content-encoding"
        ]
        try:
            upstream_response = await client.request(
                request.method,
                httpx.URL(target.decode("ascii")),
                headers=headers,
                content=await request.body(),
            )
        except httpx.HTTPError as exc:
            body = {"error": {"code": "upstream_unavailable",
                              "message": f"the main process did not answer: {exc}",
                              "details": None}}  # fmt: skip
            return Response(orjson.dumps(body), 502, media_type="application/json")
        kept = {k: v for k, v in upstream_response.headers.items() if k.lower() not in _DROPPED}
        return Response(upstream_response.content, upstream_response.status_code, kept)

    app.add_api_route(
        "/{path:path}",
        forward,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    return app
