"""Billing contexts for a chunk of items, from ledger state loaded in bulk.

One read per kind of state for the whole chunk (applied coupons, wallets, rollover
buckets), then each item's `BillingContext` is built from those maps. Items of one
chunk are rated in billing order, and what an invoice takes (a coupon's use, a wallet's
credits, the rollover it consumes and leaves) is carried to the next item of the same
customer or subscription in memory (`absorb`), exactly as the ledger will record it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invoicing.addons import add_on_taxes
from invoicing.billing.selection import BillingItem
from invoicing.billing_entities import entity_tax_codes, with_entity_taxes
from invoicing.models import (
    AddOnRow,
    AppliedCouponRow,
    CouponRow,
    InvoiceLineRow,
    InvoiceRow,
    RolloverBucketRow,
    WalletRow,
)
from rating.context import (
    AppliedCoupon,
    BillingContext,
    ProgressiveBilled,
    RolloverBucket,
    TaxRate,
    WalletBalance,
)
from rating.model import Group, InvoiceLine, MeteredQuantity
from rating.money import ZERO
from rating.pipeline import RatingResult

IN_BATCH = 5_000  # ids per IN (...) list: far below every backend's parameter limit

T = TypeVar("T")


def batches(values: Sequence[T], size: int = IN_BATCH) -> Iterator[Sequence[T]]:
    """`values` in slices of at most `size`."""
    for offset in range(0, len(values), size):
        yield values[offset : offset + size]


@dataclass
class CouponBalance:
    """What is left of an applied coupon, and how a use changes it (the rule of
    `invoicing.coupons.record_uses`, shared by the in-memory carry and the writes)."""

    kind: str
    frequency: str
    amount_remaining: Decimal | None
    periods_remaining: int | None
    active: bool = True

    def use(self, remaining: Decimal) -> None:
        """An invoice used the coupon, leaving `remaining` (fixed coupons)."""
        if self.frequency == "once":
            # A fixed coupon used once keeps its remainder for the next invoice.
            if self.kind == "fixed":
                self.amount_remaining = remaining
            if self.kind == "percentage" or remaining <= 0:
                self.active = False
        elif self.frequency == "recurring":
            self.periods_remaining = (self.periods_remaining or 1) - 1
            if self.periods_remaining <= 0:
                self.active = False
        # A recurring or forever fixed coupon takes up to its amount from each invoice:
        # its per-invoice amount stays.


@dataclass
class CouponState:
    """An applied coupon as the next invoice of its customer sees it."""

    coupon: AppliedCoupon
    balance: CouponBalance

    @property
    def active(self) -> bool:
        return self.balance.active

    def use(self, remaining: Decimal) -> None:
        self.balance.use(remaining)
        amount = self.balance.amount_remaining or ZERO
        if amount != self.coupon.amount_remaining:
            self.coupon = replace(self.coupon, amount_remaining=amount)


@dataclass
class WalletState:
    wallet: WalletBalance
    currency: str


@dataclass
class ChunkContexts:
    """The ledger state a chunk of items is rated with."""

    tax_rates: tuple[TaxRate, ...] = ()
    # The rate tables of customers whose billing entity has taxes (by customer row id).
    entity_taxes: dict[str, tuple[TaxRate, ...]] = field(default_factory=dict)
    # The taxes of the add-ons that plans' fixed charges bill (by add-on code; none: the
    # add-on names no taxes, or was deleted, and its charges take the location rates).
    add_on_taxes: dict[str, tuple[TaxRate, ...]] = field(default_factory=dict)
    coupons: dict[str, list[CouponState]] = field(default_factory=dict)  # by customer row id
    wallets: dict[str, list[WalletState]] = field(default_factory=dict)  # by customer row id
    # Unconsumed rollover buckets by subscription id, then charge id, oldest first.
    rollover: dict[str, dict[str, tuple[RolloverBucket, ...]]] = field(default_factory=dict)
    # What progressive invoices billed, by (subscription id, period start).
    progressive: dict[tuple[str, datetime], ProgressiveBilled] = field(default_factory=dict)

    def context(
        self,
        item: BillingItem,
        usage: tuple[MeteredQuantity, ...],
        prior_lines: tuple[InvoiceLine, ...] = (),
    ) -> BillingContext:
        """The item's context from the chunk's maps."""
        currency = item.subscription.plan.currency
        return BillingContext(
            subscription=item.subscription,
            period=item.period,
            usage=usage,
            rollover_in=self.rollover.get(item.subscription.id, {}),
            coupons=tuple(c.coupon for c in self.coupons.get(item.customer_row_id, ()) if c.active),
            tax_rates=self.entity_taxes.get(item.customer_row_id, self.tax_rates),
            wallets=tuple(
                w.wallet
                for w in self.wallets.get(item.customer_row_id, ())
                if w.currency == currency
            ),
            prior_lines=prior_lines,
            progressive=self.progressive.get((item.subscription.id, item.period.start)),
            charge_tax_rates={
                f.id: self.add_on_taxes[f.add_on_code]
                for f in item.subscription.plan.fixed_charges
                if f.add_on_code in self.add_on_taxes
            },
        )

    def absorb(self, item: BillingItem, result: RatingResult) -> None:
        """Carry what the item's invoice takes to the chunk's later items."""
        if result.coupon_uses:
            by_id = {c.coupon.id: c for c in self.coupons.get(item.customer_row_id, ())}
            for use in result.coupon_uses:
                if (state := by_id.get(use.coupon_id)) is not None:
                    state.use(use.remaining)
        if result.wallet_debits:
            by_wallet = {w.wallet.id: w for w in self.wallets.get(item.customer_row_id, ())}
            for debit in result.wallet_debits:
                if (entry := by_wallet.get(debit.wallet_id)) is not None:
                    entry.wallet = replace(
                        entry.wallet, balance=entry.wallet.balance - debit.amount
                    )
        if result.rollover_out:
            # The invoice consumes every stored bucket and stores what it hands on.
            self.rollover[item.subscription.id] = {
                charge_id: tuple(out) for charge_id, out in result.rollover_out.items() if out
            }


def load_contexts(
    session: Session, tenant_id: str, items: Sequence[BillingItem], tax_rates: tuple[TaxRate, ...]
) -> ChunkContexts:
    """The ledger state of the chunk's customers and subscriptions, one query per kind."""
    customers = sorted({i.customer_row_id for i in items})
    subscriptions = sorted({i.subscription.id for i in items if _has_rollover(i)})
    contexts = ChunkContexts(tax_rates=tax_rates)
    for ids in batches(customers):
        _load_coupons(session, tenant_id, ids, contexts.coupons)
        _load_wallets(session, tenant_id, ids, contexts.wallets)
        for customer_id, codes in entity_tax_codes(session, tenant_id, ids).items():
            contexts.entity_taxes[customer_id] = with_entity_taxes(tax_rates, codes)
    _load_add_on_taxes(session, tenant_id, items, contexts.add_on_taxes)
    for ids in batches(subscriptions):
        load_rollover(session, ids, contexts.rollover)
    if _any_progressive(session, tenant_id):
        every = sorted({i.subscription.id for i in items})
        for ids in batches(every):
            load_progressive(session, ids, contexts.progressive)
    return contexts


