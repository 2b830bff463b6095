"""From the outbox to the deliverers: each domain event not yet dispatched is handed to
every deliverer's fan-out (which adds its delivery rows: an email, a webhook delivery
per subscribed endpoint …), and marked dispatched, in one transaction.

The deliverers read the ledger's outbox, the same rows the relay produces to Kafka
`billing-events` (invoicing/events.py): a delivery is then created exactly once per
event and target, in the ledger that also keeps its attempts, and a scheduler pass
delivers with no broker at all. Several processes may dispatch at once: on PostgreSQL
each takes the rows no other holds (`SKIP LOCKED`); SQLite has one writer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from invoicing.models import DomainEventRow

log = logging.getLogger(__name__)

Fanout = Callable[[Session, DomainEventRow, datetime], None]

BATCH = 200


def dispatch(
    sessions: sessionmaker[Session],
    fanouts: Sequence[Fanout],
    now: datetime,
    *,
    limit: int = BATCH,
) -> int:
    """Fan out up to `limit` undispatched events, oldest first; the number dispatched.

    An event whose fan-out fails (a bug, a row gone) is left for the next call, logged,
    without holding back the others."""
    with sessions() as session, session.begin():
        rows = list(
            session.execute(
                select(DomainEventRow)
                .where(DomainEventRow.dispatched_at.is_(None))
                .order_by(DomainEventRow.created_at, DomainEventRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        done = 0
        for row in rows:
            try:
                with session.begin_nested():
                    for fanout in fanouts:
                        fanout(session, row, now)
                    row.dispatched_at = now
                done += 1
            except Exception:
                log.exception("dispatching domain event %s (%s) failed", row.id, row.type)
        return done


def dispatch_all(sessions: sessionmaker[Session], fanouts: Sequence[Fanout], now: datetime) -> int:
    """Dispatch until nothing is left (or only events whose fan-out keeps failing)."""
    total = 0
    while (done := dispatch(sessions, fanouts, now)) > 0:
        total += done
    return total
