"""The subscription lifecycle: update, terminate (final invoice, credit for unused
advance fees) and change plan (a new, linked subscription from the change instant).

docs/subscription-lifecycle.md states every rule; the final invoice goes through the
bill run's own rating path (`BillRunner.bill_subscription`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, NotFound, ValidationFailed
from core.ids import new_id
from invoicing import catalog, credit_notes, invoices
from invoicing.billing import BillRunner
from invoicing.catalog import get_plan, get_subscription, insert_unique
from invoicing.models import CustomerRow, InvoiceLineRow, InvoiceRow, PlanRow, SubscriptionRow
from invoicing.pages import Page, keyset_page
from rating.model import Interval, Period
from rating.money import ZERO
from rating.periods import period_containing, zone_of
from rating.proration import split_fee

FIXED_FEE_LINES = ("CHARGE", "PRORATION")
PERIOD_END = "periodEnd"


@dataclass(frozen=True)
class SubscriptionPatch:
    """What PATCH may change; a field left out (`None`, or absent from `sent`) stays."""

    sent: frozenset[str]
    name: str | None = None
    end_date: datetime | None = None
    overrides: dict[str, Any] | None = None


def update_subscription(
    session: Session, tenant_id: str, subscription_id: str, patch: SubscriptionPatch
) -> SubscriptionRow:
    """Change a live subscription's name, end date or overrides (the plan's charges keep
    their ids; overrides apply to the periods billed from now on)."""
    row = get_subscription(session, tenant_id, subscription_id)
    if row.status == "terminated":
        raise Conflict(f"subscription {subscription_id!r} is terminated", code="terminated")
    if "name" in patch.sent:
        row.name = patch.name
    if "end_date" in patch.sent:
        if patch.end_date is not None and patch.end_date <= row.start_date:
            raise ValidationFailed("endDate must be after startDate")
        row.end_date = patch.end_date
    if "overrides" in patch.sent:
        overrides = copy.deepcopy(patch.overrides or {})
        catalog.validate_overrides(row.plan, overrides)
        row.overrides = overrides
    session.flush()
    return row


def _interval(row: SubscriptionRow) -> Interval:
    return Interval(row.plan.interval)


def _zone(row: SubscriptionRow) -> tzinfo:
    """The customer's zone: its periods close at its local midnights."""
    return zone_of(row.customer.timezone)


def _check_instant(row: SubscriptionRow, at: datetime, now: datetime) -> None:
    """`at` is not before the current period (the one containing now): billed periods
    are not reopened. A later `at` schedules the end."""
    current = period_containing(_interval(row), now, _zone(row))
    if at < current.start:
        raise ValidationFailed(
            f"at ({at.isoformat()}) is before the current period, which starts "
            f"{current.start.isoformat()}: billed periods are not reopened",
            code="before_current_period",
        )


def final_period(row: SubscriptionRow, at: datetime) -> Period | None:
    """The last period the subscription is active in when it ends at `at` (None when it
    ends before it starts)."""
    if at <= row.start_date:
        return None
    return period_containing(_interval(row), at - timedelta(microseconds=1), _zone(row))


def end_subscription(
    session: Session, tenant_id: str, subscription_id: str, at: datetime | None, now: datetime
) -> SubscriptionRow:
    """Mark a subscription terminated at `at` (default now); twice is a Conflict."""
    row = get_subscription(session, tenant_id, subscription_id)
    if row.status == "terminated":
        raise Conflict(f"subscription {subscription_id!r} is already terminated")
    ended = now if at is None else at
    _check_instant(row, ended, now)
    row.status = "terminated"
    row.terminated_at = ended
    row.end_date = max(ended, row.start_date)
    session.flush()
    return row


