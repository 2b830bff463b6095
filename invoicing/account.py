"""The account of one customer, as the customer may see it (the portal's reads).

Every read here is scoped to one customer of one tenant, by the customer's ledger id.
What a customer sees differs from what the tenant sees in two ways: DRAFT invoices are
not shown (they are still being rated and may change or vanish), and the plans on offer
are the tenant's plans in the customer's currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from invoicing.catalog import metrics_by_code, subscription_domain
from invoicing.models import CustomerRow, InvoiceRow, PlanRow, SubscriptionRow, WalletRow
from invoicing.pages import Page, keyset_page, whole
from invoicing.usage import active_at
from rating.context import BillingContext
from rating.model import InvoiceLine, LineType, Period
from rating.periods import period_containing
from rating.pipeline import rate_until_tax

# Invoices a customer sees: issued ones, whatever became of them since.
HIDDEN_STATUSES = ("DRAFT",)
# Lines of a period's invoice that do not depend on usage.
FIXED_LINE_TYPES = frozenset({LineType.CHARGE, LineType.SETUP_FEE, LineType.PRORATION})


@dataclass(frozen=True)
class FixedPart:
    """The lines the current period's invoice will have whatever the usage."""

    subscription_id: str
    currency: str
    period: Period
    lines: tuple[InvoiceLine, ...]


def customer(session: Session, tenant_id: str, customer_id: str) -> CustomerRow | None:
    """The tenant's customer of that ledger id, or None."""
    row = session.get(CustomerRow, customer_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def subscriptions(session: Session, tenant_id: str, customer_id: str) -> list[SubscriptionRow]:
    """The customer's subscriptions, newest start first."""
    return list(
        session.execute(
            select(SubscriptionRow)
            .where(
                SubscriptionRow.tenant_id == tenant_id, SubscriptionRow.customer_id == customer_id
            )
            .order_by(SubscriptionRow.start_date.desc(), SubscriptionRow.id.desc())
        )
        .unique()
        .scalars()
    )


def current_subscription(rows: Sequence[SubscriptionRow], now: datetime) -> SubscriptionRow | None:
    """The latest-starting subscription active at `now` (the one the usage read-out
    prices in), else the next one to start, else None."""
    active = [r for r in rows if r.start_date <= now and (r.end_date is None or r.end_date > now)]
    if active:
        return max(active, key=lambda r: (r.start_date, r.id))
    upcoming = [r for r in rows if r.start_date > now]
    return min(upcoming, key=lambda r: (r.start_date, r.id)) if upcoming else None


def invoices(
    session: Session,
    tenant_id: str,
    customer_id: str,
    *,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[InvoiceRow]:
    """The customer's issued invoices (of one status), newest first, one page."""
    query = select(InvoiceRow).where(
        InvoiceRow.tenant_id == tenant_id,
        InvoiceRow.customer_id == customer_id,
        InvoiceRow.status.not_in(HIDDEN_STATUSES),
    )
    if status is not None:
        query = query.where(InvoiceRow.status == status.upper())
    return keyset_page(session, query, InvoiceRow, limit, cursor)


def invoice(session: Session, tenant_id: str, customer_id: str, invoice_id: str) -> InvoiceRow:
    """One of the customer's issued invoices; another customer's, or a DRAFT, is NotFound
    with the same message as an id that does not exist (nothing is learnt from it)."""
    row = (
        session.execute(
            select(InvoiceRow).where(
                InvoiceRow.id == invoice_id,
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.customer_id == customer_id,
                InvoiceRow.status.not_in(HIDDEN_STATUSES),
            )
        )
        .unique()
        .scalar_one_or_none()
    )
    if row is None:
        raise NotFound(f"invoice {invoice_id!r} not found")
    return row


def wallets(session: Session, tenant_id: str, customer_id: str) -> Page[WalletRow]:
    """The customer's wallets, newest first (one page)."""
    query = select(WalletRow).where(
        WalletRow.tenant_id == tenant_id, WalletRow.customer_id == customer_id
    )
    return whole(list(session.execute(query.order_by(WalletRow.created_at.desc())).scalars()))


def available_plans(
    session: Session, tenant_id: str, currency: str, *, limit: int, cursor: str | None
) -> Page[PlanRow]:
    """The tenant's plans a customer of `currency` could subscribe to, newest first
    (archived plans take no new subscriptions: docs/plan-changes.md)."""
    query = select(PlanRow).where(
        PlanRow.tenant_id == tenant_id, PlanRow.currency == currency, PlanRow.archived_at.is_(None)
    )
    return keyset_page(session, query, PlanRow, limit, cursor)


def fixed_part(
    session: Session, tenant_id: str, customer_id: str, now: datetime
) -> FixedPart | None:
    """The usage-independent lines (base fee, fixed charges, proration, setup fees) of
    the current period's invoice of the current subscription, as the bill run's rating
    stages produce them; None without a subscription active at `now`."""
    metrics = metrics_by_code(session, tenant_id)
    domain = [
        subscription_domain(r, metrics) for r in subscriptions(session, tenant_id, customer_id)
    ]
    current = active_at(sorted(domain, key=lambda s: (s.start, s.id)), now)
    if current is None:
        return None
    period = period_containing(current.plan.interval, now, current.customer.zone)
    state = rate_until_tax(BillingContext(subscription=current, period=period))
    lines = tuple(line for line in state.lines if line.type in FIXED_LINE_TYPES)
    return FixedPart(current.id, current.plan.currency, period, lines)


def included_quantities(
    session: Session, tenant_id: str, customer_id: str, now: datetime
) -> dict[str, Decimal]:
    """Per metric code, the included quantity of the current subscription's charge on
    it (overrides applied); a metric with several charges (filters) is left out, as
    which allowance a row of the read-out draws on is not one number."""
    metrics = metrics_by_code(session, tenant_id)
    domain = [
        subscription_domain(r, metrics) for r in subscriptions(session, tenant_id, customer_id)
    ]
    current = active_at(sorted(domain, key=lambda s: (s.start, s.id)), now)
    if current is None:
        return {}
    by_metric: dict[str, list[Decimal]] = {}
    for charge in current.plan.charges:
        by_metric.setdefault(charge.metric.code, []).append(charge.included_quantity)
    return {code: values[0] for code, values in by_metric.items() if len(values) == 1}
