"""Taxes, coupons (and coupons applied to customers), wallets and their transactions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Code, Public
from api.schemas.money import Decimal_, EndInstant, Timestamp, money, plain, plain_or_none
from invoicing.coupons import CouponPatch, frequency_of, percentage_of
from invoicing.models import AppliedCouponRow, CouponRow, TaxRow, WalletRow, WalletTransactionRow
from invoicing.specs import (
    AppliedCouponSpec,
    CouponSpec,
    TaxSpec,
    WalletPatch,
    WalletRuleSpec,
    WalletSpec,
)
from invoicing.taxes import TaxPatch
from invoicing.wallets import INBOUND, credits_of

# -- taxes -----------------------------------------------------------------------------


class TaxCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    rate: Decimal_ = Field(description="A percentage from 0 to 100")
    country: str | None = None
    region: str | None = None
    description: str | None = Field(default=None, max_length=2000)

    def to_spec(self) -> TaxSpec:
        return TaxSpec(
            code=self.code,
            name=self.name,
            rate=self.rate,
            country=self.country,
            region=self.region,
            description=self.description,
        )


class TaxUpdate(Body):
    """Only the fields sent change; null clears description, country or region. A new
    rate applies to what is rated from then on; issued invoices keep theirs."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    rate: Decimal_ | None = Field(default=None, description="A percentage from 0 to 100")
    description: str | None = Field(default=None, max_length=2000)
    country: str | None = None
    region: str | None = None

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> TaxPatch:
        return TaxPatch(
            name=self.name,
            rate=self.rate,
            description=self.description,
            country=self.country,
            region=self.region,
            sent=frozenset(self.model_fields_set),
        )


class TaxPublic(Public):
    id: str
    code: str
    name: str
    rate: Decimal_
    country: str | None
    region: str | None
    description: str | None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: TaxRow) -> TaxPublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            rate=plain(row.rate),
            country=row.country,
            region=row.region,
            description=row.description,
            created_at=row.created_at,
        )


# -- coupons ---------------------------------------------------------------------------


class CouponScopeIn(Body):
    plan_codes: list[str] | None = None
    metric_codes: list[str] | None = None
    billable_metric_codes: list[str] | None = None


class CouponCreate(Body):
    code: Code
    name: str | None = None
    type: str | None = Field(default=None, description="percentage | fixed")
    kind: str | None = Field(default=None, description="A synonym of type")
    coupon_type: str | None = Field(default=None, description="A synonym of type")
    percentage: Decimal_ | None = None
    percentage_rate: Decimal_ | None = Field(default=None, description="A synonym of percentage")
    amount: Decimal_ | None = None
    currency: str | None = None
    frequency: Literal["once", "recurring", "forever"] = "once"
    frequency_duration: int | None = Field(default=None, ge=1)
    plan_codes: list[str] | None = None
    metric_codes: list[str] | None = None
    applies_to: CouponScopeIn | None = None
    expires_at: EndInstant = None
    description: str | None = Field(default=None, max_length=2000)

    def to_spec(self) -> CouponSpec:
        scope = self.applies_to or CouponScopeIn()
        return CouponSpec(
            code=self.code,
            kind=self.type or self.kind or self.coupon_type or "",
            name=self.name,
            percentage=self.percentage if self.percentage is not None else self.percentage_rate,
            amount=self.amount,
            currency=self.currency,
            frequency=self.frequency,
            frequency_duration=self.frequency_duration,
            plan_codes=tuple(self.plan_codes or scope.plan_codes or ()),
            metric_codes=tuple(
                self.metric_codes or scope.metric_codes or scope.billable_metric_codes or ()
            ),
            expires_at=self.expires_at,
            description=self.description,
        )


