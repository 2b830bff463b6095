"""The retention job of a scheduler pass: every tenant's activity and request logs
lose what is older than the tenant's settings keep (docs/audit-log.md). Idempotent:
a second pass at the same `now` deletes nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from invoicing import activity, request_log, tenant_settings
from invoicing.models import Tenant


@dataclass(frozen=True)
class Purged:
    activity: int = 0
    requests: int = 0

    def lines(self) -> list[str]:
        """What a scheduler pass prints of it (nothing when nothing went)."""
        if not self.activity + self.requests:
            return []
        return [f"retention: {self.activity} activity entries, {self.requests} requests purged"]


def purge_expired(sessions: sessionmaker[Session], now: datetime) -> Purged:
    """Every tenant's entries past its retention at `now`, deleted (one transaction per
    tenant, so one tenant's failure leaves the others' purges done)."""
    with sessions() as session:
        tenant_ids = list(session.execute(select(Tenant.id).order_by(Tenant.id)).scalars())
    entries = requests = 0
    for tenant_id in tenant_ids:
        with sessions() as session, session.begin():
            kept = tenant_settings.get(session, tenant_id)
            entries += activity.purge(session, tenant_id, now, kept.activity_retention_days)
            requests += request_log.purge(session, tenant_id, now, kept.request_log_retention_days)
    return Purged(entries, requests)
