"""Liveness, readiness and metrics: the only unauthenticated routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from api.deps import RuntimeDep
from api.metrics import CONTENT_TYPE, check_token, exposition
from api.schemas.health import Liveness, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> Liveness:
    return Liveness(status="ok")


# A worker stuck this long on one batch (ClickHouse refusing writes, say) is not ready:
# nothing it consumes is stored meanwhile.
STALLED_AFTER_SECONDS = 30.0


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A store does not answer"}},
    summary="The ledger and ClickHouse answer (200), or not (503)",
)
def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with runtime.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["ledger"] = "ok"
    except Exception as exc:
        checks["ledger"] = f"error: {exc}"
    try:
        runtime.clickhouse.query("SELECT 1")
        checks["clickhouse"] = "ok"
    except Exception as exc:
        checks["clickhouse"] = f"error: {exc}"
    checks["kafka"] = "ok" if runtime.bootstrap else "not connected"
    stalled = runtime.stream_stats.stalled_for(runtime.clock.now())
    if stalled >= STALLED_AFTER_SECONDS:
        stats = runtime.stream_stats
        last = (
            stats.errors[-1]
            if stats.failing_since is not None and stats.errors
            else "no error: a write or step has not returned"
        )
        checks["stream"] = f"stalled for {stalled:.0f} s on one batch: {last}"
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus text metrics of this process (text/plain; docs/metrics.md)",
)
def metrics(request: Request, runtime: RuntimeDep) -> PlainTextResponse:
    check_token(request, getattr(runtime.settings, "metrics_token", None))
    text = exposition(runtime.stream_stats, runtime.settings.events_topic)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
