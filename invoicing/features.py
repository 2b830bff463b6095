"""Features, their typed privileges, and entitlements: what a customer may use.

A feature is a thing a plan grants (SSO, seats, a support tier). Its privileges are
typed values of that grant: `boolean`, `integer`, or `select` (one of its options).
A plan grants features with values (its entitlements); a subscription may override
them per feature and privilege. `customer_entitlements` answers what a customer may
use now, merged over their active subscriptions, in two indexed reads.
docs/features-and-entitlements.md says every rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.catalog import get_customer, insert_unique
from invoicing.models import (
    CustomerRow,
    EntitlementRow,
    FeatureRow,
    PlanRow,
    SubscriptionRow,
    new_id,
)
from invoicing.pages import Page, keyset_page
from invoicing.specs import EntitlementSpec

PRIVILEGE_TYPES = ("boolean", "integer", "select")

Value = bool | int | str
Values = dict[str, Value]


@dataclass(frozen=True)
class PrivilegeSpec:
    code: str
    type: str
    name: str | None = None
    options: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FeatureSpec:
    code: str
    name: str
    description: str | None = None
    privileges: tuple[PrivilegeSpec, ...] = ()


@dataclass(frozen=True)
class FeaturePatch:
    name: str | None = None
    description: str | None = None
    privileges: tuple[PrivilegeSpec, ...] | None = None
    sent: frozenset[str] = field(default_factory=frozenset)


# -- features -------------------------------------------------------------------------


def _privilege_docs(specs: Sequence[PrivilegeSpec]) -> list[dict[str, Any]]:
    """Privileges as stored; codes unique, `options` only (and required) on selects."""
    docs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        where = f"privileges[{i}]"
        if spec.code in seen:
            raise ValidationFailed(f"{where}.code {spec.code!r} is given twice")
        seen.add(spec.code)
        if spec.type not in PRIVILEGE_TYPES:
            raise ValidationFailed(f"{where}.type must be one of {', '.join(PRIVILEGE_TYPES)}")
        options: list[str] | None = None
        if spec.type == "select":
            if not spec.options:
                raise ValidationFailed(f"{where}.options: a select privilege needs its options")
            if len(set(spec.options)) != len(spec.options):
                raise ValidationFailed(f"{where}.options must not repeat a value")
            options = list(spec.options)
        elif spec.options is not None:
            raise ValidationFailed(f"{where}.options: only a select privilege has options")
        docs.append({"code": spec.code, "name": spec.name, "type": spec.type, "options": options})
    return docs


def create_feature(
    session: Session, tenant_id: str, spec: FeatureSpec, now: datetime
) -> FeatureRow:
    """Add a feature; a code the tenant already has is a Conflict."""
    row = FeatureRow(
        id=new_id("feat"),
        tenant_id=tenant_id,
        code=spec.code,
        name=spec.name,
        description=spec.description,
        privileges=_privilege_docs(spec.privileges),
        created_at=now,
    )
    insert_unique(session, row, f"a feature with code {row.code!r} already exists")
    return row


def get_feature(session: Session, tenant_id: str, code: str) -> FeatureRow:
    """The tenant's feature of that code, or NotFound."""
    row = session.execute(
        select(FeatureRow).where(FeatureRow.tenant_id == tenant_id, FeatureRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"feature {code!r} not found")
    return row


def list_features(
    session: Session, tenant_id: str, *, limit: int, cursor: str | None = None
) -> Page[FeatureRow]:
    """The tenant's features, newest first, one page."""
    query = select(FeatureRow).where(FeatureRow.tenant_id == tenant_id)
    return keyset_page(session, query, FeatureRow, limit, cursor)


def update_feature(session: Session, tenant_id: str, code: str, patch: FeaturePatch) -> FeatureRow:
    """Change a feature. New privileges replace the old: values of a removed privilege
    leave every entitlement; a value the new definition refuses is a Conflict."""
    row = get_feature(session, tenant_id, code)
    if patch.name is not None:
        row.name = patch.name
    if "description" in patch.sent:
        row.description = patch.description
    if patch.privileges is None:
        return row
    row.privileges = _privilege_docs(patch.privileges)
    kept = {p["code"] for p in row.privileges}
    for grant in session.execute(
        select(EntitlementRow).where(EntitlementRow.feature_id == row.id)
    ).scalars():
        values = {k: v for k, v in grant.values.items() if k in kept}
        try:
            grant.values = checked_values(row, values, f"feature {code!r}")
        except ValidationFailed as exc:
            plan = None if grant.plan_id is None else session.get(PlanRow, grant.plan_id)
            owner = f"plan {plan.code!r}" if plan else f"subscription {grant.subscription_id!r}"
            raise Conflict(
                f"{owner} grants a value the new privileges refuse: {exc.message}"
            ) from None
    return row


def delete_feature(session: Session, tenant_id: str, code: str) -> None:
    """Delete a feature and every grant of it (plans and subscriptions lose it)."""
    row = get_feature(session, tenant_id, code)
    for grant in session.execute(
        select(EntitlementRow).where(EntitlementRow.feature_id == row.id)
    ).scalars():
        session.delete(grant)
    session.flush()
    session.delete(row)


# -- entitlements ---------------------------------------------------------------------


def checked_values(feature: FeatureRow, values: Mapping[str, Any], where: str) -> Values:
    """`values` typed by the feature's privileges: booleans, integers (not booleans),
    one of a select's options; an unknown privilege is refused."""
    privileges = {p["code"]: p for p in feature.privileges}
    out: Values = {}
    for code, value in values.items():
        privilege = privileges.get(code)
        if privilege is None:
            raise ValidationFailed(f"{where}: feature {feature.code!r} has no privilege {code!r}")
        kind, got = privilege["type"], f"(got {value!r})"
        if kind == "boolean" and not isinstance(value, bool):
            raise ValidationFailed(f"{where}.{code} must be true or false {got}")
        if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationFailed(f"{where}.{code} must be an integer {got}")
        if kind == "select" and value not in privilege["options"]:
            options = ", ".join(repr(o) for o in privilege["options"])
            raise ValidationFailed(f"{where}.{code} must be one of {options} {got}")
        out[code] = value
    return out


def _grants(
    session: Session, tenant_id: str, specs: Sequence[EntitlementSpec]
) -> list[tuple[FeatureRow, Values]]:
    """Checked (feature, values) pairs; every feature the tenant's, none twice."""
    codes = [s.feature for s in specs]
    if len(set(codes)) != len(codes):
        raise ValidationFailed("entitlements: a feature is given twice")
    known = {
        f.code: f
        for f in session.execute(
            select(FeatureRow).where(FeatureRow.tenant_id == tenant_id, FeatureRow.code.in_(codes))
        ).scalars()
    }
    out = []
    for i, spec in enumerate(specs):
        feature = known.get(spec.feature)
        if feature is None:
            raise ValidationFailed(
                f"entitlements[{i}].feature {spec.feature!r} is not a feature of this tenant"
            )
        out.append((feature, checked_values(feature, spec.values, f"entitlements[{i}].values")))
    return out


def set_plan_entitlements(
    session: Session, tenant_id: str, plan: PlanRow, specs: Sequence[EntitlementSpec]
) -> None:
    """Replace what the plan grants (its subscriptions see it at once)."""
    grants = _grants(session, tenant_id, specs)
    plan.entitlements = []
    session.flush()
    plan.entitlements = [
        EntitlementRow(
            id=new_id("ent"),
            tenant_id=tenant_id,
            feature_id=feature.id,
            feature=feature,
            plan_id=plan.id,
            values=values,
            created_at=plan.created_at,
        )
        for feature, values in grants
    ]
    session.flush()


def subscription_overrides(session: Session, subscription: SubscriptionRow) -> list[EntitlementRow]:
    """The subscription's own entitlements (overrides of its plan's), oldest first."""
    return list(
        session.execute(
            select(EntitlementRow)
            .where(EntitlementRow.subscription_id == subscription.id)
            .order_by(EntitlementRow.created_at, EntitlementRow.id)
        ).scalars()
    )


def set_subscription_entitlements(
    session: Session,
    tenant_id: str,
    subscription: SubscriptionRow,
    specs: Sequence[EntitlementSpec],
    now: datetime,
) -> None:
    """Replace the subscription's overrides: per feature, its values win over the
    plan's privilege by privilege; a feature the plan lacks is granted in addition."""
    grants = _grants(session, tenant_id, specs)
    for row in subscription_overrides(session, subscription):
        session.delete(row)
    session.flush()
    for feature, values in grants:
        session.add(
            EntitlementRow(
                id=new_id("ent"),
                tenant_id=tenant_id,
                feature_id=feature.id,
                subscription_id=subscription.id,
                values=values,
                created_at=now,
            )
        )
    session.flush()


def remove_subscription_entitlement(
    session: Session, subscription: SubscriptionRow, feature_code: str
) -> None:
    """Drop the subscription's override of one feature (the plan's grant applies again)."""
    rows = [
        r for r in subscription_overrides(session, subscription) if r.feature.code == feature_code
    ]
    if not rows:
        raise NotFound(f"subscription {subscription.id!r} overrides no feature {feature_code!r}")
    for row in rows:
        session.delete(row)


@dataclass(frozen=True)
class Entitlement:
    """One feature a subscription or customer may use, with its privilege values."""

    feature: str
    name: str
    values: Values


def _merge_override(plan: Values, override: Values) -> Values:
    return {**plan, **override}


def subscription_entitlements(session: Session, subscription: SubscriptionRow) -> list[Entitlement]:
    """What one subscription grants: its plan's entitlements with its overrides over them."""
    plan_grants = {e.feature.code: e for e in subscription.plan.entitlements}
    own = {e.feature.code: e for e in subscription_overrides(session, subscription)}
    out = []
    for code in sorted(set(plan_grants) | set(own)):
        base, over = plan_grants.get(code), own.get(code)
        feature = (over or base).feature  # type: ignore[union-attr]
        values = _merge_override(base.values if base else {}, over.values if over else {})
        out.append(Entitlement(code, feature.name, _ordered(feature, values)))
    return out


def _ordered(feature: FeatureRow, values: Values) -> Values:
    """Values in the feature's privilege order (stable answers)."""
    return {p["code"]: values[p["code"]] for p in feature.privileges if p["code"] in values}


def _combine(kind: str, current: Value, later: Value) -> Value:
    """Two active subscriptions granting the same privilege: booleans OR, integers the
    larger, a select the value of the later subscription."""
    if kind == "boolean":
        return bool(current) or bool(later)
    if kind == "integer":
        return max(int(current), int(later))
    return later


def customer_entitlements(
    session: Session, tenant_id: str, external_id: str, now: datetime
) -> list[Entitlement]:
    """What the customer may use at `now`: the entitlements of every subscription
    active then (its plan's, with its overrides), merged feature by feature.

    Two indexed reads: the customer's active subscriptions (the customers' unique
    (tenant, externalId) key, subscriptions.customer_id), then the grants of their
    plans and their own overrides with their features (entitlements.plan_id and
    .subscription_id). No active subscription: a read of the customer tells an unknown
    one (404) from one with nothing granted.
    """
    active = session.execute(
        select(SubscriptionRow.id, SubscriptionRow.plan_id, SubscriptionRow.start_date)
        .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
        .where(
            CustomerRow.tenant_id == tenant_id,
            CustomerRow.external_id == external_id,
            CustomerRow.deleted_at.is_(None),  # a deleted customer is gone: 404 below
            SubscriptionRow.status == "active",
            SubscriptionRow.start_date <= now,
            SubscriptionRow.end_date.is_(None) | (SubscriptionRow.end_date > now),
        )
    ).all()
    if not active:
        get_customer(session, tenant_id, external_id)  # NotFound for an unknown customer
        return []
    started = {sub_id: start for sub_id, _, start in active}
    by_plan: dict[str, list[str]] = {}
    for sub_id, plan_id, _ in active:
        by_plan.setdefault(plan_id, []).append(sub_id)
    grants = session.execute(
        select(
            EntitlementRow.plan_id,
            EntitlementRow.subscription_id,
            EntitlementRow.values,
            FeatureRow.code,
            FeatureRow.name,
            FeatureRow.privileges,
        )
        .join(FeatureRow, FeatureRow.id == EntitlementRow.feature_id)
        .where(
            EntitlementRow.plan_id.in_(list(by_plan))
            | EntitlementRow.subscription_id.in_(list(started))
        )
    ).all()
    rows = [
        (sub_id, started[sub_id], own_sub, values, code, name, privileges)
        for plan_id, own_sub, values, code, name, privileges in grants
        for sub_id in ([own_sub] if own_sub is not None else by_plan[plan_id])
    ]
    # Per subscription and feature: the plan's values, then the subscription's over them.
    per_subscription: dict[tuple[str, str], tuple[datetime, str, Values, Values]] = {}
    features: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for sub_id, start, own_sub, values, code, name, privileges in rows:
        features[code] = (name, privileges)
        _, _, plan_values, own_values = per_subscription.get(
            (sub_id, code), (start, sub_id, {}, {})
        )
        if own_sub is None:
            plan_values = dict(values)
        else:
            own_values = dict(values)
        per_subscription[(sub_id, code)] = (start, sub_id, plan_values, own_values)
    merged: dict[str, Values] = {}
    # Oldest subscription first, so that a select takes the later subscription's value.
    for (_, code), (_, _, plan_values, own_values) in sorted(
        per_subscription.items(), key=lambda item: (item[1][0], item[1][1])
    ):
        kinds = {p["code"]: p["type"] for p in features[code][1]}
        values = _merge_override(plan_values, own_values)
        into = merged.setdefault(code, {})
        for privilege, value in values.items():
            if privilege not in kinds:
                continue
            into[privilege] = (
                value
                if privilege not in into
                else _combine(kinds[privilege], into[privilege], value)
            )
    out = []
    for code in sorted(merged):
        name, privileges = features[code]
        order = [p["code"] for p in privileges]
        values = {k: merged[code][k] for k in order if k in merged[code]}
        out.append(Entitlement(code, name, values))
    return out
