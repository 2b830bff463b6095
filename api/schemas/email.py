"""Email deliveries and the request to send a document again."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Public
from api.schemas.money import Timestamp
from invoicing.models import EmailDeliveryRow

Addresses = list[str]


class EmailRequest(Body):
    """Whom to send it to; without `to`, the customer's email address."""

    model_config = ConfigDict(extra="forbid")

    to: Addresses | None = Field(default=None, max_length=20)
    cc: Addresses = Field(default_factory=list, max_length=20)
    bcc: Addresses = Field(default_factory=list, max_length=20)


class EmailDeliveryPublic(Public):
    id: str
    kind: str = Field(description="invoice | credit_note | receipt")
    object_id: str = Field(description="the invoice, credit note or payment")
    event_id: str | None = Field(description="the domain event that queued it (null: a request)")
    to: Addresses
    cc: Addresses
    bcc: Addresses
    subject: str | None = Field(description="known once a first attempt wrote the message")
    status: str = Field(description="pending | sent | failed")
    attempts: int
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None = Field(description="null once sent or failed")
    last_error: str | None
    message_id: str | None = Field(description="the Message-ID header, once sent")
    created_at: Timestamp
    sent_at: Timestamp | None

    @classmethod
    def from_row(cls, row: EmailDeliveryRow) -> EmailDeliveryPublic:
        return cls(
            id=row.id,
            kind=row.kind,
            object_id=row.object_id,
            event_id=row.event_id,
            to=list(row.to),
            cc=list(row.cc),
            bcc=list(row.bcc),
            subject=row.subject,
            status=row.status,
            attempts=row.attempts,
            last_attempt_at=row.last_attempt_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            last_error=row.last_error,
            message_id=row.message_id,
            created_at=row.created_at,
            sent_at=row.sent_at,
        )


class EmailDeliveryList(Public):
    data: list[EmailDeliveryPublic]
