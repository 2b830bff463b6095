"""Period close: what the scheduler does at a moment `now`.

A pass bills last month for every tenant (idempotent: a month with a completed run is
left alone, and a run never invoices a period twice), then finalizes the drafts whose
grace period is over at `now`. Time comes in as `now` and through the runner's clock,
so `meterline scheduler --once --at T` replays any moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from invoicing import invoices
from invoicing.billing.runner import BillRunner
from invoicing.billing.runs import create_bill_run
from invoicing.models import BillRunRow, Tenant
from rating.model import Interval, Period
from rating.periods import period_containing, previous_period


@dataclass(frozen=True)
class TenantClose:
    """What one pass did for one tenant."""

    tenant_id: str
    bill_run_id: str | None  # None: the month was billed already
    status: str | None
    invoices_created: int
    finalized: int


def month_before(now: datetime) -> Period:
    """The calendar month before the one containing `now`."""
    return previous_period(Interval.MONTHLY, period_containing(Interval.MONTHLY, now))


def close_period(
    sessions: sessionmaker[Session], runner: BillRunner, now: datetime, due_days: int
) -> list[TenantClose]:
    """One scheduler pass at `now`: bill last month for every tenant, then finalize
    the drafts past their grace period."""
    month = month_before(now)
    with sessions() as session:
        tenant_ids = list(session.execute(select(Tenant.id).order_by(Tenant.id)).scalars())
    report = []
    for tenant_id in tenant_ids:
        with sessions() as session, session.begin():
            done = session.execute(
                select(BillRunRow.id).where(
                    BillRunRow.tenant_id == tenant_id,
                    BillRunRow.period_start == month.start,
                    BillRunRow.period_end == month.end,
                    BillRunRow.status == "completed",
                )
            ).first()
            run_id = None if done else create_bill_run(session, tenant_id, *_bounds(month)).id
        status, created = None, 0
        if run_id is not None:
            run = runner.run(run_id)
            status, created = run.status, run.invoices_created
        with sessions() as session, session.begin():
            finalized = invoices.finalize_all(session, tenant_id, due_days, now)
        report.append(TenantClose(tenant_id, run_id, status, created, len(finalized)))
    return report


def _bounds(period: Period) -> tuple[datetime, datetime]:
    return period.start, period.end
