"""Stage 4, Allowance: included + rolled-over quantity, shared by groups, never below zero."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from rating.context import BillingContext, ChargeQuantity, RatingState, RolloverBucket
from rating.model import (
    Aggregation,
    Customer,
    Group,
    Interval,
    Metric,
    Plan,
    RolloverRule,
    Subscription,
    UsageCharge,
)
from rating.stages.allowance import allowance
from tests.helpers.dates import OCTOBER

DEC1 = datetime(2026, 12, 1, tzinfo=UTC)
CALLS = Metric("api_calls", "API calls", Aggregation.COUNT, group_by=("region",))
EU: Group = (("region", "eu"),)
US: Group = (("region", "us"),)


def run(
    quantities: list[tuple[Group, str]],
    allowance_: str,
    rule: RolloverRule | None = None,
    included: str = "0",
    carried: tuple[RolloverBucket, ...] = (),
) -> RatingState:
    charge = UsageCharge(
        "c1",
        CALLS,
        "per_unit",
        {"unitAmount": "1"},
        included_quantity=D(included),
        rollover=rule,
    )
    plan = Plan("pro", "Pro", "USD", Interval.MONTHLY, charges=(charge,))
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), plan, OCTOBER.start)
    state = RatingState(
        context=BillingContext(subscription, OCTOBER),
        quantities=tuple(ChargeQuantity(charge, g, D(q), D(q)) for g, q in quantities),
        allowances={"c1": D(allowance_)},
        rollover_buckets={"c1": carried} if rule else {},
    )
    return allowance(state)


@pytest.mark.parametrize(
    ("quantities", "allowance_", "expected"),
    [
        pytest.param([((), "150")], "100", [((), "50", "100")], id="above-allowance"),
        pytest.param([((), "100")], "100", [((), "0", "100")], id="exactly-used"),
        pytest.param([((), "40")], "100", [((), "0", "40")], id="never-below-zero"),
        pytest.param([((), "0")], "100", [((), "0", "0")], id="no-usage"),
        pytest.param([((), "12.5")], "0.25", [((), "12.25", "0.25")], id="fractional"),
        pytest.param([((), "-3")], "100", [((), "0", "0")], id="negative-gauge-bills-nothing"),
        pytest.param(
            [(EU, "60"), (US, "70")],
            "100",
            [(EU, "0", "60"), (US, "30", "40")],
            id="shared-across-groups",
        ),
        pytest.param(
            [(EU, "160"), (US, "70")],
            "100",
            [(EU, "60", "100"), (US, "70", "0")],
            id="first-group-uses-it-first",
        ),
        pytest.param(
            [(EU, "10"), (US, "20")], "0", [(EU, "10", "0"), (US, "20", "0")], id="no-allowance"
        ),
    ],
)
def test_allowance(
    quantities: list[tuple[Group, str]], allowance_: str, expected: list[tuple[Group, str, str]]
) -> None:
    state = run(quantities, allowance_)
    assert [(q.group, q.billable, q.allowance_used) for q in state.quantities] == [
        (g, D(b), D(u)) for g, b, u in expected
    ]
    assert state.rollover_out == {}


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        pytest.param(
            "0", (RolloverBucket(D(5), DEC1), RolloverBucket(D(100), DEC1)), id="nothing-used"
        ),
        pytest.param(
            "3", (RolloverBucket(D(2), DEC1), RolloverBucket(D(100), DEC1)), id="carry-used-first"
        ),
        pytest.param("50", (RolloverBucket(D(55), DEC1),), id="then-included"),
        pytest.param("105", (), id="all-used"),
        pytest.param("500", (), id="overage"),
    ],
)
def test_unused_allowance_rolls_over(used: str, expected: tuple[RolloverBucket, ...]) -> None:
    state = run(
        [((), used)],
        "105",
        rule=RolloverRule(expiry_periods=1),
        included="100",
        carried=(RolloverBucket(D(5), DEC1),),
    )
    assert state.rollover_out == {"c1": expected}
