"""Billing periods, calendar-aligned in the customer's zone (UTC by default): weeks start
on the local Monday, months on the local 1st, quarters in January/April/July/October,
years on January 1st; every boundary is the local midnight, returned as a UTC instant.

A day is a local calendar day: the 23-hour and 25-hour days of a daylight-saving change
are one day each (docs/customer-timezones.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rating.model import Interval, Period
from rating.money import ZERO


@lru_cache(maxsize=1024)
def zone_of(name: str | None) -> tzinfo:
    """The zone an IANA name stands for; "UTC" (or nothing) is `datetime.UTC` itself, so
    UTC customers compute exactly what they always did. The API validates names; one the
    zone database lacks (stored before validation existed) reads as UTC."""
    if name is None or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def _is_utc(zone: tzinfo) -> bool:
    return zone is UTC


@lru_cache(maxsize=16384)
def start_of_day(day: date, zone: tzinfo = UTC) -> datetime:
    """The first instant (UTC) of the local calendar day `day` in `zone`.

    Usually the local midnight; where a daylight-saving change skips midnight it is the
    instant of the change (the day's first existing local time), and where midnight
    happens twice it is the later one (the instants before still read the day before).
    """
    if _is_utc(zone):
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    for fold in (0, 1):
        instant = datetime(day.year, day.month, day.day, fold=fold, tzinfo=zone).astimezone(UTC)
        if instant.astimezone(zone).date() >= day:
            return instant
    return instant  # pragma: no cover - one of the two folds always reads `day` or later


def local_date(instant: datetime, zone: tzinfo = UTC) -> date:
    """The calendar date `instant` falls on in `zone` (a naive instant is UTC)."""
    t = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
    return t.astimezone(zone).date()


def _month_first(year: int, month: int) -> date:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 1)


def _first_days(interval: Interval, day: date) -> tuple[date, date]:
    """The first local date of the period containing `day`, and of the next one."""
    match interval:
        case Interval.WEEKLY:
            first = day - timedelta(days=day.weekday())
            return first, first + timedelta(days=7)
        case Interval.MONTHLY:
            return _month_first(day.year, day.month), _month_first(day.year, day.month + 1)
        case Interval.QUARTERLY:
            month = 3 * ((day.month - 1) // 3) + 1
            return _month_first(day.year, month), _month_first(day.year, month + 3)
        case Interval.YEARLY:
            return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    raise ValueError(f"unknown interval {interval}")


def period_containing(interval: Interval, instant: datetime, zone: tzinfo = UTC) -> Period:
    """The calendar period of `interval`, in `zone`, that contains `instant`."""
    # A naive instant is UTC: astimezone() would read it in the machine's local zone.
    first, following = _first_days(interval, local_date(instant, zone))
    return Period(start_of_day(first, zone), start_of_day(following, zone))


def next_period(interval: Interval, period: Period, zone: tzinfo = UTC) -> Period:
    """The calendar period that follows `period` (the one containing its end)."""
    return period_containing(interval, period.end, zone)


def previous_period(interval: Interval, period: Period, zone: tzinfo = UTC) -> Period:
    """The calendar period that precedes `period` (the one containing its last instant)."""
    return period_containing(interval, period.start - timedelta(microseconds=1), zone)


def periods_within(interval: Interval, window: Period, zone: tzinfo = UTC) -> list[Period]:
    """The calendar periods of `interval` in `zone` that end inside (start, end] of the window.

    A bill run over October bills the monthly periods ending in October, the weekly
    periods ending in it, and a quarterly period only when the quarter ends in it.
    """
    result: list[Period] = []
    period = period_containing(interval, window.start, zone)
    while period.end <= window.end:
        if period.end > window.start:
            result.append(period)
        period = next_period(interval, period, zone)
    return result


def local_window(window: Period, zone: tzinfo = UTC) -> Period:
    """A window of calendar dates (UTC midnights, as a bill run's window is sent) read in
    `zone`: the same dates' local midnights. A window not on UTC midnights is an instant
    range and is returned unchanged."""
    if _is_utc(zone) or not (_utc_midnight(window.start) and _utc_midnight(window.end)):
        return window
    return Period(
        start_of_day(window.start.astimezone(UTC).date(), zone),
        start_of_day(window.end.astimezone(UTC).date(), zone),
    )


def _utc_midnight(instant: datetime) -> bool:
    t = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    return t.hour == t.minute == t.second == t.microsecond == 0


def days(start: datetime, end: datetime, zone: tzinfo = UTC) -> Decimal:
    """Local calendar days between two instants in `zone`, counting a started day as a
    whole day (0 if end <= start).

    Counted on the local wall clock, so a 23-hour or 25-hour daylight-saving day is one
    day: local midnight to local midnight is a whole number of days.
    """
    if end <= start:
        return ZERO
    if _is_utc(zone):
        delta = end - start  # integer days, seconds and microseconds: no float on the way
    else:
        delta = _wall(end, zone) - _wall(start, zone)
        if delta <= timedelta(0):
            return Decimal(1)  # inside a repeated hour: a started day all the same
    started = delta.seconds > 0 or delta.microseconds > 0
    return Decimal(delta.days + (1 if started else 0))


def add_days(instant: datetime, count: int, zone: tzinfo = UTC) -> datetime:
    """`count` local days after `instant`: the same wall-clock time `count` days later in
    `zone` (24 h per day in UTC; 23 or 25 h across a daylight-saving change)."""
    if _is_utc(zone) or count == 0:
        return instant + timedelta(days=count)
    later = instant.astimezone(zone) + timedelta(days=count)  # wall-clock arithmetic
    return later.astimezone(UTC)  # a skipped wall time reads with the offset before


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    """The local wall-clock reading of `instant` in `zone`, naive; the first instant of
    a day reads as its midnight even where a change skipped midnight (01:00 there)."""
    local = instant.astimezone(zone).replace(tzinfo=None)
    if local.hour and instant == start_of_day(local.date(), zone):
        return datetime(local.year, local.month, local.day)
    return local


def proration_days(period: Period, active: Period, zone: tzinfo = UTC) -> tuple[Decimal, Decimal]:
    """(days used, days in period) for a fee of `period` used during `active`, in local
    days of `zone`.

    A started day counts as a whole day; days used never exceed days in the period.
    """
    total = days(period.start, period.end, zone)
    return min(days(active.start, active.end, zone), total), total


def proration_factor(period: Period, active: Period, zone: tzinfo = UTC) -> Decimal:
    """Days used / days in period, to 28 significant digits.

    Amounts are prorated exactly with `proration_days` and rounded once at line level;
    this factor is for display and estimates only.
    """
    used, total = proration_days(period, active, zone)
    if used >= total:
        return Decimal(1)
    return used / total
