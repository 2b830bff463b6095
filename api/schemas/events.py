"""What the usage-event routes answer (requests are parsed by streams.schema)."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Public
from api.schemas.money import Timestamp


class EventRejection(Public):
    index: int = Field(description="The event's position in the request")
    id: str | None
    reason: str


class IngestResult(Public):
    accepted: int = Field(description="Events now durably in Kafka (repeats of known ids too)")
    rejected: list[EventRejection]


class RejectedEvent(Public):
    id: str | None
    reason: str
    payload: str
    source: str = Field(description="http | kafka")
    received_at: Timestamp = Field(description="when the stream received and refused it")
    rejected_at: Timestamp = Field(description="the same instant (kept for older clients)")


class HourlyCount(Public):
    metric: str
    hour: Timestamp
    events: int


class UsageSummary(Public):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    data: list[HourlyCount]
