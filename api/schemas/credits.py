"""Taxes, coupons (and coupons applied to customers), wallets and their transactions."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from api.schemas.common import Body, Code, Public
from api.schemas.money import Decimal_, EndInstant, Timestamp, money, plain, plain_or_none
from invoicing.models import AppliedCouponRow, CouponRow, TaxRow, WalletRow, WalletTransactionRow
from invoicing.specs import AppliedCouponSpec, CouponSpec, TaxSpec, WalletSpec

# -- taxes -----------------------------------------------------------------------------


class TaxCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    rate: Decimal_ = Field(description="A percentage from 0 to 100")
    country: str | None = None
    region: str | None = None

    def to_spec(self) -> TaxSpec:
        return TaxSpec(
            code=self.code,
            name=self.name,
            rate=self.rate,
            country=self.country,
            region=self.region,
        )


class TaxPublic(Public):
    id: str
    code: str
    name: str
    rate: Decimal_
    country: str | None
    region: str | None
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
        )


class CouponScopePublic(Public):
    plan_codes: list[str]
    metric_codes: list[str]


class CouponPublic(Public):
    id: str
    code: str
    name: str
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
    coupon_code: str
    amount: Decimal_ | None = Field(default=None, description="A fixed coupon's amount here")

    def to_spec(self) -> AppliedCouponSpec:
        return AppliedCouponSpec(coupon_code=self.coupon_code, amount=self.amount)


class AppliedCouponPublic(Public):
    id: str
    coupon_code: str
    customer_id: str
    status: str
    type: str
    percentage: Decimal_ | None
    amount_remaining: Decimal_ | None
    periods_remaining: int | None
    frequency: str
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: AppliedCouponRow, customer_external_id: str) -> AppliedCouponPublic:
        return cls(
            id=row.id,
            coupon_code=row.coupon.code,
            customer_id=customer_external_id,
            status=row.status,
            type=row.coupon.kind,
            percentage=plain_or_none(row.coupon.percentage),
            amount_remaining=plain_or_none(row.amount_remaining),
            periods_remaining=row.periods_remaining,
            frequency=row.coupon.frequency,
            created_at=row.created_at,
        )


# -- wallets ---------------------------------------------------------------------------


class WalletScopeIn(Body):
    metrics: list[str] | None = None
    metric_codes: list[str] | None = None
    fee_types: list[str] | None = None


class WalletCreate(Body):
    customer_id: str
    currency: str | None = None
    name: str | None = None
    credits: Decimal_ = Decimal(0)
    priority: int = Field(default=50, ge=1, le=100)
    expires_at: EndInstant = None
    scope: WalletScopeIn | None = None

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
        )


class TopUpCreate(Body):
    credits: Decimal_


class WalletScopePublic(Public):
    metrics: list[str]
    fee_types: list[str]


class WalletPublic(Public):
    id: str
    customer_id: str
    name: str | None
    currency: str
    balance: Decimal_
    credits: Decimal_ = Field(description="The balance (a synonym)")
    priority: int
    expires_at: Timestamp | None
    scope: WalletScopePublic
    status: str
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: WalletRow) -> WalletPublic:
        balance = money(row.balance, row.currency)
        return cls(
            id=row.id,
            customer_id=row.customer.external_id,
            name=row.name,
            currency=row.currency,
            balance=balance,
            credits=balance,
            priority=row.priority,
            expires_at=row.expires_at,
            scope=WalletScopePublic(
                metrics=row.scope_metrics or [], fee_types=row.scope_fee_types or []
            ),
            status=row.status,
            created_at=row.created_at,
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

    @classmethod
    def from_row(cls, row: WalletTransactionRow, currency: str) -> WalletTransactionPublic:
        return cls(
            id=row.id,
            wallet_id=row.wallet_id,
            type=row.kind,
            amount=money(row.amount, currency),
            remaining=money(row.remaining, currency) if row.kind != "deduction" else None,
            invoice_id=row.invoice_id,
            funded_by=[
                FundingPublic(
                    transaction_id=part["transactionId"],
                    amount=money(Decimal(part["amount"]), currency),
                )
                for part in row.funding or []
            ],
            created_at=row.created_at,
        )


class TopUpPublic(Public):
    transaction: WalletTransactionPublic
    wallet: WalletPublic
