"""weighted_sum: Σ level × (time the level held in the window / time of the billing period).

Events carry changes (+/−) of a gauge; the level at the window's start is the sum of
every earlier change of the customer (same metric, filters and group). Quantities are
exact rationals rounded once, half up, to 12 decimal places (docs/aggregations.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from rating.model import Aggregation, Metric, Period
from streams.usage_store import BillingInterval, weighted_quantity
from tests.streams.conftest import APRIL, ENTRY_POINTS, METRIC, Ev, UsageEnv, at, ev

DAY_MS = 86_400_000


def gauge(
    field: str = "value",
    filters: dict[str, tuple[str, ...]] | None = None,
    group_by: tuple[str, ...] = (),
) -> Metric:
    return Metric(METRIC, "Seats", Aggregation.WEIGHTED_SUM, field, filters or {}, group_by)


# -- the exact division, without ClickHouse --------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "period_ms", "expected"),
    [
        (D(160) * DAY_MS, 30 * DAY_MS, D("5.333333333333")),
        (D(2), 3, D("0.666666666667")),  # rounds up from …6666
        (D(1), 3, D("0.333333333333")),  # rounds down from …3333
        (D("0.000000000001"), 2, D("0.000000000001")),  # exactly half: up
        (D("-0.000000000001"), 2, D("-0.000000000001")),  # half of a negative: away from 0
        (D("-2"), 3, D("-0.666666666667")),
        (D(0), 5, D(0)),
        (D("1E+40"), 1, D("1E+40")),  # far beyond the 28-digit default context
        (D("864197523086419752308641969.864197523084"), 7,
         D("123456789012345678901234567.123456789012")),
    ],
)  # fmt: skip
def test_weighted_quantity_rounds_once_half_up(numerator: D, period_ms: int, expected: D) -> None:
    assert weighted_quantity(numerator, period_ms) == expected


def test_weighted_quantity_needs_a_period() -> None:
    with pytest.raises(ValueError, match="positive"):
        weighted_quantity(D(1), 0)


# -- on the engine, through both entry points -------------------------------------------


@pytest.mark.clickhouse
@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [ev("a", 10, 10), ev("b", 20, -4)],
            D("5.333333333333"),  # (10 × 10 days + 6 × 10 days) / 30 days
            id="worked example",
        ),
        pytest.param(
            [ev("a", 10, 5), ev("b", 10, -5), ev("c", 10, 3)],
            D(2),  # all three apply together at day 10: 3 × 20 / 30
            id="changes at one instant apply together",
        ),
        pytest.param(
            [ev("old", -400, 4), ev("a", -1, 2), ev("b", 15, 4)],
            D(8),  # opening level 6: (6 × 30 + 4 × 15) / 30
            id="opening level from every earlier change",
        ),
        pytest.param(
            [ev("a", -3, 6)],
            D(6),
            id="level held all period without events in it",
        ),
        pytest.param([ev("a", -3, 6), ev("b", -2, -6)], None, id="zero level and no events"),
        pytest.param([ev("a", 0, -3)], D(-3), id="negative level"),
        pytest.param(
            [ev("a", 0, "99999999999999999999999999.999999999999"), ev("b", 0, 1)],
            D("100000000000000000000000000.999999999999"),
            id="large levels do not overflow",
        ),
        pytest.param(
            [ev("a", 30, 1, ms=-1)],
            D("0.000000000386"),  # 1 ms of 2,592,000,000 ms = 3.858e-10
            id="millisecond precision",
        ),
        pytest.param(
            [ev("a", 30, 1000), ev("b", 45, 1000)],
            None,
            id="changes at or after the end do not count",
        ),
        pytest.param(
            [ev("a", 0, 10), ev("b", 15), ev("c", 20, 2)],
            D("10.666666666667"),  # the event without a value changes nothing: (300 + 20) / 30
            id="events without the field change nothing",
        ),
    ],
)
def test_weighted_sum(
    usage_env: UsageEnv, entry: str, events: list[Ev], expected: D | None
) -> None:
    usage_env.send(*events)
    assert usage_env.quantities(entry, gauge()) == ({} if expected is None else {(): expected})


@pytest.mark.clickhouse
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_lagos_documented_example(usage_env: UsageEnv, entry: str) -> None:
    """Lago: 20 GB for one day, then 30 GB for 15 days, in a 31-day month."""
    march = Period(datetime(2022, 3, 1, tzinfo=UTC), datetime(2022, 4, 1, tzinfo=UTC))
    usage_env.send(
        Ev("gb-1", datetime(2022, 3, 16, tzinfo=UTC), None, {"gb": "20"}),
        Ev("gb-2", datetime(2022, 3, 17, tzinfo=UTC), None, {"gb": "10"}),
    )
    got = usage_env.quantities(entry, gauge("gb"), march.start, march.end)
    # (20 × 86,400 + 30 × 1,296,000) / 2,678,400 = 15.16129032258064…; Lago shows 15.1612903226.
    assert got == {(): D("15.161290322581")}


@pytest.mark.clickhouse
def test_partial_subscription_divides_by_the_billing_period(usage_env: UsageEnv) -> None:
    """Active from day 15 of 30 with 10 seats held: 10 × 15 / 30 = 5, not 10."""
    usage_env.send(ev("a", 5, 10))
    late = BillingInterval("late", "c1", at(15), at(30), APRIL)
    assert usage_env.bulk(gauge(), [late]) == {("late", ()): (D(5), 0, ())}
    assert usage_env.usage(gauge(), at(15), at(30), period=APRIL) == {(): D(5)}
    # Without a period, the window is the period (a mid-period usage query).
    assert usage_env.usage(gauge(), at(15), at(30)) == {(): D(10)}
    no_period = BillingInterval("late", "c1", at(15), at(30))
    assert usage_env.bulk(gauge(), [no_period]) == {("late", ()): (D(10), 0, ())}


@pytest.mark.clickhouse
def test_two_subscriptions_of_one_customer(usage_env: UsageEnv) -> None:
    """The level carries from the first subscription's interval into the second's."""
    usage_env.send(ev("a", 10, 10), ev("b", 20, -4))
    rows = usage_env.bulk(
        gauge(),
        [
            BillingInterval("old", "c1", at(0), at(15), APRIL),
            BillingInterval("new", "c1", at(15), at(30), APRIL),
        ],
        with_amounts=True,
    )
    assert rows == {
        ("old", ()): (D("1.666666666667"), 1, (D(10),)),  # 10 × 5 / 30
        ("new", ()): (D("3.666666666667"), 1, (D(-4),)),  # (10 × 5 + 6 × 10) / 30
    }


@pytest.mark.clickhouse
def test_periods_of_different_lengths_in_one_query(usage_env: UsageEnv) -> None:
    """A monthly and a yearly subscription read the same metric in one bulk query."""
    usage_env.send(ev("a", -10, 10, customer="monthly"), ev("b", -10, 10, customer="yearly"))
    year = Period(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    rows = usage_env.bulk(
        gauge(),
        [
            BillingInterval("m", "monthly", APRIL.start, APRIL.end, APRIL),
            BillingInterval("y", "yearly", at(0), year.end, year),
        ],
    )
    # The yearly one is active from April 1 (day 91 of 366) to the year's end: 275 days.
    assert rows == {
        ("m", ()): (D(10), 0, ()),
        ("y", ()): (D("7.513661202186"), 0, ()),  # 10 × 275 / 366
    }


@pytest.mark.clickhouse
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_group_by_and_filters_apply_to_the_opening_level(usage_env: UsageEnv, entry: str) -> None:
    usage_env.send(
        ev("a", -5, 5, region="eu", tier="gold"),
        ev("b", -5, 100, region="eu", tier="free"),  # filtered out, before and in the window
        ev("c", 10, 2, region="us", tier="gold"),
        ev("d", 20, 100, region="us", tier="free"),
        ev("e", 15, 3, tier="gold"),  # no region: the "" group
    )
    metric = gauge(filters={"tier": ("gold",)}, group_by=("region",))
    assert usage_env.quantities(entry, metric) == {
        (("region", "eu"),): D(5),
        (("region", "us"),): D("1.333333333333"),  # 2 × 20 / 30
        (("region", ""),): D("1.5"),  # 3 × 15 / 30
    }


@pytest.mark.clickhouse
def test_charge_filters_apply_to_the_opening_level(usage_env: UsageEnv) -> None:
    usage_env.send(ev("a", -5, 5, tier="gold"), ev("b", -5, 7, tier="free"))
    got = usage_env.bulk_quantities(gauge(), extra_filters={"tier": ("free",)})
    assert got == {(): D(7)}


@pytest.mark.clickhouse
def test_weighted_sum_of_a_property(usage_env: UsageEnv) -> None:
    usage_env.send(
        ev("a", 0, 1000, seats="3"),  # `value` is not the field
        ev("b", 10, seats="x"),  # not a number: changes nothing
        ev("c", 15, seats="-1.5"),
    )
    for entry in ENTRY_POINTS:
        assert usage_env.quantities(entry, gauge("seats")) == {(): D("2.25")}  # (90 - 22.5)/30