def _load_add_on_taxes(
    session: Session,
    tenant_id: str,
    items: Sequence[BillingItem],
    out: dict[str, tuple[TaxRate, ...]],
) -> None:
    """The taxes of every add-on the items' plans (each version) bill, by code."""
    codes = sorted(
        {
            f.add_on_code
            for i in items
            for plan in (i.subscription.plan, *(p for _, p in i.subscription.plan_history))
            for f in plan.fixed_charges
            if f.add_on_code is not None
        }
    )
    if not codes:
        return
    rows = session.execute(
        select(AddOnRow).where(AddOnRow.tenant_id == tenant_id, AddOnRow.code.in_(codes))
    ).scalars()
    for row in rows:
        if taxes := add_on_taxes(session, tenant_id, row):
            out[row.code] = taxes


PROGRESSIVE = "progressive_billing"
# A progressive invoice bills its usage once finalized; a voided one billed nothing.
BILLED_STATUSES = ("OPEN", "PAID", "OVERDUE", "UNCOLLECTIBLE")


def _any_progressive(session: Session, tenant_id: str) -> bool:
    """Whether the tenant has any progressive invoice (one indexed probe per chunk)."""
    return (
        session.execute(
            select(InvoiceRow.id)
            .where(InvoiceRow.type == PROGRESSIVE, InvoiceRow.tenant_id == tenant_id)
            .limit(1)
        ).first()
        is not None
    )