def advance_credits(
    session: Session, tenant_id: str, row: SubscriptionRow, at: datetime
) -> dict[str, Decimal]:
    """By invoice id: the unused part [at, period end) of the advance fees that earlier
    invoices billed for the period `at` falls in (net of discount, plus its tax)."""
    period = final_period(row, at)
    if period is None:
        return {}
    lines = session.execute(
        select(InvoiceLineRow, InvoiceRow)
        .join(InvoiceRow, InvoiceRow.id == InvoiceLineRow.invoice_id)
        .where(
            InvoiceRow.tenant_id == tenant_id,
            InvoiceRow.subscription_id == row.id,
            InvoiceRow.status != "VOID",
            # An earlier invoice's fee line inside this period was billed in advance.
            InvoiceRow.period_start < period.start,
            InvoiceLineRow.type.in_(FIXED_FEE_LINES),
            InvoiceLineRow.period_start >= period.start,
            InvoiceLineRow.period_end <= period.end,
        )
        .order_by(InvoiceRow.period_start, InvoiceLineRow.position)
    ).all()
    credits: dict[str, Decimal] = {}
    for line, invoice in lines:
        assert line.period_start is not None and line.period_end is not None
        span = Period(line.period_start, line.period_end)
        zone = _zone(row)
        net = split_fee(line.amount - line.discount_amount, span, at, invoice.currency, zone)
        tax = split_fee(line.tax_amount, span, at, invoice.currency, zone)
        if net.unused + tax.unused <= 0:
            continue
        if invoice.status == "DRAFT":
            raise Conflict(
                f"invoice {invoice.id} billed the advance fee and is still a DRAFT: finalize "
                "it first, or terminate with creditUnusedAdvanceFees false",
                code="advance_invoice_draft",
                details={"invoiceId": invoice.id},
            )
        credits[invoice.id] = credits.get(invoice.id, ZERO) + net.unused + tax.unused
    return credits


def credit_unused_advance_fees(
    session: Session, tenant_id: str, row: SubscriptionRow, at: datetime, now: datetime
) -> list[str]:
    """Credit notes, issued and applied, for `advance_credits`; returns their ids."""
    ids = []
    for invoice_id, credit in advance_credits(session, tenant_id, row, at).items():
        invoice = invoices.get_invoice(session, tenant_id, invoice_id)
        amount = min(credit, credit_notes.estimate(session, tenant_id, invoice_id).creditable)
        if amount <= 0:
            continue
        # What is still due is offset; a paid invoice's credit goes to the customer balance.
        due = invoice.status in ("OPEN", "OVERDUE") and amount <= invoice.amount_due
        note = credit_notes.create(
            session,
            tenant_id,
            credit_notes.CreditNoteSpec(
                invoice_id=invoice_id,
                amount=amount,
                reason="ORDER_CHANGE",
                type="offset" if due else "credit",
                description=f"Unused advance fees of subscription {row.id} from {at.isoformat()}",
            ),
            now,
        )
        credit_notes.issue(session, tenant_id, note.id, now)
        credit_notes.apply(session, tenant_id, note.id, now)
        ids.append(note.id)
    return ids


def _target_plan(session: Session, tenant_id: str, old: SubscriptionRow, plan_code: str) -> PlanRow:
    """The plan `old` may change to: known, another one, live, in the same currency."""
    try:
        plan = get_plan(session, tenant_id, plan_code)
    except NotFound as exc:
        raise ValidationFailed(exc.message) from None
    if plan.id == old.plan_id:
        raise ValidationFailed(f"the subscription is already on plan {plan_code!r}")
    if plan.archived_at is not None:
        raise Conflict(
            f"plan {plan.code!r} is archived: it takes no new subscriptions", code="plan_archived"
        )
    if plan.currency != old.plan.currency:
        raise ValidationFailed(
            f"plan {plan.code!r} bills in {plan.currency} but the subscription bills in "
            f"{old.plan.currency}",
            code="currency_mismatch",
        )
    return plan


def start_next_subscription(
    session: Session, tenant_id: str, old: SubscriptionRow, plan_code: str, start: datetime
) -> SubscriptionRow:
    """The subscription to `plan_code` that follows `old` from `start` (no overrides:
    they belonged to the old plan's charges), linked both ways."""
    plan = _target_plan(session, tenant_id, old, plan_code)
    row = SubscriptionRow(
        id=new_id("sub"),
        tenant_id=tenant_id,
        customer_id=old.customer_id,
        plan_id=plan.id,
        start_date=start,
        end_date=None,
        status="active",
        overrides={},
        name=old.name,
        previous_subscription_id=old.id,
    )
    insert_unique(session, row, f"subscription {row.id!r} already exists")
    old.next_subscription_id = row.id
    session.flush()
    session.refresh(row)
    return row


def schedule_plan_change(
    session: Session, tenant_id: str, subscription_id: str, plan_code: str, now: datetime
) -> tuple[SubscriptionRow, SubscriptionRow]:
    """The old plan runs to the end of the current period; the new one starts there."""
    old = get_subscription(session, tenant_id, subscription_id)
    if old.status == "terminated":
        raise Conflict(f"subscription {subscription_id!r} is terminated", code="terminated")
    if old.next_subscription_id is not None:
        raise Conflict(
            f"subscription {subscription_id!r} already has a plan change",
            code="plan_change_pending",
        )
    boundary = period_containing(_interval(old), max(now, old.start_date), _zone(old)).end
    if old.end_date is not None and old.end_date <= boundary:
        raise ValidationFailed("the subscription ends before its current period does")
    new = start_next_subscription(session, tenant_id, old, plan_code, boundary)
    old.end_date = boundary
    session.flush()
    return old, new


