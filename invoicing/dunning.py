"""Overdue invoices and the dunning schedule: what a scheduler pass does at `now`.

    OPEN ──(now > dueAt)──▶ OVERDUE ──(5 steps)──▶ UNCOLLECTIBLE
                                 step k at dueAt + steps[k] days

A tenant's schedule (`PUT /dunning`) is five step offsets and the UNCOLLECTIBLE offset,
in days after `dueAt` (default 1, 3, 7, 14, 21 and 30). Each step is recorded once per
invoice (unique (invoice, step)), retries the payment where the customer has a
provider, and records `invoice.dunning_step`. A pass that finds several steps due at
once (the scheduler was down, or `--at` jumped ahead) records each of them, but
retries the payment once, at the latest: the earlier ones are recorded `skipped`.

Every job is idempotent: a second pass at the same `now` finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInput
from invoicing import events, invoices
from invoicing.models import DunningPolicyRow, DunningStepRow, InvoiceRow, new_id
from invoicing.payments.collection import AttemptResult

DEFAULT_STEPS = (1, 3, 7, 14, 21)
DEFAULT_UNCOLLECTIBLE_AFTER_DAYS = 30
STEP_COUNT = 5
_BATCH = 200

# Collects an invoice for a purpose (`dunning-3`) at `now`; None: nothing to try.
Collector = Callable[[str, str, str, datetime], AttemptResult | None]


@dataclass(frozen=True)
class Policy:
    steps: tuple[int, ...] = DEFAULT_STEPS
    uncollectible_after_days: int = DEFAULT_UNCOLLECTIBLE_AFTER_DAYS


@dataclass
class DunningReport:
    overdue: int = 0
    steps: int = 0
    payments_attempted: int = 0
    payments_succeeded: int = 0
    uncollectible: int = 0


def policy(session: Session, tenant_id: str) -> Policy:
    row = session.get(DunningPolicyRow, tenant_id)
    if row is None:
        return Policy()
    return Policy(tuple(int(s) for s in row.steps), row.uncollectible_after_days)


def set_policy(
    session: Session,
    tenant_id: str,
    steps: Sequence[int],
    uncollectible_after_days: int,
    now: datetime,
) -> Policy:
    """Replace the tenant's schedule: five increasing offsets (days after `dueAt`, ≥ 1)
    and an UNCOLLECTIBLE offset not before the last step."""
    if len(steps) != STEP_COUNT:
        raise InvalidInput(f"steps must have exactly {STEP_COUNT} entries, got {len(steps)}")
    if any(s < 1 for s in steps):
        raise InvalidInput("steps[].afterDays must be at least 1 (days after dueAt)")
    if any(b <= a for a, b in pairwise(steps)):
        raise InvalidInput("steps[].afterDays must increase from one step to the next")
    if uncollectible_after_days < steps[-1]:
        raise InvalidInput(
            f"uncollectibleAfterDays ({uncollectible_after_days}) must not come before "
            f"the last step ({steps[-1]})"
        )
    row = session.get(DunningPolicyRow, tenant_id, with_for_update=True)
    if row is None:
        row = DunningPolicyRow(tenant_id=tenant_id)
        session.add(row)
    row.steps = list(steps)
    row.uncollectible_after_days = uncollectible_after_days
    row.updated_at = now
    return Policy(tuple(steps), uncollectible_after_days)


def steps_of(session: Session, tenant_id: str, invoice_id: str) -> list[DunningStepRow]:
    """The dunning steps taken on an invoice, oldest first (404 for another tenant's)."""
    invoices.get_invoice(session, tenant_id, invoice_id)
    return list(
        session.execute(
            select(DunningStepRow)
            .where(DunningStepRow.tenant_id == tenant_id, DunningStepRow.invoice_id == invoice_id)
            .order_by(DunningStepRow.step)
        ).scalars()
    )


# -- the pass ------------------------------------------------------------------------


def run_pass(
    sessions: sessionmaker[Session],
    tenant_id: str,
    now: datetime,
    collector: Collector | None = None,
) -> DunningReport:
    """OPEN → OVERDUE past `dueAt`, the due dunning steps, OVERDUE → UNCOLLECTIBLE."""
    report = DunningReport()
    with sessions() as session:
        schedule = policy(session, tenant_id)
    report.overdue = _mark_overdue(sessions, tenant_id, now)
    _take_steps(sessions, tenant_id, now, schedule, collector, report)
    report.uncollectible = _mark_uncollectible(sessions, tenant_id, now, schedule)
    return report


def _ids(session: Session, tenant_id: str, status: str, due_before: datetime) -> list[str]:
    return list(
        session.execute(
            select(InvoiceRow.id)
            .where(
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.status == status,
                InvoiceRow.due_at.is_not(None),
                InvoiceRow.due_at < due_before,
            )
            .order_by(InvoiceRow.due_at, InvoiceRow.id)
        ).scalars()
    )


def _mark_overdue(sessions: sessionmaker[Session], tenant_id: str, now: datetime) -> int:
    with sessions() as session:
        ids = _ids(session, tenant_id, "OPEN", now)
    count = 0
    for chunk in _chunks(ids):
        with sessions() as session, session.begin():
            for invoice_id in chunk:
                invoice = invoices.get_invoice(session, tenant_id, invoice_id, lock=True)
                if invoice.status == "OPEN" and invoice.due_at is not None and invoice.due_at < now:
                    invoices.mark_overdue(session, tenant_id, invoice, now)
                    count += 1
    return count


def _take_steps(
    sessions: sessionmaker[Session],
    tenant_id: str,
    now: datetime,
    schedule: Policy,
    collector: Collector | None,
    report: DunningReport,
) -> None:
    # Only invoices whose first step is due can have anything to do.
    first = timedelta(days=schedule.steps[0])
    with sessions() as session:
        ids = _ids(session, tenant_id, "OVERDUE", now - first + timedelta(microseconds=1))
    for invoice_id in ids:
        taken = _record_due_steps(sessions, tenant_id, invoice_id, now, schedule, collector)
        report.steps += len(taken)
        for step in taken:
            if step.payment_attempted:
                report.payments_attempted += 1
                report.payments_succeeded += step.result == "payment_succeeded"


@dataclass(frozen=True)
class _Taken:
    step: int
    payment_attempted: bool
    result: str


def _record_due_steps(
    sessions: sessionmaker[Session],
    tenant_id: str,
    invoice_id: str,
    now: datetime,
    schedule: Policy,
    collector: Collector | None,
) -> list[_Taken]:
    with sessions() as session, session.begin():
        invoice = invoices.get_invoice(session, tenant_id, invoice_id, lock=True)
        if invoice.status != "OVERDUE" or invoice.due_at is None:
            return []
        done = {
            s.step: s
            for s in session.execute(
                select(DunningStepRow).where(DunningStepRow.invoice_id == invoice_id)
            ).scalars()
        }
        due = [
            (number, invoice.due_at + timedelta(days=days))
            for number, days in enumerate(schedule.steps, start=1)
            if invoice.due_at + timedelta(days=days) <= now and number not in done
        ]
        # A step whose payment attempt was interrupted (crash) is finished below.
        unfinished = [s.step for s in done.values() if s.result == "payment_pending"]
        has_provider = collector is not None and bool(invoice.customer.payment_provider)
        new_rows = []
        for index, (number, scheduled) in enumerate(due):
            latest = index == len(due) - 1
            attempt = has_provider and latest
            row = DunningStepRow(
                id=new_id("dun"),
                tenant_id=tenant_id,
                invoice_id=invoice_id,
                step=number,
                at=now,
                due_at=scheduled,
                payment_attempted=attempt,
                result="payment_pending" if attempt else ("reminded" if latest else "skipped"),
            )
            session.add(row)
            new_rows.append(row)
            events.record(
                session,
                tenant_id,
                "invoice.dunning_step",
                invoice_id,
                {
                    "invoiceId": invoice_id,
                    "step": number,
                    "at": now.isoformat().replace("+00:00", "Z"),
                    "paymentAttempted": attempt,
                    "result": row.result,
                    "invoice": events.invoice_data(invoice),
                },
                now,
            )
        try:
            session.flush()
        except IntegrityError:  # a concurrent pass took these steps first
            session.rollback()
            return []
        taken = {r.step: _Taken(r.step, r.payment_attempted, r.result) for r in new_rows}
        to_collect = [r.step for r in new_rows if r.result == "payment_pending"] + unfinished
    for number in to_collect:
        assert collector is not None
        outcome = collector(tenant_id, invoice_id, f"dunning-{number}", now)
        result = (
            "payment_succeeded"
            if outcome is not None and outcome.status == "succeeded"
            else "payment_failed"
            if outcome is not None
            else "reminded"
        )
        with sessions() as session, session.begin():
            row = session.execute(
                select(DunningStepRow).where(
                    DunningStepRow.invoice_id == invoice_id, DunningStepRow.step == number
                )
            ).scalar_one()
            row.result = result
        if number in taken:
            taken[number] = _Taken(number, True, result)
    return [taken[k] for k in sorted(taken)]


def _mark_uncollectible(
    sessions: sessionmaker[Session], tenant_id: str, now: datetime, schedule: Policy
) -> int:
    limit = timedelta(days=schedule.uncollectible_after_days)
    with sessions() as session:
        ids = _ids(session, tenant_id, "OVERDUE", now - limit + timedelta(microseconds=1))
    count = 0
    for chunk in _chunks(ids):
        with sessions() as session, session.begin():
            for invoice_id in chunk:
                invoice = invoices.get_invoice(session, tenant_id, invoice_id, lock=True)
                if invoice.status != "OVERDUE" or invoice.due_at is None:
                    continue
                if invoice.due_at + limit <= now:
                    invoices.mark_uncollectible(session, tenant_id, invoice, now)
                    count += 1
    return count


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _BATCH] for i in range(0, len(ids), _BATCH)]
