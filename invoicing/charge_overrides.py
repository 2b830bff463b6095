"""A subscription's own charges: plan charges it does not bill, charges only it bills,
and per-charge terms (filters included) over the plan's (docs/subscription-lifecycle.md).

Overrides are stored as sent, normalised: `charges` ({charge id or metric code: terms}),
`addCharges` ([charge as a plan stores it, its id kept]) and `removeCharges` ([charge id
or metric code]). `charge_docs` is the one place that turns a plan's charges and a
subscription's overrides into the charges it bills; every reader goes through
`catalog.plan_domain`, which calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from core.errors import ValidationFailed
from invoicing.models import BillableMetric, PlanRow
from invoicing.specs import ChargeSpec, RolloverSpec
from rating.money import to_decimal

ADD = "addCharges"
REMOVE = "removeCharges"
_CHARGE_FIELDS = frozenset(
    {
        "id",
        "metric",
        "model",
        "properties",
        "includedQuantity",
        "hardCap",
        "rollover",
        "payInAdvance",
        "filters",
    }
)


def removed(plan_charges: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any]) -> set[str]:
    """The ids of the plan charges the subscription does not bill (a key naming no charge
    of this definition, as after a plan change, removes nothing)."""
    keys = set(overrides.get(REMOVE) or ())
    return {c["id"] for c in plan_charges if c["id"] in keys or c["metric"] in keys}


def charge_docs(
    plan_charges: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The charges a subscription bills, as stored documents: the plan's, less the
    removed ones, each with its terms overridden (by id, else by metric code; a term
    sent as null keeps the plan's; filters replace the plan's), then the added ones."""
    overrides = overrides or {}
    terms: Mapping[str, Any] = overrides.get("charges") or {}
    gone = removed(plan_charges, overrides)
    out: list[dict[str, Any]] = []
    for doc in plan_charges:
        if doc["id"] in gone:
            continue
        override = terms.get(doc["id"]) or terms.get(doc["metric"]) or {}
        out.append({**doc, **{k: v for k, v in override.items() if v is not None}})
    out.extend(dict(doc) for doc in overrides.get(ADD) or ())
    return out


def added_metrics(overrides: Mapping[str, Any] | None) -> set[str]:
    """The metrics a subscription's added charges bill."""
    return {c["metric"] for c in (overrides or {}).get(ADD) or ()}


# -- checks (at the boundary of POST and PATCH /subscriptions) ------------------------


def validate(plan: PlanRow, overrides: dict[str, Any]) -> None:
    """Check `removeCharges`, per-charge `filters` and `addCharges` against the plan,
    normalising them in place (added charges get their ids); `charges` terms other than
    filters are checked by `catalog.validate_overrides`, which calls this."""
    from invoicing.catalog import charge_doc, stored_filters

    keys = {c["id"] for c in plan.charges} | {c["metric"] for c in plan.charges}
    remove = overrides.get(REMOVE)
    if remove is not None:
        if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
            raise ValidationFailed(
                f"overrides.{REMOVE} must be a list of charge ids or metric codes",
                details=[{"field": f"overrides.{REMOVE}"}],
            )
        for i, key in enumerate(remove):
            if key not in keys:
                raise ValidationFailed(
                    f"overrides.{REMOVE}[{i}]: the plan has no charge {key!r}",
                    details=[{"field": f"overrides.{REMOVE}[{i}]", "value": key}],
                )
        overrides[REMOVE] = sorted(set(remove))
    gone = removed(plan.charges, overrides)
    terms = overrides.get("charges") or {}
    for key, override in terms.items():
        target = [c for c in plan.charges if key in (c["id"], c["metric"])]
        if target and all(c["id"] in gone for c in target):
            raise ValidationFailed(
                f"overrides.charges.{key}: the charge is removed by overrides.{REMOVE}",
                details=[{"field": f"overrides.charges.{key}"}],
            )
        if isinstance(override, dict) and override.get("filters") is not None:
            where = f"overrides.charges.{key}.filters"
            override["filters"] = stored_filters(_filters(override["filters"], where), where)
    added = overrides.get(ADD)
    if added is None:
        return
    if not isinstance(added, list):
        raise ValidationFailed(f"overrides.{ADD} must be a list of charges")
    specs = [_charge_spec(item, i) for i, item in enumerate(added)]
    session = object_session(plan)
    assert session is not None, "the plan row is read in the request's session"
    codes = sorted({s.metric for s in specs})
    known = {
        m.code: m
        for m in session.execute(
            select(BillableMetric).where(
                BillableMetric.tenant_id == plan.tenant_id, BillableMetric.code.in_(codes)
            )
        ).scalars()
    }
    docs = []
    for i, spec in enumerate(specs):
        try:
            docs.append(charge_doc(spec, i, known))
        except ValidationFailed as exc:
            # The plan's check names `charges[i]`; here the charge is an added one.
            message = exc.message.replace(f"charges[{i}]", f"overrides.{ADD}[{i}]", 1)
            raise ValidationFailed(message, details=[{"field": f"overrides.{ADD}[{i}]"}]) from None
    _no_double_billing(plan, overrides, docs)
    overrides[ADD] = docs


