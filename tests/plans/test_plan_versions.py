"""Pinning a plan's old definition on a subscription never changes what a period that
was already due to bill will bill: a property over any sequence of plan patches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from invoicing import plan_versions
from invoicing.models import PlanRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plan_row(name: str) -> PlanRow:
    return PlanRow(
        id="plan_1", tenant_id="ten_1", code="basic", name=name, currency="USD",
        interval="monthly", base_fee=0, pay_in_advance=False, trial_days=0,
        charges=[], fixed_charges=[], usage_thresholds=[], created_at=T0,
    )  # fmt: skip


def billed_by(live: PlanRow, versions: Any, start: datetime) -> str:
    """The name of the definition that bills the period starting at `start`."""
    last, history = plan_versions.pinned(live, versions)
    for until, plan in history:
        if start < until:
            return str(plan.name)
    return str(last.name)


# A patch: (cascade boundary in months from T0, or None for a patch without cascade).
patches = st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=24)), max_size=8)


@given(patches)
def test_a_pin_keeps_every_period_before_it_as_it_was(steps: list[int | None]) -> None:
    versions: Any = None
    live = plan_row("v0")
    starts = [T0 + timedelta(days=31 * m) for m in range(26)]
    for i, months in enumerate(steps, start=1):
        until = None if months is None else T0 + timedelta(days=31 * months)
        before = {s: billed_by(live, versions, s) for s in starts}
        pinned = plan_versions.add_pin(versions, plan_versions.definition(live), until)
        versions = versions if pinned is None else pinned
        live = plan_row(f"v{i}")  # the plan row takes the new definition
        for start in starts:
            if until is None or start < until:
                assert billed_by(live, versions, start) == before[start]
        # Pins stay in ascending order, at most one of them for good, and last.
        untils = [v["until"] for v in versions or ()]
        timed = [datetime.fromisoformat(u) for u in untils if u is not None]
        assert timed == sorted(timed)
        assert None not in untils[:-1]
