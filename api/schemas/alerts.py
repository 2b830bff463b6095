"""Usage alerts: request and response bodies (API.md "Real-time usage, quotas, alerts")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Code, Public
from api.schemas.money import Decimal_, Timestamp
from invoicing.alerts import AlertSpec, ThresholdSpec
from invoicing.models import AlertRow, AlertTriggerRow
from rating.money import format_decimal

AlertKind = Literal["usage_units", "usage_amount", "lifetime_usage_amount", "wallet_balance"]


class ThresholdIn(Body):
    value: Decimal_
    code: str | None = Field(None, max_length=100)
    recurring: bool = False

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> ThresholdSpec:
        return ThresholdSpec(self.value, self.code, self.recurring)


class AlertCreate(Body):
    kind: AlertKind
    subscription_id: str | None = None
    wallet_id: str | None = None
    code: Code | None = None
    metric: str | None = None
    name: str | None = Field(None, max_length=200)
    thresholds: list[ThresholdIn] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> AlertSpec:
        return AlertSpec(
            kind=self.kind,
            subscription_id=self.subscription_id,
            wallet_id=self.wallet_id,
            code=self.code,
            metric=self.metric,
            name=self.name,
            thresholds=tuple(t.to_spec() for t in self.thresholds),
        )


class AlertUpdate(Body):
    code: Code | None = None
    name: str | None = Field(None, max_length=200)
    thresholds: list[ThresholdIn] | None = Field(None, min_length=1)

    model_config = ConfigDict(extra="forbid")

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            if name == "thresholds":
                if self.thresholds is not None:
                    out["thresholds"] = [t.to_spec() for t in self.thresholds]
            else:
                out[name] = getattr(self, name)
        return out


class ThresholdPublic(Public):
    value: str
    code: str | None
    recurring: bool


class AlertPublic(Public):
    id: str
    kind: str
    subscription_id: str | None
    wallet_id: str | None
    code: str | None
    metric: str | None
    name: str | None
    thresholds: list[ThresholdPublic]
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: AlertRow) -> AlertPublic:
        return cls(
            id=row.id,
            kind=row.kind,
            subscription_id=row.subscription_id,
            wallet_id=row.wallet_id,
            code=row.code,
            metric=row.metric,
            name=row.name,
            thresholds=[ThresholdPublic.model_validate(t) for t in row.thresholds],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class AlertTriggerPublic(Public):
    alert_id: str
    threshold: str
    value: str
    triggered_at: Timestamp
    period_start: Timestamp

    @classmethod
    def from_row(cls, row: AlertTriggerRow) -> AlertTriggerPublic:
        return cls(
            alert_id=row.alert_id,
            threshold=format_decimal(row.threshold),
            value=format_decimal(row.value),
            triggered_at=row.triggered_at,
            period_start=row.period_start,
        )


class AlertTriggers(Public):
    data: list[AlertTriggerPublic]