class CouponUpdate(Body):
    """Only the fields sent change. Name, description, expiresAt (null: never) and
    status always; the terms (percentage, amount, frequency, frequencyDuration, scope)
    only while the coupon was never applied (409 `coupon_applied`)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    expires_at: EndInstant = None
    status: Literal["active", "inactive"] | None = None
    percentage: Decimal_ | None = None
    percentage_rate: Decimal_ | None = Field(default=None, description="A synonym of percentage")
    amount: Decimal_ | None = None
    frequency: Literal["once", "recurring", "forever"] | None = None
    frequency_duration: int | None = Field(default=None, ge=1)
    plan_codes: list[str] | None = None
    metric_codes: list[str] | None = None

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> CouponPatch:
        sent = set(self.model_fields_set)
        if "percentage_rate" in sent:
            sent = (sent - {"percentage_rate"}) | {"percentage"}
        return CouponPatch(
            name=self.name,
            description=self.description,
            expires_at=self.expires_at,
            status=self.status,
            percentage=self.percentage if self.percentage is not None else self.percentage_rate,
            amount=self.amount,
            frequency=self.frequency,
            frequency_duration=self.frequency_duration,
            plan_codes=None if self.plan_codes is None else tuple(self.plan_codes),
            metric_codes=None if self.metric_codes is None else tuple(self.metric_codes),
            sent=frozenset(sent),
        )


class CouponScopePublic(Public):
    plan_codes: list[str]
    metric_codes: list[str]


class CouponPublic(Public):
    id: str
    code: str
    name: str
    description: str | None
    status: str
    type: str
    percentage: Decimal_ | None
    amount: Decimal_ | None
    currency: str | None
    frequency: str
    frequency_duration: int | None
    applies_to: CouponScopePublic
    expires_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: CouponRow) -> CouponPublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            status=row.status,
            type=row.kind,
            percentage=plain_or_none(row.percentage),
            amount=plain_or_none(row.amount),
            currency=row.currency,
            frequency=row.frequency,
            frequency_duration=row.frequency_duration,
            applies_to=CouponScopePublic(
                plan_codes=row.plan_codes or [], metric_codes=row.metric_codes or []
            ),
            expires_at=row.expires_at,
            created_at=row.created_at,
        )


class AppliedCouponCreate(Body):
    """Apply a coupon; each term sent overrides the coupon's for this customer only."""

    coupon_code: str
    amount: Decimal_ | None = Field(default=None, description="A fixed coupon's amount here")
    percentage: Decimal_ | None = Field(default=None, description="A percentage coupon's rate")
    percentage_rate: Decimal_ | None = Field(default=None, description="A synonym of percentage")
    frequency: Literal["once", "recurring", "forever"] | None = None
    frequency_duration: int | None = Field(default=None, ge=1)

    def to_spec(self) -> AppliedCouponSpec:
        return AppliedCouponSpec(
            coupon_code=self.coupon_code,
            amount=self.amount,
            percentage=self.percentage if self.percentage is not None else self.percentage_rate,
            frequency=self.frequency,
            frequency_duration=self.frequency_duration,
        )


class AppliedCouponCreateFor(AppliedCouponCreate):
    """`POST /applied-coupons`: the same, naming the customer in the body."""

    customer_id: str = Field(min_length=1, description="The customer's externalId")


class AppliedCouponPublic(Public):
    id: str
    coupon_code: str
    customer_id: str
    status: str
    type: str
    percentage: Decimal_ | None
    amount: Decimal_ | None
    amount_remaining: Decimal_ | None
    periods_remaining: int | None
    frequency: str
    frequency_duration: int | None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: AppliedCouponRow, customer_external_id: str) -> AppliedCouponPublic:
        return cls(
            id=row.id,
            coupon_code=row.coupon.code,
            customer_id=customer_external_id,
            status=row.status,
            type=row.coupon.kind,
            percentage=plain_or_none(percentage_of(row)),
            amount=plain_or_none(row.amount if row.amount is not None else row.coupon.amount),
            amount_remaining=plain_or_none(row.amount_remaining),
            periods_remaining=row.periods_remaining,
            frequency=frequency_of(row),
            frequency_duration=(
                row.frequency_duration
                if row.frequency is not None
                else row.coupon.frequency_duration
            ),
            created_at=row.created_at,
        )


# -- wallets ---------------------------------------------------------------------------


class WalletScopeIn(Body):
    metrics: list[str] | None = None
    metric_codes: list[str] | None = None
    fee_types: list[str] | None = None


class WalletRuleIn(Body):
    """An auto top-up rule (docs/wallets.md)."""

    trigger: Literal["threshold", "interval"]
    threshold_credits: Decimal_ | None = None
    interval: Literal["weekly", "monthly"] | None = None
    paid_credits: Decimal_ = Decimal(0)
    granted_credits: Decimal_ = Decimal(0)

    def to_spec(self) -> WalletRuleSpec:
        return WalletRuleSpec(
            trigger=self.trigger,
            threshold_credits=self.threshold_credits,
            interval=self.interval,
            paid_credits=self.paid_credits,
            granted_credits=self.granted_credits,
        )


class WalletCreate(Body):
    customer_id: str
    currency: str | None = None
    name: str | None = None
    credits: Decimal_ = Field(default=Decimal(0), description="Granted credits (older name)")
    rate_amount: Decimal_ = Field(default=Decimal(1), description="Currency per credit")
    paid_credits: Decimal_ = Field(default=Decimal(0), description="Invoiced; usable once paid")
    granted_credits: Decimal_ = Field(default=Decimal(0), description="Free; usable at once")
    priority: int = Field(default=50, ge=1, le=100)
    expires_at: EndInstant = None
    scope: WalletScopeIn | None = None
    recurring_transaction_rules: list[WalletRuleIn] = Field(default_factory=list, max_length=10)

    def to_spec(self) -> WalletSpec:
        scope = self.scope or WalletScopeIn()
        return WalletSpec(
            customer_id=self.customer_id,
            currency=self.currency,
            name=self.name,
            credits=self.credits,
            priority=self.priority,
            expires_at=self.expires_at,
            scope_metrics=tuple(scope.metrics or scope.metric_codes or ()),
            scope_fee_types=tuple(scope.fee_types or ()),
            rate_amount=self.rate_amount,
            paid_credits=self.paid_credits,
            granted_credits=self.granted_credits,
            rules=tuple(r.to_spec() for r in self.recurring_transaction_rules),
        )


