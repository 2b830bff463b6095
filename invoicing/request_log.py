"""The API request log (docs/audit-log.md): one row per request authenticated by a
tenant's key, with method, path, route template, status, duration and key id. Rows
come in batches from the API's writer after the responses; no body, query string or
header is ever part of one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from invoicing.models import RequestLogRow
from invoicing.pages import Page, keyset_page


@dataclass(frozen=True)
class Request:
    """One request as the log keeps it."""

    tenant_id: str
    at: datetime
    request_id: str
    api_key_id: str | None
    method: str
    path: str
    route: str | None
    status: int
    duration_us: int


@dataclass(frozen=True)
class Filters:
    method: str | None = None
    status: int | None = None
    path: str | None = None  # the path as sent, or the route template
    since: datetime | None = None
    until: datetime | None = None


def write(session: Session, requests: list[Request]) -> None:
    """Insert a batch of requests (one statement)."""
    if not requests:
        return
    session.execute(
        insert(RequestLogRow),
        [
            {
                "id": r.request_id,  # one row per request: its id orders the log
                "tenant_id": r.tenant_id,
                "created_at": r.at,
                "request_id": r.request_id,
                "api_key_id": r.api_key_id,
                "method": r.method,
                "path": r.path[:500],
                "route": r.route[:300] if r.route else None,
                "status": r.status,
                "duration_us": r.duration_us,
            }
            for r in requests
        ],
    )


def requests(
    session: Session, tenant_id: str, filters: Filters, *, limit: int, cursor: str | None
) -> Page[RequestLogRow]:
    """The tenant's requests, newest first, `since` ≤ at ≤ `until`."""
    query = select(RequestLogRow).where(RequestLogRow.tenant_id == tenant_id)
    if filters.method is not None:
        query = query.where(RequestLogRow.method == filters.method.upper())
    if filters.status is not None:
        query = query.where(RequestLogRow.status == filters.status)
    if filters.path is not None:
        query = query.where(
            (RequestLogRow.path == filters.path) | (RequestLogRow.route == filters.path)
        )
    if filters.since is not None:
        query = query.where(RequestLogRow.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(RequestLogRow.created_at <= filters.until)
    return keyset_page(session, query, RequestLogRow, limit, cursor)


def purge(session: Session, tenant_id: str, now: datetime, days: int) -> int:
    """Delete the tenant's requests older than `days` before `now`; how many went."""
    cutoff = now - timedelta(days=days)
    result = session.execute(
        delete(RequestLogRow).where(
            RequestLogRow.tenant_id == tenant_id, RequestLogRow.created_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
