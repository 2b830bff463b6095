"""Domain events: the one outbox of what later deliverers must hear of.

Webhooks, ERP sync and email (issue 9) consume the Kafka topic `billing-events`. What
they deliver is recorded here, in the ledger transaction that makes the change (a
quota crossing, an alert trigger, an invoice issued or finalized), and produced to
Kafka afterwards by the relay (`meterline.runtime.EventRelay`): at least once, each
message keyed by its event id so consumers drop repeats. Nothing is announced that
did not commit, and nothing that committed is lost.

    {"id": "evt_…", "type": "invoice.finalized", "tenantId": "…", "createdAt": "…",
     "data": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from invoicing.models import DomainEventRow, InvoiceRow, new_id
from rating.money import format_money

TYPES = (
    "quota.exceeded",
    "alert.triggered",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.voided",
    "invoice.overdue",
    "invoice.uncollectible",
    "invoice.dunning_step",
    "credit_note.created",
    "credit_note.issued",
    "credit_note.applied",
    "credit_note.voided",
    "payment.succeeded",
    "payment.failed",
    "subscription.started",
    "subscription.terminated",
    "wallet.depleted",
    "bill_run.completed",
    "erp.sync_failed",
)


@dataclass(frozen=True)
class DomainEvent:
    id: str
    tenant_id: str
    type: str
    object_id: str
    data: Mapping[str, Any]
    created_at: datetime

    @property
    def key(self) -> bytes:
        return f"{self.tenant_id}/{self.object_id}".encode()

    def message(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type,
                "tenantId": self.tenant_id,
                "createdAt": timestamp(self.created_at),
                "data": self.data,
            }
        )


def record(
    session: Session,
    tenant_id: str,
    type_: str,
    object_id: str,
    data: Mapping[str, Any],
    now: datetime,
) -> None:
    """Add an event to the outbox, in the caller's transaction."""
    if type_ not in TYPES:
        raise ValueError(f"unknown domain event type {type_!r}")
    session.add(
        DomainEventRow(
            id=new_id("evt"),
            tenant_id=tenant_id,
            type=type_,
            object_id=object_id,
            data=dict(data),
            created_at=now,
        )
    )


def invoice_data(invoice: InvoiceRow) -> dict[str, Any]:
    """What an invoice event says of the invoice (deliverers read the rest by id)."""
    cur = invoice.currency
    return {
        "id": invoice.id,
        "number": invoice.number,
        "type": invoice.type,
        "status": invoice.status,
        "customerId": invoice.customer.external_id,
        "subscriptionId": invoice.subscription_id,
        "currency": cur,
        "periodStart": timestamp(invoice.period_start),
        "periodEnd": timestamp(invoice.period_end),
        "issuedAt": timestamp(invoice.issued_at) if invoice.issued_at else None,
        "dueAt": timestamp(invoice.due_at) if invoice.due_at else None,
        "total": format_money(invoice.total, cur),
        "creditTotal": format_money(invoice.credit_total, cur),
        "amountPaid": format_money(invoice.amount_paid, cur),
        "amountDue": format_money(invoice.amount_due, cur),
    }


def pending(sessions: sessionmaker[Session], limit: int = 500) -> list[DomainEvent]:
    """Unpublished events, oldest first."""
    with sessions() as session:
        rows = session.execute(
            select(DomainEventRow)
            .where(DomainEventRow.published_at.is_(None))
            .order_by(DomainEventRow.created_at, DomainEventRow.id)
            .limit(limit)
        ).scalars()
        return [
            DomainEvent(r.id, r.tenant_id, r.type, r.object_id, r.data, r.created_at) for r in rows
        ]


def published(
    sessions: sessionmaker[Session], events: Sequence[DomainEvent], now: datetime
) -> None:
    if not events:
        return
    with sessions() as session, session.begin():
        session.execute(
            update(DomainEventRow)
            .where(DomainEventRow.id.in_([e.id for e in events]))
            .values(published_at=now)
        )


def timestamp(value: datetime) -> str:
    """An instant as the API and every message write it: RFC 3339 in UTC, with `Z`."""
    return value.isoformat().replace("+00:00", "Z")
