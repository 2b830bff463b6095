"""Aggregations, metric and charge filters, groups, and duplicate events."""

from __future__ import annotations

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    customer,
    ev,
    invoice,
    lines,
    metric,
    per_unit,
    plan,
    send,
    totals,
    usage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_max_aggregation_over_the_whole_period(stack):
    c = stack.tenant("sc-max")
    metric(c, "peak_gb", "max", field="gb")
    plan(c, "peak", [per_unit("peak_gb", "1.5")])
    customer(c, "db", "peak")
    send(
        c,
        [
            ev("x0", "db", "peak_gb", "2026-09-30T23:59:59Z", gb=50),  # before the period
            ev("x1", "db", "peak_gb", "2026-10-02", gb=5),
            ev("x2", "db", "peak_gb", "2026-10-10", gb=12),
            ev("x3", "db", "peak_gb", "2026-10-20", gb=7),
            ev("x4", "db", "peak_gb", "2026-11-01T00:00:00Z", gb=40),  # the period's end: out
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "db")
    # max(5, 12, 7) = 12 (50 and 40 lie outside [Oct 1, Nov 1)); 12 × 1.5 = 18.00
    assert lines(inv) == [usage("peak_gb", "12", "1.5", "18.00")]
    assert totals(inv) == ("18.00", Z, Z, Z, "18.00", "18.00")


def test_unique_count_aggregation(stack):
    c = stack.tenant("sc-unique")
    metric(c, "active_users", "unique_count", field="user")
    plan(c, "mau", [per_unit("active_users", "2")])
    customer(c, "app", "mau")
    users = ["alice", "bob", "alice", "carol", "Alice", "bob"]
    events = [ev(f"u{i}", "app", "active_users", "2026-10-03", user=u) for i, u in enumerate(users)]
    events.append(ev("u-none", "app", "active_users", "2026-10-04", other="x"))  # no user
    send(c, events)
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "app")
    # distinct users: alice, bob, carol, Alice (text compares exactly) = 4; 4 × 2 = 8.00
    assert lines(inv) == [usage("active_users", "4", "2", "8.00")]
    assert totals(inv) == ("8.00", Z, Z, Z, "8.00", "8.00")


