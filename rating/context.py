"""What the pipeline carries from stage to stage.

`BillingContext` is the input (built by the invoicing layer from the ledger and from
ClickHouse); `RatingState` is the work in progress that each stage returns anew.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from rating.model import (
    ZERO,
    Group,
    InvoiceLine,
    MeteredQuantity,
    Period,
    Subscription,
    UsageCharge,
)


@dataclass(frozen=True)
class TaxRate:
    code: str
    name: str
    rate: Decimal  # percent, e.g. Decimal("20") for 20 %
    country: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class AppliedCoupon:
    id: str
    code: str
    kind: str  # "percentage" | "fixed"
    percentage: Decimal = ZERO
    amount_remaining: Decimal = ZERO  # fixed coupons: what is left to use
    plan_codes: tuple[str, ...] = ()
    metric_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WalletBalance:
    id: str
    priority: int
    balance: Decimal
    expires_at: datetime | None = None
    metric_codes: tuple[str, ...] = ()
    fee_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class BillingContext:
    subscription: Subscription
    period: Period
    usage: tuple[MeteredQuantity, ...] = ()
    rollover_in: Mapping[str, Decimal] = field(default_factory=dict)
    coupons: tuple[AppliedCoupon, ...] = ()
    tax_rates: tuple[TaxRate, ...] = ()
    wallets: tuple[WalletBalance, ...] = ()

    @property
    def currency(self) -> str:
        return self.subscription.plan.currency


@dataclass(frozen=True)
class ChargeQuantity:
    """A charge's quantity for one group as it moves through the stages."""

    charge: UsageCharge
    group: Group
    quantity: Decimal  # aggregated (after the hard cap)
    billable: Decimal  # after allowance
    event_count: int = 0
    event_amounts: tuple[Decimal, ...] = ()
    capped_quantity: Decimal = ZERO  # usage above the hard cap, not billed


@dataclass(frozen=True)
class CouponUse:
    coupon_id: str
    amount: Decimal


@dataclass(frozen=True)
class WalletDebit:
    wallet_id: str
    amount: Decimal


@dataclass(frozen=True)
class RatingState:
    context: BillingContext
    quantities: tuple[ChargeQuantity, ...] = ()
    allowances: Mapping[str, Decimal] = field(default_factory=dict)
    rollover_out: Mapping[str, Decimal] = field(default_factory=dict)
    lines: tuple[InvoiceLine, ...] = ()
    coupon_uses: tuple[CouponUse, ...] = ()
    wallet_debits: tuple[WalletDebit, ...] = ()

    def evolve(self, **changes: object) -> RatingState:
        return replace(self, **changes)  # type: ignore[arg-type]
