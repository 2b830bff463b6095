"""Stage 3, Aggregate: plan charge order, sorted groups, zero rows for idle charges."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rating.context import BillingContext, ChargeQuantity, RatingState
from rating.model import (
    Aggregation,
    Customer,
    Group,
    Interval,
    Metric,
    Plan,
    Subscription,
    UsageCharge,
)
from rating.stages.aggregate import aggregate
from tests.helpers.dates import OCTOBER

CALLS = Metric("api_calls", "API calls", Aggregation.COUNT, group_by=("region",))
STORAGE = Metric("storage", "Storage", Aggregation.WEIGHTED_SUM)
A = UsageCharge("a", CALLS, "per_unit", {"unitAmount": "1"})
B = UsageCharge("b", STORAGE, "per_unit", {"unitAmount": "2"})
EU: Group = (("region", "eu"),)
US: Group = (("region", "us"),)
US_PRO: Group = (("plan", "pro"), ("region", "us"))


def run(quantities: list[tuple[UsageCharge, Group, str]]) -> list[tuple[str, Group, D, D]]:
    plan = Plan("pro", "Pro", "USD", Interval.MONTHLY, charges=(A, B))
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), plan, OCTOBER.start)
    state = RatingState(
        context=BillingContext(subscription, OCTOBER),
        quantities=tuple(ChargeQuantity(c, g, D(q), D(q)) for c, g, q in quantities),
    )
    return [(q.charge.id, q.group, q.quantity, q.billable) for q in aggregate(state).quantities]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param([], [("a", (), D(0), D(0)), ("b", (), D(0), D(0))], id="no-usage-zero-lines"),
        pytest.param(
            [(B, (), "5")],
            [("a", (), D(0), D(0)), ("b", (), D(5), D(5))],
            id="idle-charge-gets-zero-line",
        ),
        pytest.param(
            [(B, (), "5"), (A, (), "3")],
            [("a", (), D(3), D(3)), ("b", (), D(5), D(5))],
            id="plan-order",
        ),
        pytest.param(
            [(A, US, "2"), (A, EU, "1")],
            [("a", EU, D(1), D(1)), ("a", US, D(2), D(2)), ("b", (), D(0), D(0))],
            id="groups-sorted",
        ),
        pytest.param(
            [(A, US_PRO, "4"), (A, US, "2"), (A, EU, "1")],
            [
                ("a", US_PRO, D(4), D(4)),
                ("a", EU, D(1), D(1)),
                ("a", US, D(2), D(2)),
                ("b", (), D(0), D(0)),
            ],
            id="groups-sorted-by-pairs",
        ),
    ],
)
def test_aggregate(
    given: list[tuple[UsageCharge, Group, str]], expected: list[tuple[str, Group, D, D]]
) -> None:
    assert run(given) == expected
