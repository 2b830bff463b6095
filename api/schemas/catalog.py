"""Billable metrics and plans (with their charges and fixed charges)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from api.schemas.common import Body, Code, FiltersIn, Public, filters_spec
from api.schemas.features import EntitlementIn, EntitlementPublic, entitlement_specs
from api.schemas.money import Decimal_, Timestamp, plain, plain_or_none
from core.errors import ValidationFailed
from invoicing.models import BillableMetric, PlanRow
from invoicing.plan_changes import PlanPatch
from invoicing.specs import (
    ChargeSpec,
    FixedChargeSpec,
    MetricPatch,
    MetricSpec,
    PlanSpec,
    RolloverSpec,
    UsageThresholdSpec,
)

Aggregation = Literal["count", "sum", "max", "unique_count", "latest", "weighted_sum"]
ChargeModel = Literal[
    "per_unit", "graduated", "volume", "package", "percentage", "graduated_percentage"
]
Interval = Literal["weekly", "monthly", "quarterly", "yearly"]
RoundingFunction = Literal["round", "ceil", "floor"]
# Bounds checked in the catalog (invoicing.catalog), so that a value out of range says
# the same on create and on PATCH.
RoundingPrecision = Annotated[
    int,
    Field(
        strict=True,
        description="Decimal places kept (negative: tens, hundreds …); default 0",
        json_schema_extra={"minimum": -15, "maximum": 15},
    ),
]

# -- metrics ---------------------------------------------------------------------------


class MetricCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    aggregation: Aggregation
    description: str | None = None
    field: str | None = Field(default=None, min_length=1, max_length=100)
    filters: FiltersIn | None = None
    group_by: list[str] | None = None
    rounding_function: RoundingFunction | None = Field(
        default=None,
        description="Round each period quantity before pricing: round (half up), ceil, floor",
    )
    rounding_precision: RoundingPrecision | None = None

    def to_spec(self) -> MetricSpec:
        return MetricSpec(
            code=self.code,
            name=self.name,
            aggregation=self.aggregation,
            description=self.description,
            field=self.field,
            filters=filters_spec(self.filters),
            group_by=tuple(self.group_by or ()),
            rounding_function=self.rounding_function,
            rounding_precision=self.rounding_precision,
        )


class MetricUpdate(Body):
    name: str | None = None
    description: str | None = None
    aggregation: Aggregation | None = None
    field: str | None = None
    filters: FiltersIn | None = None
    group_by: list[str] | None = None
    rounding_function: RoundingFunction | None = Field(
        default=None, description="null removes the rounding"
    )
    rounding_precision: RoundingPrecision | None = None

    def to_spec(self) -> MetricPatch:
        return MetricPatch(
            name=self.name,
            description=self.description,
            aggregation=self.aggregation,
            field=self.field,
            filters=None if self.filters is None else filters_spec(self.filters),
            group_by=None if self.group_by is None else tuple(self.group_by),
            rounding_function=self.rounding_function,
            rounding_precision=self.rounding_precision,
            sent=frozenset(self.model_fields_set),
        )


class MetricPublic(Public):
    id: str
    code: str
    name: str
    description: str | None
    aggregation: str
    field: str
    filters: dict[str, list[str]]
    group_by: list[str]
    rounding_function: str | None = None
    rounding_precision: int | None = None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: BillableMetric) -> MetricPublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            aggregation=row.aggregation,
            field=row.field,
            filters=row.filters or {},
            group_by=row.group_by or [],
            rounding_function=row.rounding_function,
            rounding_precision=row.rounding_precision,
            created_at=row.created_at,
        )


# -- plans -----------------------------------------------------------------------------


class RolloverIn(Body):
    cap: Decimal_ | None = None
    expiry_periods: int | None = Field(default=None, ge=1)


def _rollover_flag(value: Any) -> Any:
    """`true` is a rollover without cap or expiry, `false` none (or an object {cap?, ...})."""
    if value is True:
        return {}
    return None if value is False else value


class ChargeIn(Body):
    id: str | None = None
    metric: str
    model: ChargeModel
    properties: dict[str, Any] = Field(
        default_factory=dict, description="The model's properties, as in BILLING.md"
    )
    included_quantity: Decimal_ | None = None
    hard_cap: Decimal_ | None = None
    rollover: Annotated[RolloverIn | None, BeforeValidator(_rollover_flag)] = None
    pay_in_advance: bool = False
    filters: FiltersIn | None = None

    def to_spec(self) -> ChargeSpec:
        rollover = self.rollover
        return ChargeSpec(
            id=self.id,
            metric=self.metric,
            model=self.model,
            properties=self.properties,
            included_quantity=self.included_quantity,
            hard_cap=self.hard_cap,
            rollover=None
            if rollover is None
            else RolloverSpec(rollover.cap, rollover.expiry_periods),
            pay_in_advance=self.pay_in_advance,
            filters=filters_spec(self.filters),
        )


class FixedChargeIn(Body):
    id: str | None = None
    name: str | None = None
    code: str | None = None
    type: str | None = Field(default=None, description="SETUP_FEE or ONE_TIME: charged once")
    one_time: bool = False
    add_on_code: str | None = Field(
        default=None,
        description="An add-on of the catalog: its name and amount unless sent, its taxes",
    )
    amount: Decimal_ | None = Field(default=None, description="Required without addOnCode")
    units: Decimal_ = Decimal(1)
    pay_in_advance: bool | None = None
    prorated: bool = True

    def to_spec(self) -> FixedChargeSpec:
        kind = (self.type or "").upper()
        return FixedChargeSpec(
            id=self.id,
            name=self.name or self.code or "",
            amount=self.amount,
            units=self.units,
            one_time=self.one_time or kind in ("SETUP_FEE", "ONE_TIME"),
            pay_in_advance=self.pay_in_advance,
            prorated=self.prorated,
            add_on_code=self.add_on_code,
        )


class UsageThresholdIn(Body):
    amount: Decimal_
    recurring: bool = False


class PlanCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    currency: str = Field(min_length=3, max_length=3)
    interval: Interval
    base_fee: Decimal_ | None = None
    pay_in_advance: bool = False
    trial_days: int = Field(default=0, ge=0)
    minimum_commitment: Decimal_ | None = None
    maximum_spend: Decimal_ | None = None
    charges: list[ChargeIn] = Field(default_factory=list)
    fixed_charges: list[FixedChargeIn] = Field(default_factory=list)
    usage_thresholds: list[UsageThresholdIn] = Field(
        default_factory=list,
        description="Progressive billing: invoice the usage so far when its amount reaches one",
    )
    entitlements: list[EntitlementIn] = Field(
        default_factory=list, description="Features the plan grants, with privilege values"
    )

    def to_spec(self) -> PlanSpec:
        return PlanSpec(
            code=self.code,
            name=self.name,
            description=self.description,
            currency=self.currency,
            interval=self.interval,
            base_fee=self.base_fee,
            pay_in_advance=self.pay_in_advance,
            trial_days=self.trial_days,
            minimum_commitment=self.minimum_commitment,
            maximum_spend=self.maximum_spend,
            charges=tuple(c.to_spec() for c in self.charges),
            fixed_charges=tuple(c.to_spec() for c in self.fixed_charges),
            usage_thresholds=tuple(
                UsageThresholdSpec(t.amount, t.recurring) for t in self.usage_thresholds
            ),
            entitlements=entitlement_specs(self.entitlements),
        )


class PlanUpdate(Body):
    """PATCH /plans/{code}: what is sent changes, lists replace (docs/plan-changes.md)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    base_fee: Decimal_ | None = Field(default=None, description="Also accepted as `amount`")
    amount: Decimal_ | None = None
    pay_in_advance: bool | None = None
    trial_days: int | None = Field(default=None, ge=0)
    minimum_commitment: Decimal_ | None = None
    maximum_spend: Decimal_ | None = None
    charges: list[ChargeIn] | None = Field(
        default=None, description="Replaces the charges; send a charge's id to keep it"
    )
    fixed_charges: list[FixedChargeIn] | None = None
    usage_thresholds: list[UsageThresholdIn] | None = None
    entitlements: list[EntitlementIn] | None = Field(
        default=None, description="Replaces the features the plan grants (applies at once)"
    )
    cascade: bool = Field(
        default=False,
        description="Subscriptions without overrides follow from their next period",
    )
    # Not changeable: a subscription's periods and money depend on them.
    code: str | None = None
    currency: str | None = None
    interval: str | None = None

    def to_spec(self) -> PlanPatch:
        fixed = self.model_fields_set & {"code", "currency", "interval"}
        if fixed:
            raise ValidationFailed(
                f"{', '.join(sorted(fixed))} of a plan cannot change: create a new plan"
            )
        sent = set(self.model_fields_set)
        base_fee = self.base_fee
        if "amount" in sent:
            if "base_fee" in sent:
                raise ValidationFailed("send baseFee or amount, not both")
            sent.add("base_fee")
            base_fee = self.amount
        return PlanPatch(
            name=self.name,
            description=self.description,
            base_fee=base_fee,
            pay_in_advance=self.pay_in_advance,
            trial_days=self.trial_days,
            minimum_commitment=self.minimum_commitment,
            maximum_spend=self.maximum_spend,
            charges=None if self.charges is None else tuple(c.to_spec() for c in self.charges),
            fixed_charges=None
            if self.fixed_charges is None
            else tuple(c.to_spec() for c in self.fixed_charges),
            usage_thresholds=None
            if self.usage_thresholds is None
            else tuple(UsageThresholdSpec(t.amount, t.recurring) for t in self.usage_thresholds),
            entitlements=None
            if self.entitlements is None
            else entitlement_specs(self.entitlements),
            cascade=self.cascade,
            sent=frozenset(sent),
        )


