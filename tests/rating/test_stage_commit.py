"""Stage 6, Commit: minimum commitment true-up, maximum spend cap, prorated when partial."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest

from rating.context import BillingContext, RatingState
from rating.model import (
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    Plan,
    Subscription,
)
from rating.stages.commit import commit
from tests.helpers.dates import OCTOBER, at


def usage(amount: str, metric: str = "api_calls") -> InvoiceLine:
    return InvoiceLine(LineType.USAGE_FEE, metric, D(amount), metric=metric)


def base(amount: str) -> InvoiceLine:
    return InvoiceLine(LineType.CHARGE, "Pro base fee", D(amount))


def run(
    lines: list[InvoiceLine],
    minimum: str | None = None,
    maximum: str | None = None,
    start: datetime = at(2026, 9),
    end: datetime | None = None,
) -> RatingState:
    plan = Plan(
        "pro",
        "Pro",
        "USD",
        Interval.MONTHLY,
        minimum_commitment=None if minimum is None else D(minimum),
        maximum_spend=None if maximum is None else D(maximum),
    )
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), plan, start, end)
    return commit(RatingState(context=BillingContext(subscription, OCTOBER), lines=tuple(lines)))


def added(state: RatingState, before: int) -> list[tuple[LineType, str, D]]:
    return [(ln.type, ln.description, ln.amount) for ln in state.lines[before:]]


TRUE_UP = "Minimum commitment true-up"
ADJUSTMENT = "Maximum spend adjustment"


@pytest.mark.parametrize(
    ("lines", "minimum", "start", "end", "expected"),
    [
        pytest.param(
            [usage("30.00")],
            "100",
            at(2026, 9),
            None,
            [(LineType.CHARGE, TRUE_UP, "70.00")],
            id="true-up",
        ),
        pytest.param(
            [usage("30.00"), usage("45.50", "storage")],
            "100",
            at(2026, 9),
            None,
            [(LineType.CHARGE, TRUE_UP, "24.50")],
            id="sums-usage-lines",
        ),
        pytest.param(
            [],
            "100",
            at(2026, 9),
            None,
            [(LineType.CHARGE, TRUE_UP, "100.00")],
            id="no-usage-at-all",
        ),
        pytest.param([usage("100.00")], "100", at(2026, 9), None, [], id="met-exactly"),
        pytest.param([usage("120.00")], "100", at(2026, 9), None, [], id="exceeded"),
        pytest.param(
            [base("500.00"), usage("30.00")],
            "100",
            at(2026, 9),
            None,
            [(LineType.CHARGE, TRUE_UP, "70.00")],
            id="fixed-fees-do-not-count",
        ),
        # 100 × 17/31 = 54.838… → 54.84
        pytest.param(
            [usage("30.00")],
            "100",
            at(2026, 10, 15),
            None,
            [(LineType.CHARGE, TRUE_UP, "24.84")],
            id="prorated-start",
        ),
        # 100 × 20/31 = 64.516… → 64.52
        pytest.param(
            [usage("30.00")],
            "100",
            at(2026, 9),
            at(2026, 10, 21),
            [(LineType.CHARGE, TRUE_UP, "34.52")],
            id="prorated-end",
        ),
        pytest.param([usage("60.00")], "100", at(2026, 10, 15), None, [], id="prorated-met"),
    ],
)
def test_minimum_commitment(
    lines: list[InvoiceLine],
    minimum: str,
    start: datetime,
    end: datetime | None,
    expected: list[tuple[LineType, str, str]],
) -> None:
    state = run(lines, minimum=minimum, start=start, end=end)
    assert added(state, len(lines)) == [(t, d, D(a)) for t, d, a in expected]
    assert state.lines[: len(lines)] == tuple(lines)


@pytest.mark.parametrize(
    ("amounts", "maximum", "start", "adjustment", "cuts"),
    [
        pytest.param(["150.00"], "100", at(2026, 9), "-50.00", ["50.00"], id="one-line"),
        pytest.param(
            ["80.00", "70.00"],
            "100",
            at(2026, 9),
            "-50.00",
            ["0", "50.00"],
            id="last-lines-cut-first",
        ),
        pytest.param(
            ["80.00", "70.00", "5.00"],
            "100",
            at(2026, 9),
            "-55.00",
            ["0", "50.00", "5.00"],
            id="lines-past-cap-cut-whole",
        ),
        pytest.param(["100.00"], "100", at(2026, 9), None, ["0"], id="at-cap"),
        pytest.param(["99.99"], "100", at(2026, 9), None, ["0"], id="under-cap"),
        # 100 × 17/31 = 54.838…: a ceiling rounds down, so 54.83 is allowed
        pytest.param(
            ["80.00"], "100", at(2026, 10, 15), "-25.17", ["25.17"], id="prorated-rounds-down"
        ),
        pytest.param(
            ["80.00"], "0.505", at(2026, 9), "-79.50", ["79.50"], id="sub-cent-ceiling-rounds-down"
        ),
        pytest.param(["80.00"], "0", at(2026, 9), "-80.00", ["80.00"], id="zero-cap"),
    ],
)
def test_maximum_spend(
    amounts: list[str], maximum: str, start: datetime, adjustment: str | None, cuts: list[str]
) -> None:
    lines = [usage(a) for a in amounts]
    state = run([base("49.00"), *lines], maximum=maximum, start=start)
    assert [ln.discount_amount for ln in state.lines[1 : 1 + len(lines)]] == [D(c) for c in cuts]
    assert state.lines[0].discount_amount == 0  # fixed fees are not capped
    if adjustment is None:
        assert len(state.lines) == 1 + len(lines)
        return
    adj = state.lines[-1]
    assert (adj.type, adj.description, adj.amount) == (LineType.DISCOUNT, ADJUSTMENT, D(adjustment))
    # Usage fees after the visible adjustment never exceed the (prorated) maximum spend.
    usage_after = sum(D(a) for a in amounts) + adj.amount
    assert usage_after == sum(ln.amount - ln.discount_amount for ln in state.lines[1:-1])


def test_minimum_and_maximum_between_them_nothing_changes() -> None:
    lines = [usage("75.00")]
    assert run(lines, minimum="50", maximum="100").lines == tuple(lines)


def test_inactive_subscription_is_untouched() -> None:
    lines = [usage("75.00")]
    state = run(lines, minimum="100", start=at(2026, 11))
    assert state.lines == tuple(lines)
