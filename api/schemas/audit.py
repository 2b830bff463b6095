"""The activity log and the API request log (docs/audit-log.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.common import Public
from invoicing.models import ActivityRow, RequestLogRow


class ActorPublic(Public):
    type: str = Field(description="api_key (the request's key) or system")
    id: str | None = Field(description="the API key's id (never the key itself)")


class ActivityPublic(Public):
    id: str
    at: datetime
    actor: ActorPublic
    action: str = Field(description="<resourceType>.<verb>, e.g. invoice.finalized")
    resource_type: str
    resource_id: str = Field(description="the id or code the API addresses it by")
    changes: dict[str, Any] | None = Field(
        description="what the request asked to change, credentials redacted"
    )
    request_id: str | None = Field(description="the request's X-Request-Id (request log)")

    @classmethod
    def from_row(cls, row: ActivityRow) -> ActivityPublic:
        return cls(
            id=row.id,
            at=row.created_at,
            actor=ActorPublic(type=row.actor_type, id=row.actor_id),
            action=row.action,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            changes=row.changes,
            request_id=row.request_id,
        )


class ActivityPage(Public):
    data: list[ActivityPublic]
    next_cursor: str | None


class RequestPublic(Public):
    id: str
    at: datetime = Field(description="when the request arrived")
    request_id: str = Field(description="the X-Request-Id header of its response")
    api_key_id: str | None
    method: str
    path: str = Field(description="the path as sent, without its query string")
    route: str | None = Field(description="the route template, e.g. /api/v1/invoices/{id}")
    status: int
    latency_ms: float = Field(description="arrival to the last byte of the response")

    @classmethod
    def from_row(cls, row: RequestLogRow) -> RequestPublic:
        return cls(
            id=row.id,
            at=row.created_at,
            request_id=row.request_id,
            api_key_id=row.api_key_id,
            method=row.method,
            path=row.path,
            route=row.route,
            status=row.status,
            latency_ms=round(row.duration_us / 1000, 3),
        )


class RequestPage(Public):
    data: list[RequestPublic]
    next_cursor: str | None
