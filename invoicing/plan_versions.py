"""Plan versions pinned on subscriptions: how a subscription keeps a plan as it was.

A plan row always holds the plan's current definition. When a PATCH changes what a
plan bills (docs/plan-changes.md), every subscription that must not follow gets the
old definition pinned on it, in `subscriptions.plan_versions`:
`[{"until": RFC 3339 | null, "plan": definition}, ...]`, ascending. A pin applies to
the billing periods that start before its `until` (and after the previous pin's);
`until: null` is for good. Periods after the last timed pin, with no pin for good, bill
the plan row as it is. A subscription of a plan never patched has no pins, and bills
exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from invoicing.models import PlanRow

# The billed definition: what a PATCH may change, entitlements aside (those are access,
# applied at once: docs/features-and-entitlements.md).
FIELDS = (
    "name",
    "description",
    "base_fee",
    "pay_in_advance",
    "trial_days",
    "minimum_commitment",
    "maximum_spend",
    "charges",
    "fixed_charges",
    "usage_thresholds",
)
_DECIMALS = ("base_fee", "minimum_commitment", "maximum_spend")


def definition(row: PlanRow) -> dict[str, Any]:
    """The plan's billed definition as a JSON document (decimals as exact text)."""
    doc: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(row, name)
        if name in _DECIMALS:
            value = None if value is None else format(Decimal(value), "f")
        doc[name] = value
    return doc


def as_row(row: PlanRow, doc: Mapping[str, Any]) -> PlanRow:
    """A detached copy of the plan row with `doc`'s definition (for rating only)."""
    values = {name: doc.get(name) for name in FIELDS}
    for name in _DECIMALS:
        text = values[name]
        values[name] = None if text is None else Decimal(str(text))
    return PlanRow(
        id=row.id,
        tenant_id=row.tenant_id,
        code=row.code,
        currency=row.currency,
        interval=row.interval,
        created_at=row.created_at,
        **{
            **values,
            "charges": values["charges"] or [],
            "fixed_charges": values["fixed_charges"] or [],
        },
    )


def pinned(
    row: PlanRow, versions: Sequence[Mapping[str, Any]] | None
) -> tuple[PlanRow, list[tuple[datetime, PlanRow]]]:
    """(the definition for periods after every timed pin, [(until, definition), ...])."""
    history: list[tuple[datetime, PlanRow]] = []
    for version in versions or ():
        plan = as_row(row, version["plan"])
        if version["until"] is None:
            return plan, history
        history.append((datetime.fromisoformat(version["until"]), plan))
    return row, history


def add_pin(
    versions: Sequence[Mapping[str, Any]] | None, doc: Mapping[str, Any], until: datetime | None
) -> list[dict[str, Any]] | None:
    """The versions with `doc` pinned for the periods before `until` (None: for good)
    that no pin covers yet; None when nothing changes (already pinned for good, or
    already pinned past `until`)."""
    current = [dict(v) for v in versions or ()]
    if current and current[-1]["until"] is None:
        return None
    if until is not None and current and datetime.fromisoformat(current[-1]["until"]) >= until:
        return None
    current.append({"until": None if until is None else until.isoformat(), "plan": dict(doc)})
    return current


def metric_codes(versions: Sequence[Mapping[str, Any]] | None) -> set[str]:
    """The metrics the pinned definitions charge for."""
    return {c["metric"] for v in versions or () for c in v["plan"].get("charges") or ()}
