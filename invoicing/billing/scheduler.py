"""The time-driven jobs: what one scheduler pass does at a moment `now`.

A pass, for every tenant: bills the month each customer has closed at its local
midnight (docs/customer-timezones.md): a month's run is started once the month's local
end has passed for one of the tenant's time zones, and again each time it has passed
for another since the last completed run; a run bills only the periods that have ended
by `now`, and never invoices a period twice. UTC-only tenants get one run per month,
the pass after midnight, as always. It then finalizes the drafts whose
grace period is over at `now` and tries to collect them where the customer has a
payment provider, then runs the dunning jobs (`invoicing.dunning`: OPEN → OVERDUE,
due dunning steps, OVERDUE → UNCOLLECTIBLE). Time comes in as `now` and through the
runner's clock, so `meterline scheduler --once --at T` replays any moment, and a
second pass at the same `T` changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from invoicing import dunning, invoices
from invoicing.billing.runner import BillRunner
from invoicing.billing.runs import create_bill_run
from invoicing.models import BillRunRow, CustomerRow, Tenant
from invoicing.payments.collection import AttemptResult, collect
from invoicing.payments.providers import GatewayFactory
from rating.model import Interval, Period
from rating.periods import period_containing, previous_period, start_of_day, zone_of


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


def months_to_close(now: datetime) -> tuple[Period, Period]:
    """The months (of calendar dates) a pass at `now` may bill: last month, whose local
    end passes up to 12 h after UTC's (UTC−12), and this month, whose local end passes
    up to 14 h before UTC's (UTC+14)."""
    this = period_containing(Interval.MONTHLY, now)
    return previous_period(Interval.MONTHLY, this), this


def closed_mark(month: Period, zones: Iterable[str], now: datetime) -> datetime | None:
    """The latest local end of `month` among `zones` that has passed at `now` (None: the
    month has ended nowhere yet). A completed run started at or after it has billed
    every period of the month that has ended."""
    day = month.end.astimezone(UTC).date()
    ends = [start_of_day(day, zone_of(zone)) for zone in {"UTC", *zones}]
    passed = [end for end in ends if end <= now]
    return max(passed) if passed else None


def close_period(
    sessions: sessionmaker[Session],
    runner: BillRunner,
    now: datetime,
    due_days: int,
    gateways: GatewayFactory,
) -> list[TenantClose]:
    """One scheduler pass at `now`: for every tenant, bill the month its customers have
    closed, then the invoice jobs of `lifecycle_pass`."""
    with sessions() as session:
        tenant_ids = list(session.execute(select(Tenant.id).order_by(Tenant.id)).scalars())
    report = []
    for tenant_id in tenant_ids:
        run_id, status, created = None, None, 0
        for month in months_to_close(now):
            ran = _close_month(sessions, runner, tenant_id, month, now)
            if ran is not None:
                run_id, created = ran.id, created + ran.invoices_created
                status = status if status not in (None, "completed") else ran.status
        report.append(
            lifecycle_pass(sessions, tenant_id, now, due_days, gateways, run_id, status, created)
        )
    return report


def _close_month(
    sessions: sessionmaker[Session],
    runner: BillRunner,
    tenant_id: str,
    month: Period,
    now: datetime,
) -> BillRunRow | None:
    """Run `month` for the tenant if a zone of its customers has closed it since the
    last completed run over it (None: nothing to do)."""
    with sessions() as session, session.begin():
        zones = session.execute(
            select(CustomerRow.timezone).where(CustomerRow.tenant_id == tenant_id).distinct()
        ).scalars()
        mark = closed_mark(month, zones, now)
        if mark is None:
            return None
        done = session.execute(
            select(BillRunRow.id).where(
                BillRunRow.tenant_id == tenant_id,
                BillRunRow.period_start == month.start,
                BillRunRow.period_end == month.end,
                BillRunRow.status == "completed",
                BillRunRow.started_at >= mark,
            )
        ).first()
        if done:
            return None
        run_id = create_bill_run(session, tenant_id, *_bounds(month)).id
    return runner.run(run_id, ended_by=now)


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
