"""Domain types of rating: what goes into the pipeline and what comes out.

Plain frozen dataclasses, no I/O. The invoicing layer builds them from the ledger
and from ClickHouse aggregates; the pipeline turns them into a rated invoice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rating.money import ZERO
from rating.rounding import QuantityRounding, round_quantity

Group = tuple[tuple[str, str], ...]
"""A groupBy combination as sorted (property, value) pairs; () when ungrouped."""


class LineType(StrEnum):
    CHARGE = "CHARGE"
    USAGE_FEE = "USAGE_FEE"
    SETUP_FEE = "SETUP_FEE"
    DISCOUNT = "DISCOUNT"
    TAX_ADJUSTMENT = "TAX_ADJUSTMENT"
    CREDIT = "CREDIT"
    PRORATION = "PRORATION"


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    WEIGHTED_SUM = "weighted_sum"


class Interval(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


@dataclass(frozen=True)
class Period:
    """A half-open billing interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def overlap(self, start: datetime, end: datetime | None) -> Period | None:
        """The part of this period inside [start, end), or None when disjoint."""
        lo = max(self.start, start)
        hi = self.end if end is None else min(self.end, end)
        return Period(lo, hi) if lo < hi else None

    @property
    def seconds(self) -> Decimal:
        return Decimal((self.end - self.start).total_seconds())


@dataclass(frozen=True)
class Metric:
    code: str
    name: str
    aggregation: Aggregation
    field: str = "value"
    filters: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    # Applied to each period quantity before charges price it (rating/rounding.py).
    rounding: QuantityRounding | None = None

    def rounded(self, quantity: Decimal) -> Decimal:
        """A period quantity of this metric as charges price it (its rounding applied)."""
        return round_quantity(quantity, self.rounding)


@dataclass(frozen=True)
class RolloverRule:
    """Unused included quantity carries to later periods, optionally capped and expiring."""

    cap: Decimal | None = None
    expiry_periods: int | None = None


@dataclass(frozen=True)
class UsageCharge:
    """A usage-based charge of a plan, with subscription overrides already applied."""

    id: str
    metric: Metric
    model: str
    properties: Mapping[str, Any]
    included_quantity: Decimal = ZERO
    hard_cap: Decimal | None = None
    rollover: RolloverRule | None = None
    pay_in_advance: bool = False
    filters: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class FixedCharge:
    """A flat recurring fee (CHARGE) or a one-time fee (SETUP_FEE) of a plan."""

    id: str
    name: str
    amount: Decimal
    units: Decimal = Decimal(1)
    one_time: bool = False
    pay_in_advance: bool = False
    prorated: bool = True
    # The catalog add-on it bills: its lines take the add-on's taxes (BillingContext).
    add_on_code: str | None = None


@dataclass(frozen=True)
class UsageThreshold:
    """Progressive billing: when the period's usage amount reaches `amount` (each
    multiple of it when `recurring`), the usage not yet billed is invoiced at once."""

    amount: Decimal
    recurring: bool = False


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    currency: str
    interval: Interval
    base_fee: Decimal = ZERO
    pay_in_advance: bool = False
    trial_days: int = 0
    minimum_commitment: Decimal | None = None
    maximum_spend: Decimal | None = None
    charges: tuple[UsageCharge, ...] = ()
    fixed_charges: tuple[FixedCharge, ...] = ()
    usage_thresholds: tuple[UsageThreshold, ...] = ()


@dataclass(frozen=True)
class Customer:
    external_id: str
    name: str
    currency: str
    country: str | None = None
    region: str | None = None
    tax_exempt: bool = False
    # The customer's days (docs/customer-timezones.md): periods close at its local
    # midnights and proration counts its local days. `datetime.UTC` for UTC customers.
    zone: tzinfo = UTC


@dataclass(frozen=True)
class Subscription:
    id: str
    customer: Customer
    plan: Plan
    start: datetime
    end: datetime | None = None
    # Earlier versions of the plan kept for this subscription (docs/plan-changes.md):
    # (until, plan), ascending: `plan` bills the periods starting before `until`
    # (and after the previous entry's); `self.plan` the periods after the last.
    plan_history: tuple[tuple[datetime, Plan], ...] = ()

    def for_period(self, start: datetime) -> Subscription:
        """This subscription with the plan version that bills the period starting at `start`."""
        if not self.plan_history:
            return self
        for until, plan in self.plan_history:
            if start < until:
                return dataclasses.replace(self, plan=plan, plan_history=())
        return dataclasses.replace(self, plan_history=())


@dataclass(frozen=True)
class MeteredQuantity:
    """The exact aggregate of one charge's metric over one period, for one group."""

    charge_id: str
    quantity: Decimal
    group: Group = ()
    event_count: int = 0
    # Per-transaction amounts in timestamp order; only filled for percentage charges,
    # whose fees are clamped per transaction.
    event_amounts: tuple[Decimal, ...] = ()


@dataclass(frozen=True)
class InvoiceLine:
    type: LineType
    description: str
    amount: Decimal
    quantity: Decimal = Decimal(1)
    unit_amount: Decimal = ZERO
    metric: str | None = None
    group: Group = ()
    charge_id: str | None = None
    tax_amount: Decimal = ZERO
    tax_rate: Decimal = ZERO
    # Amount of discounts allocated to this line (DISCOUNT lines carry the negative sum).
    discount_amount: Decimal = ZERO
    period_start: datetime | None = None
    period_end: datetime | None = None
    # Late usage of an earlier, finalized invoice billed on this one (prior-period line).
    prior_invoice_id: str | None = None


@dataclass(frozen=True)
class RatedInvoice:
    """The result of the pipeline for one subscription and one period."""

    subscription_id: str
    customer_id: str
    currency: str
    period: Period
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    credit_total: Decimal
    total: Decimal
    amount_due: Decimal
