"""The FastAPI application: routes under /api/v1, one error shape, auth on every call
but /healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.dashboard import install as install_dashboard
from api.errors import install_error_handlers
from api.limits import DEFAULT_MAX_BYTES, BodyLimit, Scope
from api.portal import pages as portal_pages
from api.ports import ApiRuntime
from api.request_log import RequestLog
from api.routes import (
    account,
    addons,
    alerts,
    analytics,
    audit,
    billing,
    billing_entity,
    catalog,
    coupons,
    credit_notes,
    credits,
    custom_sections,
    customers,
    documents,
    email,
    erp,
    events,
    exports,
    features,
    health,
    one_off,
    payments,
    subscriptions,
    taxes,
    wallets,
    webhooks,
)
from api.schemas.common import ERROR_RESPONSES


def create_app(
    runtime: ApiRuntime | Callable[[], ApiRuntime], *, with_worker: bool = True
) -> FastAPI:
    """The app over a runtime, or over a factory that opens one when the app starts (and
    closes it when it stops). The lifespan starts Kafka and, with `with_worker`, the
    stream worker in this process (the embedded mode)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = callable(runtime)
        rt = runtime() if callable(runtime) else runtime
        app.state.runtime = rt
        try:
            await rt.start(api=True, worker=with_worker)
            yield
        finally:
            await rt.stop()
            if owned:
                rt.close()

    app = FastAPI(
        title="Meterline",
        version="0.1.0",
        summary="Usage metering, rating and invoicing",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    def body_limit(scope: Scope) -> int:
        state = getattr(scope.get("app"), "state", None)
        rt = getattr(state, "runtime", None)
        return int(getattr(getattr(rt, "settings", None), "max_request_bytes", DEFAULT_MAX_BYTES))

    app.add_middleware(BodyLimit, limit=body_limit)
    app.add_middleware(RequestLog)  # outermost: times and logs every answer
    app.include_router(health.router)
    # exports first: /invoices/export.csv must win over /invoices/{id}.
    for module in (
        exports,
        events,
        catalog,
        features,
        customers,
        credits,
        subscriptions,
        coupons,
        taxes,
        wallets,
        billing,
        payments,
        credit_notes,
        alerts,
        addons,
        one_off,
        custom_sections,
        billing_entity,
        documents,
        email,
        webhooks,
        erp,
        analytics,
        audit,
    ):
        app.include_router(module.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    # The customer portal: the account API (portal token) and its pages at /portal.
    app.include_router(account.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    app.include_router(portal_pages.router)
    install_dashboard(app)  # the operator's pages at /dashboard
    return app
