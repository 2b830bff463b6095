"""Calendar periods in UTC and the day counts that prorate fixed fees."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from rating.model import Interval, Period
from rating.periods import (
    days,
    next_period,
    period_containing,
    periods_within,
    previous_period,
    proration_days,
    proration_factor,
)
from tests.helpers.dates import at


def span(a: datetime, b: datetime) -> Period:
    return Period(a, b)


@pytest.mark.parametrize(
    ("interval", "instant", "expected"),
    [
        pytest.param(
            Interval.MONTHLY,
            at(2026, 10, 15, 12),
            span(at(2026, 10, 1), at(2026, 11, 1)),
            id="month-middle",
        ),
        pytest.param(
            Interval.MONTHLY,
            at(2026, 10, 1),
            span(at(2026, 10, 1), at(2026, 11, 1)),
            id="month-first-instant",
        ),
        pytest.param(
            Interval.MONTHLY,
            at(2026, 12, 31, 23, 59),
            span(at(2026, 12, 1), at(2027, 1, 1)),
            id="december-wraps-year",
        ),
        pytest.param(
            Interval.MONTHLY,
            at(2028, 2, 29),
            span(at(2028, 2, 1), at(2028, 3, 1)),
            id="leap-february",
        ),
        pytest.param(
            Interval.WEEKLY,
            at(2026, 10, 15),
            span(at(2026, 10, 12), at(2026, 10, 19)),
            id="week-thursday",
        ),
        pytest.param(
            Interval.WEEKLY,
            at(2026, 10, 12),
            span(at(2026, 10, 12), at(2026, 10, 19)),
            id="week-monday",
        ),
        pytest.param(
            Interval.WEEKLY,
            at(2026, 12, 31),
            span(at(2026, 12, 28), at(2027, 1, 4)),
            id="week-across-year",
        ),
        pytest.param(
            Interval.QUARTERLY, at(2026, 11, 5), span(at(2026, 10, 1), at(2027, 1, 1)), id="q4"
        ),
        pytest.param(
            Interval.QUARTERLY,
            at(2026, 4, 1),
            span(at(2026, 4, 1), at(2026, 7, 1)),
            id="q2-first-instant",
        ),
        pytest.param(
            Interval.YEARLY, at(2026, 7, 4), span(at(2026, 1, 1), at(2027, 1, 1)), id="year"
        ),
    ],
)
def test_period_containing(interval: Interval, instant: datetime, expected: Period) -> None:
    assert period_containing(interval, instant) == expected


def test_period_containing_converts_other_zones_to_utc() -> None:
    # 2026-11-01 01:00 at UTC+2 is still October 31 in UTC.
    instant = datetime(2026, 11, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert period_containing(Interval.MONTHLY, instant) == span(at(2026, 10, 1), at(2026, 11, 1))


def test_naive_instants_are_utc_whatever_the_machine_zone() -> None:
    naive = datetime(2026, 10, 31, 23, 30)
    assert period_containing(Interval.MONTHLY, naive) == span(at(2026, 10, 1), at(2026, 11, 1))


@pytest.mark.parametrize(
    ("interval", "period", "following", "preceding"),
    [
        pytest.param(
            Interval.MONTHLY,
            span(at(2026, 12, 1), at(2027, 1, 1)),
            span(at(2027, 1, 1), at(2027, 2, 1)),
            span(at(2026, 11, 1), at(2026, 12, 1)),
            id="monthly",
        ),
        pytest.param(
            Interval.WEEKLY,
            span(at(2026, 10, 12), at(2026, 10, 19)),
            span(at(2026, 10, 19), at(2026, 10, 26)),
            span(at(2026, 10, 5), at(2026, 10, 12)),
            id="weekly",
        ),
        pytest.param(
            Interval.QUARTERLY,
            span(at(2026, 1, 1), at(2026, 4, 1)),
            span(at(2026, 4, 1), at(2026, 7, 1)),
            span(at(2025, 10, 1), at(2026, 1, 1)),
            id="quarterly",
        ),
        pytest.param(
            Interval.YEARLY,
            span(at(2026, 1, 1), at(2027, 1, 1)),
            span(at(2027, 1, 1), at(2028, 1, 1)),
            span(at(2025, 1, 1), at(2026, 1, 1)),
            id="yearly",
        ),
    ],
)
def test_next_and_previous(
    interval: Interval, period: Period, following: Period, preceding: Period
) -> None:
    assert next_period(interval, period) == following
    assert previous_period(interval, period) == preceding
    assert previous_period(interval, next_period(interval, period)) == period


@pytest.mark.parametrize(
    ("interval", "window", "expected"),
    [
        pytest.param(
            Interval.MONTHLY,
            span(at(2026, 10, 1), at(2026, 11, 1)),
            [span(at(2026, 10, 1), at(2026, 11, 1))],
            id="one-month",
        ),
        pytest.param(
            Interval.MONTHLY,
            span(at(2026, 10, 15), at(2026, 12, 15)),
            [span(at(2026, 10, 1), at(2026, 11, 1)), span(at(2026, 11, 1), at(2026, 12, 1))],
            id="months-ending-inside",
        ),
        pytest.param(
            Interval.MONTHLY, span(at(2026, 10, 2), at(2026, 10, 31)), [], id="no-month-ends-inside"
        ),
        pytest.param(
            Interval.QUARTERLY, span(at(2026, 10, 1), at(2026, 11, 1)), [], id="quarter-not-ending"
        ),
        pytest.param(
            Interval.QUARTERLY,
            span(at(2026, 12, 1), at(2027, 1, 1)),
            [span(at(2026, 10, 1), at(2027, 1, 1))],
            id="quarter-ending",
        ),
        pytest.param(
            Interval.WEEKLY,
            span(at(2026, 10, 1), at(2026, 11, 1)),
            [
                span(at(2026, 9, 28), at(2026, 10, 5)),
                span(at(2026, 10, 5), at(2026, 10, 12)),
                span(at(2026, 10, 12), at(2026, 10, 19)),
                span(at(2026, 10, 19), at(2026, 10, 26)),
            ],
            id="weeks-ending-in-october",
        ),
    ],
)
def test_periods_within(interval: Interval, window: Period, expected: list[Period]) -> None:
    assert periods_within(interval, window) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(at(2026, 10, 1), at(2026, 11, 1), "31", id="october"),
        pytest.param(at(2026, 10, 15), at(2026, 11, 1), "17", id="from-the-15th"),
        pytest.param(at(2026, 10, 15, 12), at(2026, 11, 1), "17", id="started-day-counts"),
        pytest.param(at(2026, 10, 1), at(2026, 10, 1, 0, 1), "1", id="one-minute-is-a-day"),
        pytest.param(at(2026, 10, 1), at(2026, 10, 1), "0", id="empty"),
        pytest.param(at(2026, 10, 2), at(2026, 10, 1), "0", id="reversed"),
    ],
)
def test_days(start: datetime, end: datetime, expected: str) -> None:
    assert days(start, end) == D(expected)


def test_days_ignore_microsecond_float_error() -> None:
    # timedelta arithmetic, not float seconds: 31 days exactly stays 31.
    start = at(2026, 10, 1) + timedelta(microseconds=100_001)
    assert days(start, start + timedelta(days=31)) == D(31)
    assert days(start, start + timedelta(days=31, microseconds=1)) == D(32)


OCTOBER = span(at(2026, 10, 1), at(2026, 11, 1))


@pytest.mark.parametrize(
    ("active", "used", "factor"),
    [
        pytest.param(OCTOBER, "31", "1", id="whole-period"),
        pytest.param(
            span(at(2026, 10, 15), at(2026, 11, 1)), "17", "17/31", id="started-mid-period"
        ),
        pytest.param(span(at(2026, 10, 1), at(2026, 10, 21)), "20", "20/31", id="ended-mid-period"),
        pytest.param(span(at(2026, 10, 10), at(2026, 10, 20)), "10", "10/31", id="both"),
    ],
)
def test_proration(active: Period, used: str, factor: str) -> None:
    assert proration_days(OCTOBER, active) == (D(used), D(31))
    numerator, _, denominator = factor.partition("/")
    expected = D(numerator) / D(denominator or "1")
    assert proration_factor(OCTOBER, active) == expected