def load_progressive(
    session: Session,
    subscriptions: Sequence[str],
    out: dict[tuple[str, datetime], ProgressiveBilled],
) -> None:
    rows = session.execute(
        select(
            InvoiceRow.subscription_id,
            InvoiceRow.period_start,
            InvoiceRow.number,
            InvoiceLineRow.charge_id,
            InvoiceLineRow.group,
            InvoiceLineRow.amount,
            InvoiceLineRow.quantity,
        )
        .join(InvoiceLineRow, InvoiceLineRow.invoice_id == InvoiceRow.id)
        .where(
            InvoiceRow.type == PROGRESSIVE,
            InvoiceRow.subscription_id.in_(list(subscriptions)),
            InvoiceRow.status.in_(BILLED_STATUSES),
            InvoiceLineRow.type == "USAGE_FEE",
        )
        .order_by(InvoiceRow.period_start, InvoiceRow.number, InvoiceLineRow.position)
    )
    amounts: dict[tuple[str, datetime], dict[tuple[str, Group], Decimal]] = {}
    quantities: dict[tuple[str, datetime], dict[tuple[str, Group], Decimal]] = {}
    numbers: dict[tuple[str, datetime], list[str]] = {}
    for sub_id, start, number, charge_id, group, amount, quantity in rows:
        key = (str(sub_id), start)
        line_key = (str(charge_id or ""), tuple(sorted((group or {}).items())))
        by_line = amounts.setdefault(key, {})
        by_line[line_key] = by_line.get(line_key, ZERO) + amount
        counted = quantities.setdefault(key, {})
        counted[line_key] = counted.get(line_key, ZERO) + quantity
        seen = numbers.setdefault(key, [])
        if number and number not in seen:
            seen.append(number)
    for key, by_line in amounts.items():
        out[key] = ProgressiveBilled(by_line, quantities[key], tuple(numbers[key]))


def _has_rollover(item: BillingItem) -> bool:
    return any(charge.rollover is not None for charge in item.subscription.plan.charges)


def _load_coupons(
    session: Session, tenant_id: str, customers: Iterable[str], out: dict[str, list[CouponState]]
) -> None:
    rows = session.execute(
        select(
            AppliedCouponRow.id,
            AppliedCouponRow.customer_id,
            AppliedCouponRow.amount_remaining,
            AppliedCouponRow.periods_remaining,
            CouponRow.code,
            CouponRow.kind,
            # An application's own terms (invoicing.coupons.apply_coupon) win; rows
            # applied before they were copied have none.
            func.coalesce(AppliedCouponRow.percentage, CouponRow.percentage).label("percentage"),
            func.coalesce(AppliedCouponRow.frequency, CouponRow.frequency).label("frequency"),
            CouponRow.plan_codes,
            CouponRow.metric_codes,
        )
        .join(CouponRow, CouponRow.id == AppliedCouponRow.coupon_id)
        .where(
            AppliedCouponRow.tenant_id == tenant_id,
            AppliedCouponRow.customer_id.in_(list(customers)),
            AppliedCouponRow.status == "active",
        )
        # The order coupons apply in: oldest first.
        .order_by(AppliedCouponRow.created_at, AppliedCouponRow.id)
    )
    for row in rows:
        coupon = AppliedCoupon(
            id=row.id,
            code=row.code,
            kind=row.kind,
            percentage=row.percentage or ZERO,
            amount_remaining=row.amount_remaining or ZERO,
            plan_codes=tuple(row.plan_codes or ()),
            metric_codes=tuple(row.metric_codes or ()),
        )
        out.setdefault(row.customer_id, []).append(
            CouponState(
                coupon,
                CouponBalance(row.kind, row.frequency, row.amount_remaining, row.periods_remaining),
            )
        )


def _load_wallets(
    session: Session, tenant_id: str, customers: Iterable[str], out: dict[str, list[WalletState]]
) -> None:
    # An empty wallet pays nothing (the Route stage skips it): only those with credits.
    rows = session.execute(
        select(WalletRow).where(
            WalletRow.tenant_id == tenant_id,
            WalletRow.customer_id.in_(list(customers)),
            WalletRow.status == "active",
            WalletRow.balance > 0,
        )
    ).scalars()
    for row in rows:
        wallet = WalletBalance(
            id=row.id,
            priority=row.priority,
            balance=row.balance,
            expires_at=row.expires_at,
            metric_codes=tuple(row.scope_metrics or ()),
            fee_types=tuple(row.scope_fee_types or ()),
        )
        out.setdefault(row.customer_id, []).append(WalletState(wallet, row.currency))


def load_rollover(
    session: Session,
    subscriptions: Iterable[str],
    out: dict[str, dict[str, tuple[RolloverBucket, ...]]],
) -> None:
    rows = session.execute(
        select(
            RolloverBucketRow.subscription_id,
            RolloverBucketRow.charge_id,
            RolloverBucketRow.quantity,
            RolloverBucketRow.expires_at,
        )
        .where(
            RolloverBucketRow.subscription_id.in_(list(subscriptions)),
            RolloverBucketRow.consumed_by.is_(None),
        )
        .order_by(
            RolloverBucketRow.subscription_id, RolloverBucketRow.position, RolloverBucketRow.id
        )
    )
    for sub_id, charge_id, quantity, expires_at in rows:
        charges = out.setdefault(sub_id, {})
        charges[charge_id] = (*charges.get(charge_id, ()), RolloverBucket(quantity, expires_at))