class WalletUpdate(Body):
    name: str | None = Field(default=None, max_length=200)
    priority: int | None = Field(default=None, ge=1, le=100)
    expires_at: EndInstant = None
    scope: WalletScopeIn | None = None
    recurring_transaction_rules: list[WalletRuleIn] | None = Field(default=None, max_length=10)

    def to_patch(self) -> WalletPatch:
        sent = {"name", "expires_at"} & self.model_fields_set
        scope = self.scope
        return WalletPatch(
            name=self.name,
            priority=self.priority,
            expires_at=self.expires_at,
            scope_metrics=None
            if scope is None
            else tuple(scope.metrics or scope.metric_codes or ()),
            scope_fee_types=None if scope is None else tuple(scope.fee_types or ()),
            rules=None
            if self.recurring_transaction_rules is None
            else tuple(r.to_spec() for r in self.recurring_transaction_rules),
            sent=frozenset(sent),
        )


class TopUpCreate(Body):
    credits: Decimal_ = Field(default=Decimal(0), description="Granted credits (older name)")
    paid_credits: Decimal_ = Decimal(0)
    granted_credits: Decimal_ = Decimal(0)


class WalletScopePublic(Public):
    metrics: list[str]
    fee_types: list[str]


class WalletPublic(Public):
    id: str
    customer_id: str
    name: str | None
    currency: str
    balance: Decimal_
    credits: Decimal_ = Field(description="The balance in credits (balance / rateAmount)")
    priority: int
    expires_at: Timestamp | None
    scope: WalletScopePublic
    status: str
    created_at: Timestamp
    rate_amount: Decimal_
    terminated_at: Timestamp | None
    recurring_transaction_rules: list[dict[str, Any]]

    @classmethod
    def from_row(cls, row: WalletRow) -> WalletPublic:
        balance = money(row.balance, row.currency)
        return cls(
            id=row.id,
            customer_id=row.customer.external_id,
            name=row.name,
            currency=row.currency,
            balance=balance,
            credits=credits_of(row.balance, row.rate_amount, row.currency),
            priority=row.priority,
            expires_at=row.expires_at,
            scope=WalletScopePublic(
                metrics=row.scope_metrics or [], fee_types=row.scope_fee_types or []
            ),
            status=row.status,
            created_at=row.created_at,
            rate_amount=plain(row.rate_amount),
            terminated_at=row.terminated_at,
            recurring_transaction_rules=[dict(r) for r in row.recurring_rules or []],
        )


class FundingPublic(Public):
    transaction_id: str
    amount: Decimal_


class WalletTransactionPublic(Public):
    id: str
    wallet_id: str
    type: str
    amount: Decimal_
    remaining: Decimal_ | None = Field(description="What is left of a top-up; null for a deduction")
    invoice_id: str | None
    funded_by: list[FundingPublic]
    created_at: Timestamp
    direction: Literal["inbound", "outbound"]
    status: str = Field(description="pending (a paid top-up not paid yet) | settled | cancelled")
    grant: str | None = Field(description="paid | granted (top-ups)")
    credits: Decimal_ | None
    source: str | None = Field(description="A top-up's: manual | threshold | interval")
    funded: list[FundingPublic] = Field(description="A top-up's: what it paid, and how much")

    @classmethod
    def from_row(
        cls,
        row: WalletTransactionRow,
        currency: str,
        funded: list[tuple[str, Decimal]] | None = None,
    ) -> WalletTransactionPublic:
        inbound = row.kind in INBOUND
        return cls(
            id=row.id,
            wallet_id=row.wallet_id,
            type=row.kind,
            amount=money(row.amount, currency),
            remaining=money(row.remaining, currency) if inbound else None,
            invoice_id=row.invoice_id,
            funded_by=[
                FundingPublic(
                    transaction_id=part["transactionId"],
                    amount=money(Decimal(part["amount"]), currency),
                )
                for part in row.funding or []
            ],
            created_at=row.created_at,
            direction="inbound" if inbound else "outbound",
            status=row.status,
            grant=row.grant,
            credits=plain_or_none(row.credits),
            source=row.source if inbound else None,
            funded=[
                FundingPublic(transaction_id=tid, amount=money(amount, currency))
                for tid, amount in funded or []
            ],
        )


class TopUpPublic(Public):
    transaction: WalletTransactionPublic = Field(description="The first of `transactions`")
    transactions: list[WalletTransactionPublic] = Field(description="Granted, then paid")
    wallet: WalletPublic