def test_latest_aggregation_greatest_timestamp_then_greatest_id(stack):
    c = stack.tenant("sc-latest")
    metric(c, "seats_now", "latest", field="seats")
    plan(c, "lat", [per_unit("seats_now", "3")])
    customer(c, "team", "lat")
    send(
        c,
        [
            ev("s-b", "team", "seats_now", "2026-10-28", seats=7),
            ev("s-c", "team", "seats_now", "2026-10-20", seats=12),
            ev("s-a", "team", "seats_now", "2026-10-28", seats=9),
            ev("s-0", "team", "seats_now", "2026-10-05", seats=3),
            ev("s-z", "team", "seats_now", "2026-10-30", note="no seats field"),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "team")
    # latest event carrying `seats`: Oct 28 12:00, tie between s-a (9) and s-b (7) broken by
    # the greatest id, s-b → 7 (s-z has no seats field); 7 × 3 = 21.00
    assert lines(inv) == [usage("seats_now", "7", "3", "21.00")]
    assert totals(inv) == ("21.00", Z, Z, Z, "21.00", "21.00")


def test_weighted_sum_aggregation_and_partial_subscription(stack):
    c = stack.tenant("sc-weighted")
    metric(c, "seats", "weighted_sum")
    plan(c, "gauge", [per_unit("seats", "3")])
    customer(c, "full", "gauge", start="2026-09-01")
    customer(c, "late", "gauge", start="2026-09-16")
    send(
        c,
        [
            ev("f1", "full", "seats", "2026-09-11T00:00:00Z", 10),
            ev("f2", "full", "seats", "2026-09-21T00:00:00Z", -4),
            ev("l1", "late", "seats", "2026-09-05T00:00:00Z", 10),
        ],
    )
    bill(c, "2026-09-01", "2026-09-30", created=2)
    # September has 30 days. full: 10 seats for 10 days, then 6 for 10 days
    #   (10 × 10 + 6 × 10) / 30 = 5.333333333333 (12 decimals); × 3 = 15.999999999999 → 16.00
    full = invoice(c, "full")
    assert lines(full) == [usage("seats", "5.333333333333", "3", "16.00")]
    assert totals(full) == ("16.00", Z, Z, Z, "16.00", "16.00")
    # late: the level 10 (set Sep 5, before the subscription) holds during its 15 active
    # days; the denominator is the billing period: 10 × 15 / 30 = 5; × 3 = 15.00
    late = invoice(c, "late")
    assert lines(late) == [usage("seats", "5", "3", "15.00")]
    assert totals(late) == ("15.00", Z, Z, Z, "15.00", "15.00")


def test_metric_filters_and_group_by_one_line_per_group(stack):
    c = stack.tenant("sc-groups")
    metric(c, "requests", "count", filters={"region": ["eu", "us"]}, groupBy=["region"])
    plan(c, "geo", [per_unit("requests", "0.5")])
    customer(c, "global", "geo")
    regions = ["us", "eu", "ap", "eu", "ap", "us", "eu", "ap", "ap"]
    send(
        c,
        [ev(f"r{i}", "global", "requests", "2026-10-07", region=r) for i, r in enumerate(regions)],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "global")
    # ap is filtered out by the metric; groups sorted: eu 3 × 0.5 = 1.50, us 2 × 0.5 = 1.00
    assert lines(inv) == [
        usage("requests", "3", "0.5", "1.50"),
        usage("requests", "2", "0.5", "1.00"),
    ]
    assert [ln["group"] for ln in inv["lines"]] == [{"region": "eu"}, {"region": "us"}]
    assert totals(inv) == ("2.50", Z, Z, Z, "2.50", "2.50")


def test_charge_level_filters(stack):
    c = stack.tenant("sc-charge-filters")
    metric(c, "calls", "count")
    plan(
        c,
        "tiers",
        [
            per_unit("calls", "2", filters={"tier": ["gold"]}),
            per_unit("calls", "1", filters={"tier": ["silver", "bronze"]}),
        ],
    )
    customer(c, "corp", "tiers")
    tiers = ["gold", "silver", "gold", "bronze", "silver", "gold"]
    events = [ev(f"c{i}", "corp", "calls", "2026-10-08", tier=t) for i, t in enumerate(tiers)]
    events += [
        ev("c-none", "corp", "calls", "2026-10-08"),
        ev("c-x", "corp", "calls", "2026-10-09"),
    ]
    send(c, events)
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "corp")
    # gold: 3 × 2 = 6.00; silver + bronze: 3 × 1 = 3.00; the 2 events without a tier
    # match neither charge and are not billed
    assert lines(inv) == [usage("calls", "3", "2", "6.00"), usage("calls", "3", "1", "3.00")]
    assert totals(inv) == ("9.00", Z, Z, Z, "9.00", "9.00")


def test_duplicate_event_ids_counted_once(stack):
    c = stack.tenant("sc-duplicates")
    metric(c, "gb", "sum")
    metric(c, "hits", "count")
    plan(c, "dup", [per_unit("gb", "1"), per_unit("hits", "0.1")])
    customer(c, "twice", "dup")
    send(
        c,
        [
            ev("d1", "twice", "gb", "2026-10-02", 10),
            ev("d2", "twice", "gb", "2026-10-03", 20),
            ev("d1", "twice", "gb", "2026-10-04", 999),  # same id: the first copy wins
            ev("d2", "twice", "hits", "2026-10-05"),  # same id, other metric: ignored
            ev("d3", "twice", "gb", "2026-10-06", 5),
            ev("h1", "twice", "hits", "2026-10-06"),
            ev("h1", "twice", "hits", "2026-10-06"),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "twice")
    # gb: d1 10 + d2 20 + d3 5 = 35 × 1 = 35.00; hits: h1 once = 1 × 0.1 = 0.10
    assert lines(inv) == [usage("gb", "35", "1", "35.00"), usage("hits", "1", "0.1", "0.10")]
    assert totals(inv) == ("35.10", Z, Z, Z, "35.10", "35.10")
