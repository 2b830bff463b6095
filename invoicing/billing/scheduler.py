"""The time-driven jobs: what one scheduler pass does at a moment `now`.

A pass, for every tenant: bills last month (idempotent: a month with a completed run
is left alone, and a run never invoices a period twice), finalizes the drafts whose
grace period is over at `now` and tries to collect them where the customer has a
payment provider, then runs the dunning jobs (`invoicing.dunning`: OPEN → OVERDUE,
due dunning steps, OVERDUE → UNCOLLECTIBLE). Time comes in as `now` and through the
runner's clock, so `meterline scheduler --once --at T` replays any moment, and a
second pass at the same `T` changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from invoicing import dunning, invoices
from invoicing.billing.runner import BillRunner
from invoicing.billing.runs import create_bill_run
from invoicing.models import BillRunRow, Tenant
from invoicing.payments.collection import AttemptResult, collect
from invoicing.payments.providers import GatewayFactory
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
    collected: int = 0  # finalized invoices paid through the provider at once
    overdue: int = 0
    dunning_steps: int = 0
    payments_attempted: int = 0
    uncollectible: int = 0


def month_before(now: datetime) -> Period:
    """The calendar month before the one containing `now`."""
    return previous_period(Interval.MONTHLY, period_containing(Interval.MONTHLY, now))


def close_period(
    sessions: sessionmaker[Session],
    runner: BillRunner,
    now: datetime,
    due_days: int,
    gateways: GatewayFactory,
) -> list[TenantClose]:
    """One scheduler pass at `now`: for every tenant, bill last month, then the
    invoice jobs of `lifecycle_pass`."""
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
        report.append(
            lifecycle_pass(sessions, tenant_id, now, due_days, gateways, run_id, status, created)
        )
    return report


def lifecycle_pass(
    sessions: sessionmaker[Session],
    tenant_id: str,
    now: datetime,
    due_days: int,
    gateways: GatewayFactory,
    bill_run_id: str | None = None,
    status: str | None = None,
    created: int = 0,
) -> TenantClose:
    """The invoice jobs of a pass for one tenant: finalize the drafts past their grace
    period and collect them, then overdue, dunning steps and UNCOLLECTIBLE."""

    def collector(tenant: str, invoice_id: str, purpose: str, at: datetime) -> AttemptResult | None:
        return collect(sessions, tenant, invoice_id, purpose, at, gateways)

    with sessions() as session, session.begin():
        finalized = [row.id for row in invoices.finalize_all(session, tenant_id, due_days, now)]
    collected = 0
    for invoice_id in finalized:
        result = collector(tenant_id, invoice_id, "finalize", now)
        collected += result is not None and result.status == "succeeded"
    dun = dunning.run_pass(sessions, tenant_id, now, collector)
    return TenantClose(
        tenant_id,
        bill_run_id,
        status,
        created,
        len(finalized),
        collected=collected,
        overdue=dun.overdue,
        dunning_steps=dun.steps,
        payments_attempted=dun.payments_attempted,
        uncollectible=dun.uncollectible,
    )


def _bounds(period: Period) -> tuple[datetime, datetime]:
    return period.start, period.end
