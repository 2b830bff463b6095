"""Billing periods, calendar-aligned in UTC: weeks start Monday, months on the 1st,
quarters in January/April/July/October, years on January 1st."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rating.model import Interval, Period


def _month_start(year: int, month: int) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def period_containing(interval: Interval, instant: datetime) -> Period:
    """The calendar period of `interval` that contains `instant`."""
    t = instant.astimezone(UTC)
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
    return period_containing(interval, period.end)


def previous_period(interval: Interval, period: Period) -> Period:
    return period_containing(interval, period.start - timedelta(microseconds=1))


def periods_within(interval: Interval, window: Period) -> list[Period]:
    """The calendar periods of `interval` that end inside (start, end] of the window.

    A bill run over October bills the monthly periods ending in October, the weekly
    periods ending in it, and a quarterly period only when the quarter ends in it.
    """
    result = []
    period = period_containing(interval, window.start)
    while period.end <= window.end:
        if period.end > window.start:
            result.append(period)
        period = next_period(interval, period)
    return result


def days(start: datetime, end: datetime) -> Decimal:
    """Days between two instants, counting a started day as a whole day."""
    seconds = Decimal((end - start).total_seconds())
    whole = seconds // Decimal(86400)
    return whole + (1 if seconds % Decimal(86400) else 0)


def proration_factor(period: Period, active: Period) -> Decimal:
    """Days used / days in period, exact (the caller rounds the amount at line level)."""
    total = days(period.start, period.end)
    used = days(active.start, active.end)
    if used >= total:
        return Decimal(1)
    return used / total
