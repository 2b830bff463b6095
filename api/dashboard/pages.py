"""The dashboard's pages (GET, read-only) and the JSON their scripts refresh from."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.dashboard import views
from api.dashboard.render import SECURITY_HEADERS, page
from api.dashboard.session import Operator, OperatorSession
from api.deps import RuntimeDep
from core.errors import DomainError
from invoicing import alerts, invoices, operations
from invoicing.invoices import TRANSITIONS

router = APIRouter(prefix="/dashboard", include_in_schema=False)

NAV = [
    ("usage", "/dashboard/usage", "Usage"),
    ("customers", "/dashboard/customers", "Top customers"),
    ("revenue", "/dashboard/revenue", "Revenue"),
    ("invoices", "/dashboard/invoices", "Invoices"),
    ("alerts", "/dashboard/alerts", "Alerts & quotas"),
    ("bill-runs", "/dashboard/bill-runs", "Bill runs"),
    ("rejected", "/dashboard/rejected-events", "Rejected events"),
]

# What an action's redirect may say (fixed texts: nothing from the URL is shown as is).
NOTICES = {
    "finalized": "The invoice was finalized: it is OPEN, numbered and due.",
    "voided": "The invoice was voided.",
    "signed-in": "Signed in.",
}


def _screen(
    request: Request, operator: OperatorSession, active: str, template: str, **context: Any
) -> HTMLResponse:
    return page(request, template, operator=operator, nav=NAV, active=active, **context)


@router.get("")
@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/dashboard/usage", status_code=303)


@router.get("/usage")
async def usage_page(
    request: Request, runtime: RuntimeDep, operator: Operator, hours: int = Query(24)
) -> HTMLResponse:
    hours = hours if hours in views.USAGE_WINDOWS else 24
    data = await asyncio.to_thread(views.usage_series, runtime, operator.tenant_id, hours)
    return _screen(
        request, operator, "usage", "usage.html", data=data, hours=hours,
        windows=views.USAGE_WINDOWS,
    )  # fmt: skip


@router.get("/data/usage")
async def usage_data(runtime: RuntimeDep, operator: Operator, hours: int = Query(24)) -> Response:
    hours = hours if hours in views.USAGE_WINDOWS else 24
    data = await asyncio.to_thread(views.usage_series, runtime, operator.tenant_id, hours)
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


@router.get("/customers")
def customers_page(
    request: Request, runtime: RuntimeDep, operator: Operator, currency: str | None = None
) -> HTMLResponse:
    with runtime.sessions() as session:
        chosen, choices = views.pick_currency(session, operator.tenant_id, currency)
        data = views.top_customers(session, operator.tenant_id, chosen) if chosen else None
    return _screen(
        request, operator, "customers", "customers.html", currency=chosen, currencies=choices,
        data=data,
    )  # fmt: skip


@router.get("/revenue")
def revenue_page(
    request: Request, runtime: RuntimeDep, operator: Operator, currency: str | None = None
) -> HTMLResponse:
    now = runtime.clock.now()
    with runtime.sessions() as session:
        chosen, choices = views.pick_currency(session, operator.tenant_id, currency)
        data = views.revenue(session, operator.tenant_id, chosen, now) if chosen else None
    return _screen(
        request, operator, "revenue", "revenue.html", currency=chosen, currencies=choices,
        data=data,
    )  # fmt: skip


@router.get("/invoices")
def invoices_page(
    request: Request,
    runtime: RuntimeDep,
    operator: Operator,
    status: str | None = None,
    cursor: str | None = None,
    notice: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    status = status.upper() if status and status.upper() in TRANSITIONS else None
    problem = None
    with runtime.sessions() as session:
        try:
            found = invoices.list_invoices(
                session, operator.tenant_id, status=status, limit=50, cursor=cursor
            )
        except DomainError as exc:  # a cursor edited by hand
            problem = exc.message
            found = invoices.list_invoices(session, operator.tenant_id, status=status, limit=50)
        rows = list(found.rows)
        next_cursor = found.next_cursor
        for row in rows:  # the customer is joined; read it while the session is open
            _ = row.customer.external_id
    return _screen(
        request, operator, "invoices", "invoices.html", invoices=rows, status=status,
        statuses=list(TRANSITIONS), next_cursor=next_cursor, notice=NOTICES.get(notice or ""),
        error=problem or _error_text(error),
    )  # fmt: skip


def _error_text(code: str | None) -> str | None:
    if not code:
        return None
    safe = "".join(c for c in code if c.isalnum() or c == "_")[:60]
    return f"The action was refused ({safe}). Reload the page to see the invoice's state."


@router.get("/alerts")
def alerts_page(request: Request, runtime: RuntimeDep, operator: Operator) -> HTMLResponse:
    with runtime.sessions() as session:
        defined = alerts.list_alerts(session, operator.tenant_id, limit=100, cursor=None).rows
        triggers = operations.recent_triggers(session, operator.tenant_id)
        blocks = operations.quota_blocks(session, operator.tenant_id)
    return _screen(
        request, operator, "alerts", "alerts.html", alerts=defined, triggers=triggers,
        blocks=blocks,
    )  # fmt: skip


def _bill_run(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "periodStart": row.period_start.isoformat(),
        "periodEnd": row.period_end.isoformat(),
        "total": row.total,
        "processed": row.processed,
        "failed": row.failed,
        "invoicesCreated": row.invoices_created,
        "error": row.error,
    }


@router.get("/bill-runs")
def bill_runs_page(request: Request, runtime: RuntimeDep, operator: Operator) -> HTMLResponse:
    with runtime.sessions() as session:
        runs = operations.recent_bill_runs(session, operator.tenant_id)
    return _screen(request, operator, "bill-runs", "bill_runs.html", runs=runs)


@router.get("/data/bill-runs")
def bill_runs_data(runtime: RuntimeDep, operator: Operator) -> Response:
    with runtime.sessions() as session:
        runs = [_bill_run(r) for r in operations.recent_bill_runs(session, operator.tenant_id)]
    return JSONResponse({"data": runs}, headers={"Cache-Control": "no-store"})


@router.get("/rejected-events")
async def rejected_page(request: Request, runtime: RuntimeDep, operator: Operator) -> HTMLResponse:
    found = await asyncio.to_thread(views.rejected_events, runtime, operator.tenant_id, 200)
    unavailable = found.message if isinstance(found, views.Unavailable) else None
    rows = [] if isinstance(found, views.Unavailable) else found
    return _screen(
        request, operator, "rejected", "rejected.html", rows=rows, unavailable=unavailable
    )


__all__ = ["SECURITY_HEADERS", "router"]
