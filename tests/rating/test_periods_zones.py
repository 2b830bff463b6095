"""Calendar periods in the customer's zone: local midnights as UTC instants, local days.

Every period function with zones, on the daylight-saving changes of March 2027 in
Paris (28 March, 02:00 → 03:00) and November 2027 in New York (7 November, 02:00 →
01:00), then properties over many zones: periods tile time, start at local midnight,
and a daylight-saving day counts as one day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.model import Interval, Period
from rating.periods import (
    add_days,
    days,
    local_date,
    local_window,
    next_period,
    period_containing,
    periods_within,
    previous_period,
    proration_days,
    proration_factor,
    start_of_day,
    zone_of,
)
from rating.proration import split_fee

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_zone_of_utc_is_datetime_utc_and_unknown_names_read_as_utc():
    assert zone_of("UTC") is UTC
    assert zone_of(None) is UTC
    assert zone_of("Europe/Paris") == PARIS
    assert zone_of("Not/AZone") is UTC
    assert zone_of("Europe") is UTC  # a directory of the zone database


def test_start_of_day_is_the_local_midnight_in_utc():
    assert start_of_day(date(2027, 3, 28), PARIS) == z("2027-03-27T23:00:00Z")  # CET
    assert start_of_day(date(2027, 3, 29), PARIS) == z("2027-03-28T22:00:00Z")  # CEST
    assert start_of_day(date(2027, 11, 7), NEW_YORK) == z("2027-11-07T04:00:00Z")  # EDT
    assert start_of_day(date(2027, 11, 8), NEW_YORK) == z("2027-11-08T05:00:00Z")  # EST
    assert start_of_day(date(2027, 3, 28)) == z("2027-03-28T00:00:00Z")


def test_start_of_day_where_the_change_skips_midnight():
    # Santiago springs forward at midnight (00:00 → 01:00 on 3 September 2023): the
    # day starts at the change, 01:00 local.
    santiago = ZoneInfo("America/Santiago")
    first = start_of_day(date(2023, 9, 3), santiago)
    assert first == z("2023-09-03T04:00:00Z")
    assert first.astimezone(santiago).hour == 1
    assert local_date(first - timedelta(microseconds=1), santiago) == date(2023, 9, 2)


def test_local_date():
    assert local_date(z("2027-03-31T22:30:00Z"), PARIS) == date(2027, 4, 1)
    assert local_date(z("2027-03-31T21:59:59Z"), PARIS) == date(2027, 3, 31)
    assert local_date(datetime(2027, 3, 31, 22, 30), PARIS) == date(2027, 4, 1)  # naive: UTC


@pytest.mark.parametrize(
    ("interval", "instant", "zone", "start", "end"),
    [
        pytest.param(
            Interval.MONTHLY, "2027-03-15T12:00:00Z", PARIS,
            "2027-02-28T23:00:00Z", "2027-03-31T22:00:00Z", id="paris-march",
        ),
        pytest.param(
            Interval.MONTHLY, "2027-03-31T22:30:00Z", PARIS,
            "2027-03-31T22:00:00Z", "2027-04-30T22:00:00Z", id="paris-april-00h30",
        ),
        pytest.param(
            Interval.MONTHLY, "2027-11-15T00:00:00Z", NEW_YORK,
            "2027-11-01T04:00:00Z", "2027-12-01T05:00:00Z", id="new-york-november",
        ),
        pytest.param(
            Interval.MONTHLY, "2027-12-01T04:59:59Z", NEW_YORK,
            "2027-11-01T04:00:00Z", "2027-12-01T05:00:00Z", id="new-york-last-second",
        ),
        pytest.param(
            Interval.WEEKLY, "2027-03-28T12:00:00Z", PARIS,
            "2027-03-21T23:00:00Z", "2027-03-28T22:00:00Z", id="paris-dst-week",
        ),
        pytest.param(
            Interval.WEEKLY, "2027-03-29T00:00:00Z", PARIS,
            "2027-03-28T22:00:00Z", "2027-04-04T22:00:00Z", id="paris-monday",
        ),
        pytest.param(
            Interval.QUARTERLY, "2027-11-07T06:00:00Z", NEW_YORK,
            "2027-10-01T04:00:00Z", "2028-01-01T05:00:00Z", id="new-york-q4",
        ),
        pytest.param(
            Interval.YEARLY, "2027-06-01T00:00:00Z", HONOLULU,
            "2027-01-01T10:00:00Z", "2028-01-01T10:00:00Z", id="honolulu-year",
        ),
        pytest.param(
            Interval.MONTHLY, "2026-10-31T10:00:00Z", KIRITIMATI,
            "2026-10-31T10:00:00Z", "2026-11-30T10:00:00Z", id="kiritimati-november",
        ),
    ],
)  # fmt: skip
def test_period_containing_in_a_zone(interval, instant, zone, start, end):
    assert period_containing(interval, z(instant), zone) == Period(z(start), z(end))


def test_next_and_previous_period_in_a_zone():
    march = Period(z("2027-02-28T23:00:00Z"), z("2027-03-31T22:00:00Z"))
    april = Period(z("2027-03-31T22:00:00Z"), z("2027-04-30T22:00:00Z"))
    february = Period(z("2027-01-31T23:00:00Z"), z("2027-02-28T23:00:00Z"))
    assert next_period(Interval.MONTHLY, march, PARIS) == april
    assert previous_period(Interval.MONTHLY, march, PARIS) == february


def test_periods_within_a_local_window():
    window = local_window(Period(z("2027-03-01T00:00:00Z"), z("2027-04-01T00:00:00Z")), PARIS)
    assert window == Period(z("2027-02-28T23:00:00Z"), z("2027-03-31T22:00:00Z"))
    assert periods_within(Interval.MONTHLY, window, PARIS) == [
        Period(z("2027-02-28T23:00:00Z"), z("2027-03-31T22:00:00Z"))
    ]
    weeks = periods_within(Interval.WEEKLY, window, PARIS)
    assert [local_date(w.end, PARIS) for w in weeks] == [
        date(2027, 3, 8), date(2027, 3, 15), date(2027, 3, 22), date(2027, 3, 29)
    ]  # fmt: skip


def test_local_window_leaves_utc_and_instant_ranges_alone():
    dates = Period(z("2027-03-01T00:00:00Z"), z("2027-04-01T00:00:00Z"))
    assert local_window(dates) == dates
    instants = Period(z("2027-03-01T05:00:00Z"), z("2027-04-01T00:00:00Z"))
    assert local_window(instants, PARIS) == instants


@pytest.mark.parametrize(
    ("start", "end", "zone", "expected"),
    [
        # A month of local days, whatever its hours: 31 (743 h), 30 (721 h), 31 (745 h)
        pytest.param("2027-02-28T23:00:00Z", "2027-03-31T22:00:00Z", PARIS, 31, id="paris-march"),
        pytest.param("2027-11-01T04:00:00Z", "2027-12-01T05:00:00Z", NEW_YORK, 30, id="ny-nov"),
        pytest.param("2027-09-30T22:00:00Z", "2027-10-31T23:00:00Z", PARIS, 31, id="paris-oct"),
        # The 23-hour day and the 25-hour day are one day each
        pytest.param("2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z", PARIS, 1, id="23h-day"),
        pytest.param("2027-11-07T04:00:00Z", "2027-11-08T05:00:00Z", NEW_YORK, 1, id="25h-day"),
        # A started local day counts whole
        pytest.param("2027-11-07T04:00:00Z", "2027-11-08T05:00:01Z", NEW_YORK, 2, id="started"),
        pytest.param("2027-03-15T11:00:00Z", "2027-03-31T22:00:00Z", PARIS, 17, id="noon-start"),
        pytest.param("2027-03-31T22:00:00Z", "2027-03-31T22:00:00Z", PARIS, 0, id="empty"),
        # Inside the repeated hour: the wall clock goes back, a started day all the same
        pytest.param("2027-11-07T05:30:00Z", "2027-11-07T06:10:00Z", NEW_YORK, 1, id="fold"),
        # UTC as always: 30 days and 23 hours are 31 started days
        pytest.param("2027-02-28T23:00:00Z", "2027-03-31T22:00:00Z", UTC, 31, id="utc"),
        pytest.param("2027-11-01T04:00:00Z", "2027-12-01T05:00:00Z", UTC, 31, id="utc-ny"),
    ],
)
def test_days_are_local_calendar_days(start, end, zone, expected):
    assert days(z(start), z(end), zone) == D(expected)


def test_proration_days_and_factor_in_local_days():
    november = period_containing(Interval.MONTHLY, z("2027-11-15T00:00:00Z"), NEW_YORK)
    from_10th = Period(start_of_day(date(2027, 11, 10), NEW_YORK), november.end)
    assert proration_days(november, from_10th, NEW_YORK) == (D(21), D(30))
    assert proration_factor(november, from_10th, NEW_YORK) == D(21) / D(30)
    assert proration_days(november, from_10th) == (D(21), D(31))  # read in UTC: 31 days
    assert proration_factor(november, november, NEW_YORK) == D(1)


def test_split_fee_in_local_days():
    # An advance fee of 30.00 for New York's November, cut on 16 November: 15 days used
    november = period_containing(Interval.MONTHLY, z("2027-11-15T00:00:00Z"), NEW_YORK)
    cut = start_of_day(date(2027, 11, 16), NEW_YORK)
    split = split_fee(D("30"), november, cut, "USD", NEW_YORK)
    assert (split.used, split.unused, split.used_days, split.total_days) == (
        D("15.00"), D("15.00"), D(15), D(30),
    )  # fmt: skip


def test_add_days_keeps_the_wall_clock():
    # A 14-day trial from Paris midnight on 20 March ends at midnight on 3 April (CEST)
    start = start_of_day(date(2027, 3, 20), PARIS)
    assert add_days(start, 14, PARIS) == start_of_day(date(2027, 4, 3), PARIS)
    assert add_days(start, 14, PARIS) - start == timedelta(days=14, hours=-1)
    assert add_days(start, 14) - start == timedelta(days=14)


# -- properties over many zones -----------------------------------------------------

ZONES = sorted(
    {
        "UTC", "Europe/Paris", "Europe/London", "America/New_York", "America/Santiago",
        "America/Sao_Paulo", "America/St_Johns", "Asia/Kolkata", "Asia/Kathmandu",
        "Australia/Lord_Howe", "Australia/Adelaide", "Pacific/Honolulu", "Pacific/Kiritimati",
        "Pacific/Chatham", "Pacific/Apia", "Asia/Tehran", "Africa/Casablanca",
        "America/Havana", "Asia/Beirut", "Antarctica/Troll", "Etc/GMT+12", "Asia/Gaza",
    }
)  # fmt: skip
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)
)
zones = st.sampled_from(ZONES).map(zone_of)
intervals = st.sampled_from(list(Interval))


@settings(max_examples=400, deadline=None)
@given(instant=instants, zone=zones, interval=intervals)
def test_periods_tile_time_and_start_at_local_midnight(instant, zone, interval):
    period = period_containing(interval, instant, zone)
    assert period.start <= instant < period.end
    after = next_period(interval, period, zone)
    assert after.start == period.end  # no gap, no overlap
    assert previous_period(interval, after, zone) == period
    for boundary in (period.start, period.end):
        local = boundary.astimezone(zone)
        # The first instant of its local day: midnight, or the change that skipped it
        assert local_date(boundary - timedelta(microseconds=1), zone) < local.date()
        assert boundary == start_of_day(local.date(), zone)
        assert boundary.tzinfo is UTC
    first = period.start.astimezone(zone).date()
    match interval:
        case Interval.WEEKLY:
            assert first.weekday() == 0
        case Interval.MONTHLY:
            assert first.day == 1
        case Interval.QUARTERLY:
            assert first.day == 1 and first.month in (1, 4, 7, 10)
        case Interval.YEARLY:
            assert (first.month, first.day) == (1, 1)


@settings(max_examples=400, deadline=None)
@given(instant=instants, zone=zones)
def test_a_local_day_is_one_day_whatever_its_hours(instant, zone):
    day = local_date(instant, zone)
    start, end = start_of_day(day, zone), start_of_day(day + timedelta(days=1), zone)
    hours = (end - start) / timedelta(hours=1)
    assert 0 <= hours <= 48  # 23 h and 25 h across changes; Apia skipped a whole day
    if start < end:
        assert days(start, end, zone) == D(1)


@settings(max_examples=300, deadline=None)
@given(instant=instants, zone=zones, interval=intervals)
def test_days_in_a_period_are_its_local_calendar_days(instant, zone, interval):
    period = period_containing(interval, instant, zone)
    first = local_date(period.start, zone)
    last = local_date(period.end - timedelta(microseconds=1), zone)
    total = days(period.start, period.end, zone)
    assert total == D((last - first).days + 1)
    # used days of a local midnight start: the calendar days from it to the period's end
    middle = start_of_day(first + (last - first) / 2, zone)
    used, in_period = proration_days(period, Period(middle, period.end), zone)
    assert used <= in_period == total
