"""Progressive billing in the stream: thresholds measured after each stored batch.

The stream worker calls `ProgressiveWatch.after_write` with the events of a stored
batch. For each subscription of their customers that has `usageThresholds` (on its
plan, or its override) and is active now, the current period's usage amount is priced
as the usage read-out prices it (`invoicing.usage.period_usage_lines`). The thresholds
it has reached that were not reached before in this period each get a crossing row
(unique per subscription, period and amount), and together one invoice of `type`
`progressive_billing` for the usage not yet billed (`rating.progressive`), taxed as
the bill run taxes, numbered and finalized at once, with its `invoice.created` and
`invoice.finalized` domain events, all in one transaction. A redelivered batch, a
resent event or a second worker finds the crossing rows and bills nothing again.

The period-end invoice deducts what these invoices billed (the bill run loads them:
`invoicing.billing.contexts`). Rules: docs/progressive-billing.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from invoicing import events as domain_events
from invoicing.billing.contexts import (
    BILLED_STATUSES,
    PROGRESSIVE,
    batches,
    load_progressive,
    load_rollover,
)
from invoicing.billing.writer import INVOICE_LINES, bulk_insert, line_rows
from invoicing.billing_entities import customer_tax_rates
from invoicing.custom_sections import copy_onto
from invoicing.invoices import finalize, get_invoice
from invoicing.models import (
    CustomerRow,
    InvoiceRow,
    PlanRow,
    ProgressiveCrossingRow,
    SubscriptionRow,
    new_id,
)
from invoicing.tax.service import TaxService
from invoicing.taxes import tax_rates
from invoicing.usage import SubscriptionCache, period_usage_lines, periods_usage_lines
from rating.context import BillingContext, ProgressiveBilled, RatingState, RolloverBucket
from rating.model import InvoiceLine, Period, Subscription
from rating.money import ZERO
from rating.periods import period_containing
from rating.progressive import reached, unbilled_lines, usage_amount
from streams.schema import UsageEvent
from streams.usage_store import UsageStore

log = logging.getLogger(__name__)

THRESHOLDS_TTL = 5.0  # seconds a tenant's customers with thresholds are cached


class ProgressiveWatch:
    """The stream worker's progressive-billing step (see the module docstring)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        usage: UsageStore,
        tax: TaxService,
        due_days: int,
    ) -> None:
        self._sessions = sessions
        self._usage = usage
        self._tax = tax
        self._due_days = due_days
        self._with_thresholds: dict[str, tuple[float, frozenset[str]]] = {}
        self._subscriptions_cache = SubscriptionCache(sessions)

    def customers_with_thresholds(self, tenant_id: str) -> frozenset[str]:
        """External ids of the tenant's customers whose subscriptions may have thresholds."""
        cached = self._with_thresholds.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < THRESHOLDS_TTL:
            return cached[1]
        with self._sessions() as session:
            found = frozenset(
                str(external_id)
                for (external_id,) in session.execute(
                    select(CustomerRow.external_id)
                    .join(SubscriptionRow, SubscriptionRow.customer_id == CustomerRow.id)
                    .join(PlanRow, PlanRow.id == SubscriptionRow.plan_id)
                    .where(
                        SubscriptionRow.tenant_id == tenant_id,
                        or_(
                            func.length(cast(PlanRow.usage_thresholds, String)) > 2,
                            cast(SubscriptionRow.overrides, String).like("%usageThresholds%"),
                        ),
                    )
                    .distinct()
                )
            )
        self._with_thresholds[tenant_id] = (time.monotonic(), found)
        return found

    def after_write(self, events: Sequence[UsageEvent], now: datetime) -> list[str]:
        """Bill the thresholds the stored `events` made their subscriptions reach;
        returns the ids of the progressive invoices issued."""
        touched: dict[str, set[str]] = {}
        for event in events:
            touched.setdefault(event.tenant_id, set()).add(event.customer_id)
        issued: list[str] = []
        for tenant_id, customers in touched.items():
            wanted = customers & self.customers_with_thresholds(tenant_id)
            if not wanted:
                continue
            subscriptions = self._subscriptions(tenant_id, wanted, now)
            pieces = [
                (s, period_containing(s.plan.interval, now, s.customer.zone)) for s in subscriptions
            ]
            # Rolled-over free units count as the period-end invoice will count them.
            carried: dict[str, dict[str, tuple[RolloverBucket, ...]]] = {}
            with_rollover = [s.id for s in subscriptions if any(c.rollover for c in s.plan.charges)]
            if with_rollover:
                with self._sessions() as session:
                    for ids in batches(with_rollover):
                        load_rollover(session, ids, carried)
            # Every subscription measured at once (one query per metric variant).
            measured = periods_usage_lines(self._usage, tenant_id, pieces, carried)
            for subscription in subscriptions:
                lines = measured.get(subscription.id)
                if lines is None:
                    continue
                try:
                    invoice_id = self.evaluate(tenant_id, subscription, now, lines)
                except Exception:
                    # One subscription's failure (a tax provider down, say) must not
                    # keep the others from being billed; it is measured again on its
                    # customer's next batch.
                    log.exception("progressive billing of %s failed", subscription.id)
                    continue
                if invoice_id is not None:
                    issued.append(invoice_id)
        return issued

    def _subscriptions(
        self, tenant_id: str, customers: set[str], now: datetime
    ) -> list[Subscription]:
        """The customers' subscriptions with thresholds that are active now."""
        held = self._subscriptions_cache.of(tenant_id, customers)
        return [
            s
            for customer in sorted(held)
            for s in held[customer]
            if s.plan.usage_thresholds and s.start <= now and (s.end is None or s.end > now)
        ]

    def evaluate(
        self,
        tenant_id: str,
        subscription: Subscription,
        now: datetime,
        lines: Sequence[InvoiceLine] | None = None,
    ) -> str | None:
        """Bill what the subscription's current period reached (its usage `lines` so far,
        measured here when not given); the invoice id, if any."""
        period = period_containing(subscription.plan.interval, now, subscription.customer.zone)
        if lines is None:
            lines = period_usage_lines(self._usage, tenant_id, subscription, period)
        amount = usage_amount(lines)
        hits = reached(subscription.plan.usage_thresholds, amount)
        if not hits:
            return None
        try:
            with self._sessions() as session, session.begin():
                return self._bill(
                    session, tenant_id, subscription, period, lines, amount, hits, now
                )
        except IntegrityError:
            return None  # another worker billed these thresholds first: once

    def _bill(
        self,
        session: Session,
        tenant_id: str,
        subscription: Subscription,
        period: Period,
        lines: Sequence[InvoiceLine],
        amount: Decimal,
        hits: list[Decimal],
        now: datetime,
    ) -> str | None:
        known = set(
            session.execute(
                select(ProgressiveCrossingRow.threshold).where(
                    ProgressiveCrossingRow.subscription_id == subscription.id,
                    ProgressiveCrossingRow.period_start == period.start,
                )
            ).scalars()
        )
        new = [h for h in hits if h not in known]
        if not new or self._period_invoiced(session, tenant_id, subscription, period):
            return None
        billed: dict[tuple[str, datetime], ProgressiveBilled] = {}
        load_progressive(session, [subscription.id], billed)
        previous = billed.get((subscription.id, period.start))
        delta = unbilled_lines(lines, previous)
        invoice_id = None
        if sum((ln.amount for ln in delta), ZERO) > 0:
            invoice_id = self._issue(session, tenant_id, subscription, period, delta, now)
        for threshold in new:
            session.add(
                ProgressiveCrossingRow(
                    id=new_id("pbx"),
                    tenant_id=tenant_id,
                    subscription_id=subscription.id,
                    period_start=period.start,
                    threshold=threshold,
                    amount=amount,
                    invoice_id=invoice_id,
                    crossed_at=now,
                )
            )
        session.flush()
        return invoice_id

    def _period_invoiced(
        self, session: Session, tenant_id: str, subscription: Subscription, period: Period
    ) -> bool:
        """Whether the period's own invoice exists: its usage is billed there."""
        return (
            session.execute(
                select(InvoiceRow.id).where(
                    InvoiceRow.tenant_id == tenant_id,
                    InvoiceRow.subscription_id == subscription.id,
                    InvoiceRow.type == "subscription",
                    InvoiceRow.period_start == period.start,
                    InvoiceRow.period_end == period.end,
                    InvoiceRow.status != "VOID",
                )
            ).first()
            is not None
        )

    def _issue(
        self,
        session: Session,
        tenant_id: str,
        subscription: Subscription,
        period: Period,
        delta: Sequence[InvoiceLine],
        now: datetime,
    ) -> str:
        customer_row_id = session.execute(
            select(SubscriptionRow.customer_id).where(SubscriptionRow.id == subscription.id)
        ).scalar_one()
        context = BillingContext(
            subscription=subscription,
            period=period,
            # The customer's billing entity's taxes stand in for the tenant's defaults.
            tax_rates=customer_tax_rates(
                session, tenant_id, customer_row_id, tax_rates(session, tenant_id)
            ),
            issued_at=now,
        )
        state = RatingState(context=context, lines=tuple(delta))
        rated = self._tax.finish(tenant_id, state).invoice
        # The invoice covers the usage from the period's start to now; two in the same
        # instant (a frozen clock) are kept apart by a microsecond.
        last_end = session.execute(
            select(func.max(InvoiceRow.period_end)).where(
                InvoiceRow.type == PROGRESSIVE,
                InvoiceRow.subscription_id == subscription.id,
                InvoiceRow.period_start == period.start,
            )
        ).scalar()
        end = now if last_end is None or last_end < now else last_end + timedelta(microseconds=1)
        invoice_id = new_id("inv")
        session.add(
            InvoiceRow(
                id=invoice_id,
                tenant_id=tenant_id,
                customer_id=customer_row_id,
                subscription_id=subscription.id,
                type=PROGRESSIVE,
                status="DRAFT",
                currency=rated.currency,
                period_start=period.start,
                period_end=end,
                subtotal=rated.subtotal,
                discount_total=rated.discount_total,
                tax_total=rated.tax_total,
                credit_total=rated.credit_total,
                total=rated.total,
                amount_paid=ZERO,
                amount_due=rated.amount_due,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        bulk_insert(session, INVOICE_LINES, line_rows(invoice_id, rated, None))
        invoice = get_invoice(session, tenant_id, invoice_id)
        session.refresh(invoice)
        copy_onto(session, invoice)
        data = domain_events.invoice_data(invoice)
        domain_events.record(session, tenant_id, "invoice.created", invoice_id, data, now)
        finalize(session, tenant_id, invoice_id, self._due_days, now)  # invoice.finalized
        return invoice_id


__all__ = ["BILLED_STATUSES", "ProgressiveWatch"]
