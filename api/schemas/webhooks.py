"""Webhook endpoints and their delivery log."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Public
from api.schemas.money import Timestamp
from invoicing.models import WebhookDeliveryRow, WebhookEndpointRow
from invoicing.webhooks.endpoints import EndpointChanges, EndpointSpec


class EndpointCreate(Body):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    secret: str = Field(min_length=1, max_length=500, description="signs every delivery")
    events: list[str] | None = Field(default=None, description="types to send; null: all")
    description: str | None = Field(default=None, max_length=500)

    def to_spec(self) -> EndpointSpec:
        return EndpointSpec(self.url, self.secret, self.events, self.description)


class EndpointPatch(Body):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    secret: str | None = Field(default=None, min_length=1, max_length=500)
    events: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    status: Literal["enabled", "disabled"] | None = None

    def to_changes(self) -> EndpointChanges:
        return EndpointChanges(
            url=self.url,
            secret=self.secret,
            events=self.events,
            events_set="events" in self.model_fields_set,
            description=self.description,
            status=self.status,
        )


class EndpointPublic(Public):
    """The secret is never shown again."""

    id: str
    url: str
    events: list[str] | None = Field(description="null: every type")
    description: str | None
    status: str = Field(description="enabled | disabled")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: WebhookEndpointRow) -> EndpointPublic:
        return cls(
            id=row.id,
            url=row.url,
            events=list(row.events) if row.events is not None else None,
            description=row.description,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class EndpointList(Public):
    data: list[EndpointPublic]


class DeliveryPublic(Public):
    id: str
    endpoint_id: str
    event_id: str
    type: str
    status: str = Field(description="pending | succeeded | failed")
    attempts: int
    response_code: int | None
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None = Field(description="null once succeeded or failed")
    last_error: str | None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: WebhookDeliveryRow) -> DeliveryPublic:
        return cls(
            id=row.id,
            endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            type=row.type,
            status=row.status,
            attempts=row.attempts,
            response_code=row.response_code,
            last_attempt_at=row.last_attempt_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            last_error=row.last_error,
            created_at=row.created_at,
        )


class DeliveryList(Public):
    data: list[DeliveryPublic]
