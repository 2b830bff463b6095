"""Late usage: events stored after their period's invoice was finalized.

BILLING.md: they are billed as prior-period lines on the subscription's next invoice
(`rating.late` prices them). The cutoff is "now" from the injected clock: the lines
bill what was stored up to it, and record it (`late_through`) so that the next run
starts from there. A re-run at the same clock time gives the same lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invoicing.billing.contexts import batches
from invoicing.billing.selection import BillingItem
from invoicing.billing.usage import UsageSource
from invoicing.models import InvoiceLineRow, InvoiceRow
from rating.late import late_usage_lines, supports_late_billing
from rating.model import Group, InvoiceLine, Period

LATE_STATUSES = ("OPEN", "PAID", "OVERDUE", "UNCOLLECTIBLE")
SUBSCRIPTION = "subscription"


class _Finalized:
    """A finalized invoice of a subscription and how far its late usage is billed."""

    __slots__ = ("id", "period", "since")

    def __init__(self, invoice_id: str, period: Period, since: datetime) -> None:
        self.id = invoice_id
        self.period = period
        self.since = since


class LateUsage:
    """The late usage of a chunk's items: finalized invoices loaded in bulk, quantities
    asked of the usage source only for customers with events stored late."""

    def __init__(
        self,
        usage: UsageSource,
        tenant_id: str,
        cutoff: datetime,
        finalized: dict[str, list[_Finalized]],
    ) -> None:
        self._usage = usage
        self._tenant_id = tenant_id
        self.cutoff = cutoff
        self._finalized = finalized

    @classmethod
    def load(
        cls,
        session: Session,
        usage: UsageSource,
        tenant_id: str,
        items: Sequence[BillingItem],
        cutoff: datetime,
        *,
        exclude_invoice_id: str | None = None,
    ) -> LateUsage:
        """The finalized invoices of the items' subscriptions that may have late usage.

        `exclude_invoice_id` is a draft being refreshed: its own late lines are being
        replaced, so they do not count as billed."""
        late = cls(usage, tenant_id, cutoff, {})
        if not items:
            return late
        before = max(i.period.start for i in items)
        oldest = session.execute(
            select(func.min(InvoiceRow.finalized_at)).where(
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.status.in_(LATE_STATUSES),
                InvoiceRow.period_end <= before,
                InvoiceRow.type == SUBSCRIPTION,
            )
        ).scalar()
        if oldest is None:
            return late
        # One usage query says which customers have anything stored late (usually none).
        customers = usage.customers_with_late_events(tenant_id, before, oldest)
        subscriptions = sorted(
            {i.subscription.id for i in items if i.subscription.customer.external_id in customers}
        )
        invoices: list[tuple[str, str, datetime, datetime, datetime]] = []
        for ids in batches(subscriptions):
            invoices.extend(
                (row[0], str(row[1]), row[2], row[3], row[4])
                for row in session.execute(
                    select(
                        InvoiceRow.id,
                        InvoiceRow.subscription_id,
                        InvoiceRow.period_start,
                        InvoiceRow.period_end,
                        InvoiceRow.finalized_at,
                    )
                    .where(
                        InvoiceRow.tenant_id == tenant_id,
                        InvoiceRow.subscription_id.in_(list(ids)),
                        InvoiceRow.status.in_(LATE_STATUSES),
                        InvoiceRow.period_end <= before,
                        InvoiceRow.finalized_at.is_not(None),
                        # A period's own invoice: progressive ones bill part of it.
                        InvoiceRow.type == SUBSCRIPTION,
                    )
                    .order_by(InvoiceRow.period_start)
                )
                if row[4] is not None
            )
        billed_through: dict[str, datetime] = {}
        for ids in batches([row[0] for row in invoices]):
            for prior_id, through in session.execute(
                select(InvoiceLineRow.prior_invoice_id, InvoiceLineRow.late_through).where(
                    InvoiceLineRow.prior_invoice_id.in_(list(ids)),
                    InvoiceLineRow.invoice_id != (exclude_invoice_id or ""),
                    InvoiceLineRow.late_through.is_not(None),
                )
            ):
                if prior_id is None or through is None:
                    continue
                if prior_id not in billed_through or through > billed_through[prior_id]:
                    billed_through[prior_id] = through
        for invoice_id, sub_id, start, end, finalized_at in sorted(invoices, key=lambda r: r[2]):
            since = max(finalized_at, billed_through.get(invoice_id, finalized_at))
            late._finalized.setdefault(sub_id, []).append(
                _Finalized(invoice_id, Period(start, end), since)
            )
        return late

    def prior_lines(self, item: BillingItem) -> tuple[InvoiceLine, ...]:
        """Prior-period lines for the item: late usage of the subscription's finalized
        invoices of periods ending by the item's period start, stored up to the cutoff."""
        subscription = item.subscription
        lines: list[InvoiceLine] = []
        for old in self._finalized.get(subscription.id, ()):
            if old.period.end > item.period.start or old.since >= self.cutoff:
                continue
            active = old.period.overlap(subscription.start, subscription.end) or old.period
            customer = subscription.customer.external_id
            billed: dict[tuple[str, Group], Decimal] = {}
            known: dict[tuple[str, Group], Decimal] = {}
            for charge in subscription.plan.charges:
                if not supports_late_billing(charge):
                    continue
                for through, target in ((old.since, billed), (self.cutoff, known)):
                    quantities = self._usage.charge_quantities(
                        self._tenant_id, customer, charge, active, old.period, through
                    )
                    for group, quantity in quantities.items():
                        target[(charge.id, group)] = quantity
            lines.extend(
                late_usage_lines(
                    subscription.plan.charges,
                    old.period,
                    old.id,
                    billed,
                    known,
                    subscription.plan.currency,
                )
            )
        return tuple(lines)

    def billed(self, item: BillingItem, lines: Sequence[InvoiceLine]) -> None:
        """Record that the item's invoice bills late usage through the cutoff."""
        billed_ids = {line.prior_invoice_id for line in lines if line.prior_invoice_id}
        for old in self._finalized.get(item.subscription.id, ()):
            if old.id in billed_ids:
                old.since = max(old.since, self.cutoff)
