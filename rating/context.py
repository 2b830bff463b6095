"""What the pipeline carries from stage to stage.

`BillingContext` is the input (built by the invoicing layer from the ledger and from
ClickHouse); `RatingState` is the work in progress that each stage returns anew.
The rules these types implement are written down in docs/billing-rules.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from rating.model import Group, InvoiceLine, MeteredQuantity, Period, Subscription, UsageCharge
from rating.money import ZERO
from rating.periods import period_containing


@dataclass(frozen=True)
class TaxRate:
    code: str
    name: str
    rate: Decimal  # percent, e.g. Decimal("20") for 20 %
    country: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class QuotedTax:
    """A tax provider's answer for one invoice line (the Tax stage's per-line input).

    `rate` is the line's total rate in percent, for display; `amount` is the exact tax
    to invoice, already in the currency's minor unit. It is taken as given, never
    recomputed from the rate: providers round per jurisdiction (33.33 at 6 % + 0.25 % +
    1 % is 2.00 + 0.08 + 0.33 = 2.41, where 7.25 % of the whole line would be 2.42).
    """

    rate: Decimal
    amount: Decimal


LineTaxes = Mapping[int, QuotedTax]
"""Per-line provider results, keyed by the line's position in `RatingState.lines`."""


@dataclass(frozen=True)
class AppliedCoupon:
    """A coupon the ledger applies to this invoice (it leaves out expired or used-up ones)."""

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
    priority: int  # 1 is applied first
    balance: Decimal
    expires_at: datetime | None = None
    metric_codes: tuple[str, ...] = ()
    fee_types: tuple[str, ...] = ()  # LineType values: "CHARGE", "USAGE_FEE", ...


@dataclass(frozen=True)
class RolloverBucket:
    """Unused included quantity of one period, carried to later periods.

    `expires_at` is the end of the last period that may use it (None: never expires):
    quantity left unused in period P0 by a charge whose rollover expires after N
    periods may be used in P0+1 … P0+N, so it expires at the end of P0+N.
    """

    quantity: Decimal
    expires_at: datetime | None = None

    def usable_in(self, period: Period) -> bool:
        """Whether this carry may still be used in `period`."""
        return self.expires_at is None or period.end <= self.expires_at


@dataclass(frozen=True)
class ProgressiveBilled:
    """What the period's progressive-billing invoices already billed, before taxes:
    per (charge id, group) of their usage lines, and their numbers (for the credit line)."""

    amounts: Mapping[tuple[str, Group], Decimal]
    quantities: Mapping[tuple[str, Group], Decimal] = field(default_factory=dict)
    invoice_numbers: tuple[str, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


@dataclass(frozen=True)
class BillingContext:
    subscription: Subscription
    period: Period
    usage: tuple[MeteredQuantity, ...] = ()
    # Every stored rollover bucket per charge id, oldest first; expired ones are ignored.
    rollover_in: Mapping[str, tuple[RolloverBucket, ...]] = field(default_factory=dict)
    coupons: tuple[AppliedCoupon, ...] = ()
    tax_rates: tuple[TaxRate, ...] = ()
    wallets: tuple[WalletBalance, ...] = ()
    # When the invoice is issued (wallet expiry is judged then); None: at the period's end.
    issued_at: datetime | None = None
    # Prior-period lines for late usage of finalized invoices (see rating.late).
    prior_lines: tuple[InvoiceLine, ...] = ()
    # Usage of this period already invoiced by progressive billing (see rating.progressive).
    progressive: ProgressiveBilled | None = None
    # Per fixed-charge id: the taxes of the add-on it bills, which replace the customer's
    # location rates on its lines (an exempt customer still pays none).
    charge_tax_rates: Mapping[str, tuple[TaxRate, ...]] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        return self.subscription.plan.currency

    @property
    def issue_date(self) -> datetime:
        return self.period.end if self.issued_at is None else self.issued_at

    @property
    def active(self) -> Period | None:
        """The part of the period in which the subscription is active."""
        return self.period.overlap(self.subscription.start, self.subscription.end)

    @property
    def advance_period(self) -> Period | None:
        """The period this invoice opens: its pay-in-advance fees are billed here.

        The calendar period that starts where `period` ends; None when `period` does not
        end on a period boundary (a mid-period usage preview opens nothing).
        """
        following = period_containing(
            self.subscription.plan.interval, self.period.end, self.subscription.customer.zone
        )
        return following if following.start == self.period.end else None

    @property
    def opens_subscription(self) -> bool:
        """Whether the subscription starts in this period (its first invoice).

        No earlier invoice opened this period, so its own pay-in-advance fees and the
        setup fees are billed here.
        """
        return self.period.start <= self.subscription.start < self.period.end


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
    allowance_used: Decimal = ZERO  # included + rolled-over quantity consumed by this group


@dataclass(frozen=True)
class CouponUse:
    coupon_id: str
    amount: Decimal  # discounted on this invoice
    remaining: Decimal = ZERO  # fixed coupons: unused amount the ledger carries forward


@dataclass(frozen=True)
class WalletDebit:
    wallet_id: str
    amount: Decimal


@dataclass(frozen=True)
class RatingState:
    context: BillingContext
    quantities: tuple[ChargeQuantity, ...] = ()
    # Per charge id: included quantity + unexpired rolled-over quantity of this period.
    allowances: Mapping[str, Decimal] = field(default_factory=dict)
    # Per charge id with rollover: the unexpired incoming buckets, oldest first.
    rollover_buckets: Mapping[str, tuple[RolloverBucket, ...]] = field(default_factory=dict)
    # Per charge id with rollover: the buckets the ledger stores after this period
    # (they replace what it had), oldest first.
    rollover_out: Mapping[str, tuple[RolloverBucket, ...]] = field(default_factory=dict)
    lines: tuple[InvoiceLine, ...] = ()
    coupon_uses: tuple[CouponUse, ...] = ()
    tax_rates_applied: tuple[TaxRate, ...] = ()
    wallet_debits: tuple[WalletDebit, ...] = ()

    def evolve(self, **changes: object) -> RatingState:
        """A copy with `changes` (every stage returns a new state).

        Ten stages per invoice, a run of many thousands: the copy is made directly
        rather than through `dataclasses.replace` (which re-runs __init__), with the
        same check that only fields are named."""
        unknown = changes.keys() - _STATE_FIELDS
        if unknown:
            raise TypeError(f"RatingState has no field(s) {sorted(unknown)}")
        state = object.__new__(RatingState)
        state.__dict__.update(self.__dict__)
        state.__dict__.update(changes)
        return state


_STATE_FIELDS = frozenset(f.name for f in fields(RatingState))