def _no_double_billing(
    plan: PlanRow, overrides: Mapping[str, Any], added: Sequence[Mapping[str, Any]]
) -> None:
    """An added charge may read a metric the subscription already bills only under other
    filters (the same events would be billed twice), and takes an id no other has."""
    billed = charge_docs(plan.charges, {k: v for k, v in overrides.items() if k != ADD})
    seen_ids = {c["id"] for c in plan.charges}
    seen = {(c["metric"], _filter_key(c.get("filters"))) for c in billed}
    for i, doc in enumerate(added):
        where = f"overrides.{ADD}[{i}]"
        if doc["id"] in seen_ids:
            raise ValidationFailed(
                f"{where}.id {doc['id']!r} is already the id of a charge",
                details=[{"field": f"{where}.id", "value": doc["id"]}],
            )
        seen_ids.add(doc["id"])
        key = (doc["metric"], _filter_key(doc.get("filters")))
        if key in seen:
            raise ValidationFailed(
                f"{where}: metric {doc['metric']!r} is already billed with the same filters "
                f"(give the added charge other filters, or remove or override that charge)",
                details=[{"field": where, "metric": doc["metric"]}],
            )
        seen.add(key)


def _filter_key(filters: Mapping[str, Sequence[str]] | None) -> tuple[tuple[str, ...], ...]:
    """Filters compared as sets: the same properties allowing the same values."""
    return tuple(sorted((k, *sorted(set(v))) for k, v in (filters or {}).items()))


def _filters(value: object, where: str) -> dict[str, tuple[str, ...]]:
    """Filters as sent: {property: [value, ...]} with string values ({} is no filter)."""
    if not isinstance(value, Mapping):
        raise ValidationFailed(
            f"{where} must map a property to a list of values", details=[{"field": where}]
        )
    out: dict[str, tuple[str, ...]] = {}
    for key, values in value.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValidationFailed(
                f"{where}.{key} must be a non-empty list of values (strings)",
                details=[{"field": f"{where}.{key}"}],
            )
        out[str(key)] = tuple(values)
    return out


def _charge_spec(item: object, index: int) -> ChargeSpec:
    """An added charge as sent (a plan's charge, camelCase) into the plan's spec."""
    where = f"overrides.{ADD}[{index}]"
    if not isinstance(item, Mapping):
        raise ValidationFailed(f"{where} must be a charge object", details=[{"field": where}])
    unknown = set(item) - _CHARGE_FIELDS
    if unknown:
        raise ValidationFailed(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}",
            details=[{"field": where, "unknown": sorted(unknown)}],
        )
    for name in ("metric", "model"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise ValidationFailed(f"{where}.{name} is required", details=[{"field": where}])
    charge_id = item.get("id")
    if charge_id is not None and (not isinstance(charge_id, str) or not charge_id):
        raise ValidationFailed(f"{where}.id must be a non-empty string")
    properties = item.get("properties") or {}
    if not isinstance(properties, Mapping):
        raise ValidationFailed(f"{where}.properties must be an object")
    rollover = item.get("rollover")
    if rollover is True:
        rollover = {}
    if rollover is not None and rollover is not False and not isinstance(rollover, Mapping):
        raise ValidationFailed(f"{where}.rollover must be an object {{cap?, expiryPeriods?}}")
    pay_in_advance = item.get("payInAdvance", False)
    if not isinstance(pay_in_advance, bool):
        raise ValidationFailed(f"{where}.payInAdvance must be true or false")
    return ChargeSpec(
        id=charge_id,
        metric=item["metric"],
        model=item["model"],
        properties=dict(properties),
        included_quantity=_decimal(item.get("includedQuantity"), f"{where}.includedQuantity"),
        hard_cap=_decimal(item.get("hardCap"), f"{where}.hardCap"),
        rollover=None
        if not isinstance(rollover, Mapping)
        else RolloverSpec(
            _decimal(rollover.get("cap"), f"{where}.rollover.cap"),
            _int(rollover.get("expiryPeriods"), f"{where}.rollover.expiryPeriods"),
        ),
        pay_in_advance=pay_in_advance,
        filters=_filters(item.get("filters") or {}, f"{where}.filters"),
    )


def _decimal(value: object, what: str) -> Decimal | None:
    return None if value is None else to_decimal(value, what=what)


def _int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{what} must be an integer")
    return value
