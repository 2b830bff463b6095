"""The activity log and the API request log, per tenant (docs/audit-log.md); their
retention is in the tenant's settings (`PUT /settings`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request

from api.deps import SessionDep, TenantDep
from api.request_log import writer_of
from api.schemas.audit import ActivityPage, ActivityPublic, RequestPage, RequestPublic
from api.schemas.money import parse_instant
from core.errors import InvalidInput
from invoicing import activity, request_log

router = APIRouter(tags=["audit"])

FROM = Query(None, alias="from", description="at ≥ from (RFC 3339 or a date)")
TO = Query(None, alias="to", description="at ≤ to (a date: that whole day)")
METHOD = r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|get|head|post|put|patch|delete|options)$"


@router.get("/activity", summary="Who changed what, newest first")
def list_activity(
    session: SessionDep,
    tenant: TenantDep,
    resource_type: str | None = Query(None, alias="resourceType", max_length=40),
    resource_id: str | None = Query(None, alias="resourceId", max_length=200),
    action: str | None = Query(None, max_length=60),
    start: str | None = FROM,
    end: str | None = TO,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> ActivityPage:
    filters = activity.Filters(
        resource_type=resource_type,
        resource_id=resource_id,
        action=action,
        since=_instant(start, "from", end=False),
        until=_instant(end, "to", end=True),
    )
    page = activity.entries(session, tenant, filters, limit=limit, cursor=cursor)
    return ActivityPage(
        data=[ActivityPublic.from_row(r) for r in page.rows], next_cursor=page.next_cursor
    )


@router.get("/request-log", summary="The API requests of the tenant's keys, newest first")
def list_requests(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    method: str | None = Query(None, pattern=METHOD),
    status: int | None = Query(None, ge=100, le=599),
    path: str | None = Query(None, max_length=500, description="the path or route template"),
    start: str | None = FROM,
    end: str | None = TO,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> RequestPage:
    # Rows are written after their responses, in batches: what this process has
    # queued is written first, so a client reads its own earlier requests.
    if (writer := writer_of(request.app)) is not None:
        writer.flush(timeout=2.0)
    filters = request_log.Filters(
        method=method,
        status=status,
        path=path,
        since=_instant(start, "from", end=False),
        until=_instant(end, "to", end=True),
    )
    page = request_log.requests(session, tenant, filters, limit=limit, cursor=cursor)
    return RequestPage(
        data=[RequestPublic.from_row(r) for r in page.rows], next_cursor=page.next_cursor
    )


def _instant(value: str | None, name: str, *, end: bool) -> datetime | None:
    if not value:
        return None
    try:
        return parse_instant(value, end=end)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}") from None
