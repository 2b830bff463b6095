"""Which (subscription, period) items a window bills: pure, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from invoicing.billing.selection import earliest_end, items_to_bill
from rating.model import Customer, Interval, Period, Plan, Subscription

OCTOBER = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sub(interval: Interval, start: str, end: str | None = None, sub_id: str = "s1") -> Subscription:
    plan = Plan(code="p", name="P", currency="USD", interval=interval)
    return Subscription(
        id=sub_id,
        customer=Customer(external_id="acme", name="Acme", currency="USD"),
        plan=plan,
        start=d(start),
        end=None if end is None else d(end),
    )


@pytest.mark.parametrize(
    ("interval", "start", "end", "expected"),
    [
        # A monthly plan bills its October, whole or in part.
        (Interval.MONTHLY, "2026-01-01", None, ["10-01/11-01 10-01/11-01"]),
        (Interval.MONTHLY, "2026-10-16", None, ["10-01/11-01 10-16/11-01"]),
        (Interval.MONTHLY, "2026-01-01", "2026-10-10", ["10-01/11-01 10-01/10-10"]),
        (Interval.MONTHLY, "2026-10-05", "2026-10-20", ["10-01/11-01 10-05/10-20"]),
        # Ended before, or starting after, the window: nothing.
        (Interval.MONTHLY, "2026-01-01", "2026-10-01", []),
        (Interval.MONTHLY, "2026-11-01", None, []),
        # Quarters and years end after October: nothing yet.
        (Interval.QUARTERLY, "2026-08-15", None, []),
        (Interval.YEARLY, "2026-01-01", None, []),
        # Weeks ending in October (Mondays): Sep 28 – Oct 5 … Oct 19 – Oct 26.
        (
            Interval.WEEKLY,
            "2026-10-07",
            None,
            [
                "10-05/10-12 10-07/10-12",
                "10-12/10-19 10-12/10-19",
                "10-19/10-26 10-19/10-26",
            ],
        ),
    ],
)  # fmt: skip
def test_periods_and_active_parts(interval, start, end, expected):
    # expected: "period start/end active start/end" (month-day, 2026)
    items = items_to_bill([(sub(interval, start, end), "cus_1")], OCTOBER, set())
    got = [
        f"{i.period.start:%m-%d}/{i.period.end:%m-%d} {i.active.start:%m-%d}/{i.active.end:%m-%d}"
        for i in items
    ]
    assert got == expected
    assert all(i.customer_row_id == "cus_1" for i in items)


def test_a_quarter_ending_in_the_window_is_billed():
    q4_window = Period(d("2026-12-01"), d("2027-01-01"))
    [item] = items_to_bill([(sub(Interval.QUARTERLY, "2026-08-15"), "c")], q4_window, set())
    assert (item.period, item.active) == (
        Period(d("2026-10-01"), d("2027-01-01")),
        Period(d("2026-10-01"), d("2027-01-01")),
    )


def test_already_invoiced_periods_are_skipped():
    weekly = sub(Interval.WEEKLY, "2026-09-01", sub_id="w")
    monthly = sub(Interval.MONTHLY, "2026-09-01", sub_id="m")
    invoiced = {("w", d("2026-10-05"), d("2026-10-12")), ("m", d("2026-10-01"), d("2026-11-01"))}
    items = items_to_bill([(weekly, "c1"), (monthly, "c2")], OCTOBER, invoiced)
    assert [(i.subscription.id, i.period.start.day) for i in items] == [
        ("w", 28),  # Sep 28 – Oct 5 ends in October
        ("w", 12),
        ("w", 19),
    ]


def test_keys_are_unique_per_subscription_and_period_and_keep_order():
    subs = [(sub(Interval.MONTHLY, "2026-01-01", sub_id=f"s{n}"), f"c{n}") for n in (3, 1, 2)]
    items = items_to_bill(subs, OCTOBER, set())
    assert [i.key for i in items] == [
        "s3|2026-10-01T00:00:00+00:00",
        "s1|2026-10-01T00:00:00+00:00",
        "s2|2026-10-01T00:00:00+00:00",
    ]
    request = items[0].usage_request
    assert (request.key, request.customer_id, request.active) == (items[0].key, "acme", OCTOBER)


def test_loading_leaves_out_only_what_ended_before_the_longest_period():
    # The longest period (a leap year) before the window, and a day more for the local
    # periods of customers in other zones.
    assert earliest_end(OCTOBER) == d("2025-09-29")
