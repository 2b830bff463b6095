"""The FastAPI application: routes under /api/v1, one error shape, auth on every call
but /healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import billing, catalog, credits, customers, events, health
from meterline.runtime import Runtime
from meterline.settings import Settings


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, with_worker: bool = True
) -> FastAPI:
    """The app; its lifespan opens the runtime (and in embedded mode Kafka and the worker)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.open(settings or Settings())
        app.state.runtime = rt
        try:
            await rt.start(api=True, worker=with_worker)
            yield
        finally:
            await rt.stop()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Meterline",
        version="0.1.0",
        summary="Usage metering, rating and invoicing",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    for module in (events, catalog, customers, credits, billing):
        app.include_router(module.router, prefix="/api/v1")
    return app
