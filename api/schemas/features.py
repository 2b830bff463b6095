"""Features with typed privileges, and entitlements (docs/features-and-entitlements.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, StrictBool, StrictInt

from api.schemas.common import Body, Code, Public
from api.schemas.money import Timestamp
from invoicing.features import Entitlement, FeaturePatch, FeatureSpec, PrivilegeSpec
from invoicing.models import EntitlementRow, FeatureRow
from invoicing.specs import EntitlementSpec

PrivilegeType = Literal["boolean", "integer", "select"]
# Strict: `1` is not `true` and `"5"` is not 5; the feature's type decides the rest.
PrivilegeValue = StrictBool | StrictInt | str


class PrivilegeIn(Body):
    code: Code
    name: str | None = Field(default=None, max_length=200)
    type: PrivilegeType
    options: list[str] | None = Field(default=None, description="select only: the values")

    def to_spec(self) -> PrivilegeSpec:
        options = None if self.options is None else tuple(self.options)
        return PrivilegeSpec(code=self.code, type=self.type, name=self.name, options=options)


class FeatureCreate(Body):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    privileges: list[PrivilegeIn] = Field(default_factory=list)

    def to_spec(self) -> FeatureSpec:
        return FeatureSpec(
            code=self.code,
            name=self.name,
            description=self.description,
            privileges=tuple(p.to_spec() for p in self.privileges),
        )


class FeatureUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    privileges: list[PrivilegeIn] | None = Field(
        default=None, description="Replaces the privileges; values of removed ones are dropped"
    )

    def to_spec(self) -> FeaturePatch:
        return FeaturePatch(
            name=self.name,
            description=self.description,
            privileges=None
            if self.privileges is None
            else tuple(p.to_spec() for p in self.privileges),
            sent=frozenset(self.model_fields_set),
        )


class PrivilegePublic(Public):
    code: str
    name: str | None
    type: str
    options: list[str] | None


class FeaturePublic(Public):
    id: str
    code: str
    name: str
    description: str | None
    privileges: list[PrivilegePublic]
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: FeatureRow) -> FeaturePublic:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            privileges=[PrivilegePublic.model_validate(p) for p in row.privileges],
            created_at=row.created_at,
        )


class EntitlementIn(Body):
    feature: Code
    values: dict[str, PrivilegeValue] = Field(
        default_factory=dict, description="{privilege code: value}; none for an on/off feature"
    )

    def to_spec(self) -> EntitlementSpec:
        return EntitlementSpec(feature=self.feature, values=self.values)


def entitlement_specs(items: Sequence[EntitlementIn]) -> tuple[EntitlementSpec, ...]:
    return tuple(i.to_spec() for i in items)


class EntitlementPublic(Public):
    feature: str
    name: str
    values: dict[str, PrivilegeValue]

    @classmethod
    def from_row(cls, row: EntitlementRow) -> EntitlementPublic:
        values = {
            p["code"]: row.values[p["code"]]
            for p in row.feature.privileges
            if p["code"] in row.values
        }
        return cls(feature=row.feature.code, name=row.feature.name, values=values)

    @classmethod
    def of(cls, entitlement: Entitlement) -> EntitlementPublic:
        return cls(feature=entitlement.feature, name=entitlement.name, values=entitlement.values)


class SubscriptionEntitlementsIn(Body):
    entitlements: list[EntitlementIn]


class SubscriptionEntitlementsPublic(Public):
    """A subscription's own overrides, and what it grants with them over its plan's."""

    subscription_id: str
    overrides: list[EntitlementPublic]
    entitlements: list[EntitlementPublic]


class CustomerEntitlementsPublic(Public):
    customer_id: str
    at: Timestamp
    entitlements: list[EntitlementPublic]
