"""Request bodies of the API (camelCase on the wire). Domain rules are checked in
invoicing.catalog; these models check shapes and document the contract."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rating.money import InvalidAmount, to_decimal


def _parse_instant(value: Any, *, end: bool) -> datetime:
    """A date-time with zone, or a date. A date means its first instant, or for an end
    its last day inclusive (the end is then the next midnight); 23:59:59 ends a day too."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), UTC) + (timedelta(days=1) if end else timedelta())
        return parsed
    elif isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
            return _parse_instant(day, end=end)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an RFC 3339 date-time") from None
    else:
        raise ValueError("expected an RFC 3339 date-time or a YYYY-MM-DD date")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if end and (parsed.hour, parsed.minute, parsed.second) == (23, 59, 59):
        parsed = datetime.combine(parsed.date() + timedelta(days=1), time(), UTC)
    return parsed


def _start(value: Any) -> datetime:
    return _parse_instant(value, end=False)


def _end(value: Any) -> datetime | None:
    return None if value is None else _parse_instant(value, end=True)


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return to_decimal(value)
    except InvalidAmount as exc:
        raise ValueError(str(exc)) from None


StartInstant = Annotated[datetime, BeforeValidator(_start)]
EndInstant = Annotated[datetime | None, BeforeValidator(_end)]
DecimalIn = Annotated[Decimal | None, BeforeValidator(_decimal)]
Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def doc(self) -> dict[str, Any]:
        """The body as a camelCase dict of the fields the client actually sent."""
        return self.model_dump(by_alias=True, exclude_unset=True)


Aggregation = Literal["count", "sum", "max", "unique_count", "latest", "weighted_sum"]


class MetricCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    aggregation: Aggregation
    description: str | None = None
    field: str | None = Field(default=None, min_length=1, max_length=100)
    filters: dict[str, list[str]] | list[dict[str, Any]] | None = None
    group_by: list[str] | None = None


class MetricUpdate(Body):
    name: str | None = None
    description: str | None = None
    aggregation: Aggregation | None = None
    field: str | None = None
    filters: dict[str, list[str]] | list[dict[str, Any]] | None = None
    group_by: list[str] | None = None


class ChargeIn(Body):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    id: str | None = None
    metric: str
    model: Literal[
        "per_unit", "graduated", "volume", "package", "percentage", "graduated_percentage"
    ]
    properties: dict[str, Any] = Field(default_factory=dict)
    included_quantity: Any = None
    hard_cap: Any = None
    rollover: Any = None
    pay_in_advance: bool = False
    filters: dict[str, list[str]] | list[dict[str, Any]] | None = None


class PlanCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    currency: str = Field(min_length=3, max_length=3)
    interval: Literal["weekly", "monthly", "quarterly", "yearly"]
    base_fee: Any = None
    pay_in_advance: bool = False
    trial_days: int = Field(default=0, ge=0)
    minimum_commitment: Any = None
    maximum_spend: Any = None
    charges: list[ChargeIn] = Field(default_factory=list)
    fixed_charges: list[dict[str, Any]] = Field(default_factory=list)


class CustomerCreate(Body):
    external_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=300)
    email: str | None = None
    currency: str = Field(min_length=3, max_length=3)
    country: str | None = None
    region: str | None = None
    tax_exempt: bool = False
    timezone: str | None = None
    invoice_grace_days: int = Field(default=0, ge=0)


class CustomerUpdate(Body):
    name: str | None = None
    email: str | None = None
    currency: str | None = None
    country: str | None = None
    region: str | None = None
    tax_exempt: bool | None = None
    timezone: str | None = None
    invoice_grace_days: int | None = Field(default=None, ge=0)


class SubscriptionCreate(Body):
    id: str | None = Field(default=None, min_length=1, max_length=40)
    customer_id: str
    plan_code: str
    start_date: StartInstant
    end_date: EndInstant = None
    overrides: dict[str, Any] | None = None


class TerminateBody(Body):
    at: EndInstant = None


class BillRunCreate(Body):
    period_start: StartInstant
    period_end: Annotated[datetime, BeforeValidator(_end)]


class PaymentCreate(Body):
    amount: Any
    reference: str | None = None


class TaxCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    rate: Any
    country: str | None = None
    region: str | None = None


class CouponCreate(Body):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    code: Code
    name: str | None = None
    type: str | None = None
    kind: str | None = None
    percentage: Any = None
    amount: Any = None
    currency: str | None = None
    frequency: Literal["once", "recurring", "forever"] = "once"
    frequency_duration: int | None = Field(default=None, ge=1)
    plan_codes: list[str] | None = None
    metric_codes: list[str] | None = None
    applies_to: dict[str, list[str]] | None = None
    expires_at: EndInstant = None

    def doc(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_unset=True)


class AppliedCouponCreate(Body):
    coupon_code: str
    amount: Any = None


class WalletCreate(Body):
    customer_id: str
    currency: str | None = None
    name: str | None = None
    credits: Any = 0
    priority: int = Field(default=50, ge=1, le=100)
    expires_at: EndInstant = None
    scope: dict[str, list[str]] | None = None


class TopUpCreate(Body):
    credits: Any


class TaxOverride(Body):
    tax_total: Any = None
    reason: str | None = None
    lines: list[dict[str, Any]] | None = None
