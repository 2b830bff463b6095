"""Billing periods, calendar-aligned in UTC: weeks start Monday, months on the 1st,
quarters in January/April/July/October, years on January 1st."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rating.model import Interval, Period
from rating.money import ZERO


def _month_start(year: int, month: int) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def period_containing(interval: Interval, instant: datetime) -> Period:
    """The calendar period of `interval` that contains `instant`."""
    # A naive instant is UTC: astimezone() would read it in the machine's local zone.
    t = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    match interval:
        case Interval.WEEKLY:
            day = datetime(t.year, t.month, t.day, tzinfo=UTC)
            start = day - timedelta(days=day.weekday())
            return Period(start, start + timedelta(days=7))
        case Interval.MONTHLY:
            return Period(_month_start(t.year, t.month), _month_start(t.year, t.month + 1))
        case Interval.QUARTERLY:
            first = 3 * ((t.month - 1) // 3) + 1
            return Period(_month_start(t.year, first), _month_start(t.year, first + 3))
        case Interval.YEARLY:
            return Period(
                datetime(t.year, 1, 1, tzinfo=UTC), datetime(t.year + 1, 1, 1, tzinfo=UTC)
            )
    raise ValueError(f"unknown interval {interval}")


def next_period(interval: Interval, period: Period) -> Period:
    """The calendar period that follows `period` (the one containing its end)."""
    return period_containing(interval, period.end)


def previous_period(interval: Interval, period: Period) -> Period:
    """The calendar period that precedes `period` (the one containing its last instant)."""
    return period_containing(interval, period.start - timedelta(microseconds=1))


def periods_within(interval: Interval, window: Period) -> list[Period]:
    """The calendar periods of `interval` that end inside (start, end] of the window.

    A bill run over October bills the monthly periods ending in October, the weekly
    periods ending in it, and a quarterly period only when the quarter ends in it.
    """
    result: list[Period] = []
    period = period_containing(interval, window.start)
    while period.end <= window.end:
        if period.end > window.start:
            result.append(period)
        period = next_period(interval, period)
    return result


def days(start: datetime, end: datetime) -> Decimal:
    """Days between two instants, counting a started day as a whole day (0 if end <= start)."""
    delta = end - start  # integer days, seconds and microseconds: no float on the way
    if delta <= timedelta(0):
        return ZERO
    started = delta.seconds > 0 or delta.microseconds > 0
    return Decimal(delta.days + (1 if started else 0))


def proration_days(period: Period, active: Period) -> tuple[Decimal, Decimal]:
    """(days used, days in period) for a fee of `period` used during `active`.

    A started day counts as a whole day; days used never exceed days in the period.
    """
    total = days(period.start, period.end)
    return min(days(active.start, active.end), total), total


def proration_factor(period: Period, active: Period) -> Decimal:
    """Days used / days in period, to 28 significant digits.

    Amounts are prorated exactly with `proration_days` and rounded once at line level;
    this factor is for display and estimates only.
    """
    used, total = proration_days(period, active)
    if used >= total:
        return Decimal(1)
    return used / total
