"""What the catalog, customer and credit functions take: plain typed values.

Callers (the API's request models, the CLI, benchmarks) build these from input they
have already parsed; decimals are exact `Decimal`s, times are zone-aware. The functions
that take them check the domain rules: known metrics and plans, ISO codes, pricing
properties, ranges that depend on other values.

A patch (`...Patch`) changes what it carries: a non-nullable field left `None` is
unchanged; a nullable field is changed (possibly to `None`) only if it is in `sent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Filters of a metric or charge: property -> the values it may take.
Filters = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class MetricSpec:
    code: str
    name: str
    aggregation: str
    description: str | None = None
    filters: Filters = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    # Declared after `filters`: in the class body this name hides `dataclasses.field`.
    field: str | None = None  # None: the event's "value"
    rounding_function: str | None = None  # round | ceil | floor (rating/rounding.py)
    rounding_precision: int | None = None  # default 0 with a function


@dataclass(frozen=True)
class MetricPatch:
    name: str | None = None
    description: str | None = None
    aggregation: str | None = None
    field: str | None = None
    filters: Filters | None = None
    group_by: tuple[str, ...] | None = None
    rounding_function: str | None = None
    rounding_precision: int | None = None
    sent: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RolloverSpec:
    """Unused included quantity carried to later periods, up to `cap`."""

    cap: Decimal | None = None
    expiry_periods: int | None = None


@dataclass(frozen=True)
class ChargeSpec:
    metric: str
    model: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    included_quantity: Decimal | None = None
    hard_cap: Decimal | None = None
    rollover: RolloverSpec | None = None
    pay_in_advance: bool = False
    filters: Filters = field(default_factory=dict)


@dataclass(frozen=True)
class FixedChargeSpec:
    name: str
    amount: Decimal | None  # None: the add-on's amount (an addOnCode is then required)
    units: Decimal = Decimal(1)
    id: str | None = None
    one_time: bool = False
    pay_in_advance: bool | None = None  # None: in advance exactly when one-time
    prorated: bool = True
    add_on_code: str | None = None  # an add-on of the catalog: its name, amount, taxes


@dataclass(frozen=True)
class UsageThresholdSpec:
    """Progressive billing: invoice the usage so far when its amount reaches `amount`."""

    amount: Decimal
    recurring: bool = False


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    currency: str
    interval: str
    description: str | None = None
    base_fee: Decimal | None = None
    pay_in_advance: bool = False
    trial_days: int = 0
    minimum_commitment: Decimal | None = None
    maximum_spend: Decimal | None = None
    charges: tuple[ChargeSpec, ...] = ()
    fixed_charges: tuple[FixedChargeSpec, ...] = ()
    usage_thresholds: tuple[UsageThresholdSpec, ...] = ()
    entitlements: tuple[EntitlementSpec, ...] = ()


@dataclass(frozen=True)
class EntitlementSpec:
    """A feature granted with its privilege values (invoicing/features.py checks them)."""

    feature: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class CustomerSpec:
    external_id: str
    name: str
    currency: str
    email: str | None = None
    country: str | None = None
    region: str | None = None
    tax_exempt: bool = False
    timezone: str | None = None  # None: UTC
    invoice_grace_days: int = 0
    net_payment_term_days: int | None = None  # None: the process's default
    payment_provider: str | None = None  # None: payments recorded by hand
    payment_provider_customer_id: str | None = None
    address: PostalAddressSpec | None = None


@dataclass(frozen=True)
class PostalAddressSpec:
    """A customer's postal address and tax id (each part optional)."""

    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    tax_id: str | None = None


ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "postal_code", "tax_id")


@dataclass(frozen=True)
class CustomerPatch:
    name: str | None = None
    email: str | None = None
    currency: str | None = None
    country: str | None = None
    region: str | None = None
    tax_exempt: bool | None = None
    timezone: str | None = None
    invoice_grace_days: int | None = None
    net_payment_term_days: int | None = None
    payment_provider: str | None = None
    payment_provider_customer_id: str | None = None
    # Only the parts of the address in `sent` change (null clears one).
    address: PostalAddressSpec = PostalAddressSpec()
    sent: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BillingEntitySpec:
    """The seller of a tenant's invoices (`PUT /billing-entity`), replaced whole."""

    legal_name: str
    address_line1: str
    city: str
    postal_code: str
    country: str
    address_line2: str | None = None
    tax_id: str | None = None
    email: str | None = None
    iban: str | None = None


@dataclass(frozen=True)
class SubscriptionSpec:
    customer_id: str  # the customer's external id
    plan_code: str
    start_date: datetime
    end_date: datetime | None = None
    id: str | None = None
    # Per-charge overrides (`{"charges": {charge id or metric: {...}}, "baseFee": ...}`),
    # as the wire sends them; checked against the plan when the subscription is created.
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaxSpec:
    code: str
    name: str
    rate: Decimal  # a percentage
    country: str | None = None
    region: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class CouponSpec:
    code: str
    kind: str  # percentage | fixed (fixed_amount is a synonym)
    name: str | None = None
    percentage: Decimal | None = None
    amount: Decimal | None = None
    currency: str | None = None
    frequency: str = "once"
    frequency_duration: int | None = None
    plan_codes: tuple[str, ...] = ()
    metric_codes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    description: str | None = None


@dataclass(frozen=True)
class AppliedCouponSpec:
    coupon_code: str
    # Overrides of the coupon's terms for this customer (None: the coupon's).
    amount: Decimal | None = None  # a fixed coupon's amount
    percentage: Decimal | None = None  # a percentage coupon's rate
    frequency: str | None = None
    frequency_duration: int | None = None


@dataclass(frozen=True)
class WalletSpec:
    customer_id: str  # the customer's external id
    currency: str | None = None  # None: the customer's
    name: str | None = None
    credits: Decimal = Decimal(0)  # granted credits (the contract's older name)
    priority: int = 50
    expires_at: datetime | None = None
    scope_metrics: tuple[str, ...] = ()
    scope_fee_types: tuple[str, ...] = ()
    rate_amount: Decimal = Decimal(1)  # currency per credit
    paid_credits: Decimal = Decimal(0)
    granted_credits: Decimal = Decimal(0)
    rules: tuple[WalletRuleSpec, ...] = ()


@dataclass(frozen=True)
class WalletRuleSpec:
    """An auto top-up rule: below `threshold_credits`, or every `interval`."""

    trigger: str  # threshold | interval
    threshold_credits: Decimal | None = None
    interval: str | None = None  # weekly | monthly
    paid_credits: Decimal = Decimal(0)
    granted_credits: Decimal = Decimal(0)


@dataclass(frozen=True)
class WalletPatch:
    """What `PATCH /wallets/{id}` changes (the patch rule above: `expires_at` and
    `name` are nullable; scope lists and rules replace the old ones when given)."""

    name: str | None = None
    priority: int | None = None
    expires_at: datetime | None = None
    scope_metrics: tuple[str, ...] | None = None
    scope_fee_types: tuple[str, ...] | None = None
    rules: tuple[WalletRuleSpec, ...] | None = None
    sent: frozenset[str] = frozenset()


# The tax override's amounts are parsed (rating.money.to_decimal) by `override_tax`
# after it checked that the invoice is a DRAFT: the wrong state is a Conflict even when
# an amount is also malformed.
@dataclass(frozen=True)
class LineTaxOverride:
    line_id: str
    tax_amount: object


@dataclass(frozen=True)
class TaxOverrideSpec:
    tax_total: object = None
    reason: str | None = None
    lines: tuple[LineTaxOverride, ...] = ()