def check_change(session: Session, tenant_id: str, subscription_id: str, plan_code: str) -> None:
    """Refuse a change before anything is written: unknown plan, same plan, currency."""
    old = get_subscription(session, tenant_id, subscription_id)
    if old.status == "terminated":
        raise Conflict(f"subscription {subscription_id!r} is terminated", code="terminated")
    if old.next_subscription_id is not None:
        raise Conflict(
            f"subscription {subscription_id!r} already has a plan change",
            code="plan_change_pending",
        )
    _target_plan(session, tenant_id, old, plan_code)


@dataclass(frozen=True)
class Termination:
    """What a termination (or an immediate plan change) did."""

    subscription_id: str
    invoice_ids: list[str]
    credit_note_ids: list[str]
    next_subscription_id: str | None = None


def terminate(
    sessions: sessionmaker[Session],
    runner: BillRunner,
    tenant_id: str,
    subscription_id: str,
    *,
    at: datetime | None,
    final_invoice: bool,
    credit_unused: bool,
    now: datetime,
    next_plan: str | None = None,
) -> Termination:
    """End the subscription at `at` (default now); with `next_plan`, start its successor
    there.

    Three steps, each committed: the end (and the successor); the final invoice of
    [period start, at) through the bill run's rating path; the credit notes. If the
    invoice fails, its period is left to the period's bill run (nothing is billed twice)."""
    ended = now if at is None else at
    with sessions() as session, session.begin():
        if next_plan is not None:
            check_change(session, tenant_id, subscription_id, next_plan)
        row = end_subscription(session, tenant_id, subscription_id, ended, now)
        if credit_unused:
            advance_credits(session, tenant_id, row, ended)  # a DRAFT refuses, before any write
        successor = (
            start_next_subscription(session, tenant_id, row, next_plan, ended).id
            if next_plan is not None
            else None
        )
        domain = catalog.subscription_domain(row, catalog.metrics_by_code(session, tenant_id))
        customer_row_id = row.customer_id
        period = final_period(row, ended)
    invoice_ids: list[str] = []
    # A scheduled end (`at` after now) is billed by its period's bill run, up to `at`:
    # its usage is not all in yet.
    if final_invoice and period is not None and ended <= now:
        invoice_ids = runner.bill_subscription(tenant_id, domain, customer_row_id, period)
    notes: list[str] = []
    if credit_unused:
        with sessions() as session, session.begin():
            row = get_subscription(session, tenant_id, subscription_id)
            notes = credit_unused_advance_fees(session, tenant_id, row, ended, now)
    return Termination(subscription_id, invoice_ids, notes, successor)


STATUSES = ("pending", "active", "terminated")


def public_status(row: SubscriptionRow, now: datetime) -> str:
    """`pending` until the start (a scheduled plan change's successor, a future start),
    then the stored status (`active` or `terminated`; `active` until a scheduled end)."""
    if row.status == "active" and row.start_date > now:
        return "pending"
    if row.status == "terminated" and row.terminated_at is not None and row.terminated_at > now:
        return "active"  # a scheduled end, not reached yet
    return row.status


def list_subscriptions(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None,
    now: datetime,
    customer_external_id: str | None = None,
    plan_code: str | None = None,
    status: str | None = None,
    overridden: bool | None = None,
) -> Page[SubscriptionRow]:
    """The tenant's subscriptions, newest first, one page, filtered by customer, plan
    code, status (as `public_status` tells it) and whether they carry overrides."""
    query = select(SubscriptionRow).where(SubscriptionRow.tenant_id == tenant_id)
    if customer_external_id is not None:
        query = query.join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id).where(
            CustomerRow.external_id == customer_external_id
        )
    if plan_code is not None:
        query = query.join(PlanRow, PlanRow.id == SubscriptionRow.plan_id).where(
            PlanRow.code == plan_code
        )
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}")
        if status == "terminated":
            query = query.where(SubscriptionRow.status == "terminated")
        else:
            started = SubscriptionRow.start_date <= now
            query = query.where(
                SubscriptionRow.status == "active", started if status == "active" else ~started
            )
    if overridden is not None:
        # Overrides are a JSON object, stored as written: "{}" when there are none.
        text = cast(SubscriptionRow.overrides, String)
        none = text.is_(None) | text.in_(("{}", "null"))
        query = query.where(~none if overridden else none)
    return keyset_page(session, query, SubscriptionRow, limit, cursor)