class RolloverPublic(Public):
    cap: Decimal_ | None
    expiry_periods: int | None


class ChargePublic(Public):
    """A charge as the plan stores it (its decimals as they were sent, exactly)."""

    id: str
    metric: str
    model: str
    properties: dict[str, Any]
    included_quantity: Decimal_ | None = None
    hard_cap: Decimal_ | None = None
    rollover: RolloverPublic | None = None
    pay_in_advance: bool = False
    filters: dict[str, list[str]] = Field(default_factory=dict)


class FixedChargePublic(Public):
    id: str
    name: str
    amount: Decimal_
    units: Decimal_
    one_time: bool
    pay_in_advance: bool
    prorated: bool
    add_on_code: str | None = None


class UsageThresholdPublic(Public):
    amount: Decimal_
    recurring: bool


class PlanPublic(Public):
    id: str
    code: str
    name: str
    description: str | None
    currency: str
    interval: str
    base_fee: Decimal_
    pay_in_advance: bool
    trial_days: int
    minimum_commitment: Decimal_ | None
    maximum_spend: Decimal_ | None
    charges: list[ChargePublic]
    fixed_charges: list[FixedChargePublic]
    usage_thresholds: list[UsageThresholdPublic]
    entitlements: list[EntitlementPublic]
    archived_at: Timestamp | None = None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: PlanRow) -> PlanPublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            currency=row.currency,
            interval=row.interval,
            base_fee=plain(row.base_fee),
            pay_in_advance=row.pay_in_advance,
            trial_days=row.trial_days,
            minimum_commitment=plain_or_none(row.minimum_commitment),
            maximum_spend=plain_or_none(row.maximum_spend),
            charges=[ChargePublic.model_validate(doc) for doc in row.charges],
            fixed_charges=[FixedChargePublic.model_validate(doc) for doc in row.fixed_charges],
            usage_thresholds=[
                UsageThresholdPublic.model_validate(doc) for doc in row.usage_thresholds or ()
            ],
            entitlements=sorted(
                (EntitlementPublic.from_row(e) for e in row.entitlements), key=lambda e: e.feature
            ),
            archived_at=row.archived_at,
            created_at=row.created_at,
        )
