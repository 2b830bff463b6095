"""Subscriptions and periods: proration, termination, pay in advance, weekly and
quarterly plans, plan changes, overrides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    customer,
    ev,
    fee,
    invoice,
    invoices,
    lines,
    metric,
    per_unit,
    plan,
    send,
    totals,
    usage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_subscription_starting_mid_month_is_prorated(stack):
    c = stack.tenant("sc-mid-start")
    metric(c, "calls", "count")
    plan(c, "pro", [per_unit("calls", "1")], baseFee="100")
    customer(c, "newco", "pro", start="2026-10-15T12:00:00Z")
    send(
        c,
        [
            ev("before", "newco", "calls", "2026-10-10"),  # before the start: not billed
            ev("at-start", "newco", "calls", "2026-10-15T12:00:00Z"),  # at the start: billed
            ev("inside", "newco", "calls", "2026-10-20"),
            ev("next", "newco", "calls", "2026-11-01T00:00:00Z"),  # November's
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "newco")
    # Oct 15 12:00 → Nov 1: a started day counts, 17 of 31 days
    # base 100 × 17 / 31 = 54.8387… → 54.84, unit 54.838709677419; usage 2 × 1 = 2.00
    assert lines(inv) == [
        fee("54.84", "54.838709677419", kind="PRORATION"),
        usage("calls", "2", "1", "2.00"),
    ]
    assert inv["lines"][1]["periodStart"] == "2026-10-15T12:00:00Z"
    assert totals(inv) == ("56.84", Z, Z, Z, "56.84", "56.84")


def test_subscription_terminated_mid_month(stack, travel_clock):
    c = stack.tenant("sc-terminated")
    metric(c, "calls", "count")
    plan(c, "pro", [per_unit("calls", "1")], baseFee="100")
    sub = customer(c, "leaver", "pro")
    # Terminated within October (a past instant of the current period), no final
    # invoice: October's bill run bills the partial period.
    travel_clock.travel_to(datetime(2026, 10, 20, tzinfo=UTC))
    ended = c.ok(
        "POST",
        f"/subscriptions/{sub['id']}/terminate",
        json={"at": "2026-10-10", "finalInvoice": False},
    )
    travel_clock.reset()
    # an end date includes that whole day: the subscription ends Oct 11 00:00
    assert (ended["status"], ended["endDate"]) == ("terminated", "2026-10-11T00:00:00Z")
    send(
        c,
        [
            ev("in1", "leaver", "calls", "2026-10-05"),
            ev("in2", "leaver", "calls", "2026-10-10T23:00:00Z"),
            ev("out1", "leaver", "calls", "2026-10-11T00:00:00Z"),  # at the end: not billed
            ev("out2", "leaver", "calls", "2026-10-20"),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "leaver")
    # 10 of 31 days: 100 × 10 / 31 = 32.258… → 32.26, unit 32.258064516129; usage 2
    assert lines(inv) == [
        fee("32.26", "32.258064516129", kind="PRORATION"),
        usage("calls", "2", "1", "2.00"),
    ]
    assert totals(inv) == ("34.26", Z, Z, Z, "34.26", "34.26")
    # nothing is left to bill in November
    bill(c, "2026-11-01", "2026-11-30", created=0)


def test_pay_in_advance_base_fee(stack):
    c = stack.tenant("sc-advance")
    plan(c, "adv", [], baseFee="30", payInAdvance=True)
    customer(c, "stay", "adv")
    customer(c, "go", "adv", endDate="2026-11-09")
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # the first invoice bills October (opened by no earlier invoice) and, in advance,
    # November: 30 + 30
    [stay_oct] = invoices(c, "stay")
    assert lines(stay_oct) == [fee("30.00", "30"), fee("30.00", "30")]
    periods = [(ln["periodStart"], ln["periodEnd"]) for ln in stay_oct["lines"]]
    assert periods == [
        ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
    ]
    assert totals(stay_oct) == ("60.00", Z, Z, Z, "60.00", "60.00")
    # ends Nov 10 00:00: November in advance is prorated 9/30 × 30 = 9.00
    [go_oct] = invoices(c, "go")
    assert lines(go_oct) == [fee("30.00", "30"), fee("9.00", "9", kind="PRORATION")]
    assert totals(go_oct) == ("39.00", Z, Z, Z, "39.00", "39.00")
    bill(c, "2026-11-01", "2026-11-30", created=2)
    # November's invoices bill December in advance: 30 for stay, nothing for go
    stay_nov = invoices(c, "stay")[1]
    assert lines(stay_nov) == [fee("30.00", "30")]
    assert stay_nov["lines"][0]["periodStart"] == "2026-12-01T00:00:00Z"
    assert totals(stay_nov) == ("30.00", Z, Z, Z, "30.00", "30.00")
    go_nov = invoices(c, "go")[1]
    assert lines(go_nov) == []
    assert totals(go_nov) == (Z, Z, Z, Z, Z, Z)


def test_weekly_plan_in_a_monthly_bill_run(stack):
    c = stack.tenant("sc-weekly")
    metric(c, "calls", "count")
    plan(c, "week", [per_unit("calls", "1")], baseFee="7", interval="weekly")
    customer(c, "wk", "week")  # from Thursday, October 1 2026
    days = {"2026-10-02": 1, "2026-10-06": 2, "2026-10-13": 3, "2026-10-20": 1, "2026-10-27": 5}
    send(c, [ev(f"{d}-{i}", "wk", "calls", d) for d, n in days.items() for i in range(n)])
    bill(c, "2026-10-01", "2026-10-31", created=4)
    # weeks start on Monday; the run bills the weeks that end in (Oct 1, Nov 1]:
    # [Sep 28, Oct 5) active from Oct 1: 7 × 4/7 = 4.00 + 1 call
    # [Oct 5, 12): 7 + 2; [Oct 12, 19): 7 + 3; [Oct 19, 26): 7 + 1
    first, *full = invoices(c, "wk")
    assert (first["periodStart"], first["periodEnd"]) == (
        "2026-09-28T00:00:00Z",
        "2026-10-05T00:00:00Z",
    )
    assert lines(first) == [fee("4.00", "4", kind="PRORATION"), usage("calls", "1", "1", "1.00")]
    assert totals(first) == ("5.00", Z, Z, Z, "5.00", "5.00")
    assert [inv["periodStart"][:10] for inv in full] == ["2026-10-05", "2026-10-12", "2026-10-19"]
    for inv, calls in zip(full, (2, 3, 1), strict=True):
        amount = f"{calls}.00"
        assert lines(inv) == [fee("7.00", "7"), usage("calls", str(calls), "1", amount)]
        assert inv["total"] == f"{7 + calls}.00"
    # [Oct 26, Nov 2) ends in November: the November run bills it, 7 + 5 calls
    bill(c, "2026-11-01", "2026-11-01", created=1)
    last = invoices(c, "wk")[-1]
    assert last["periodStart"] == "2026-10-26T00:00:00Z"
    assert lines(last) == [fee("7.00", "7"), usage("calls", "5", "1", "5.00")]
    assert totals(last) == ("12.00", Z, Z, Z, "12.00", "12.00")


def test_weekly_and_quarterly_subscriptions_ended_before_the_run(stack):
    # Regression: a bill run only loaded subscriptions still active in its window, so a
    # period ending in the window but started before it (a weekly plan's last week, a
    # quarter) was never billed when the subscription ended before the window.
    c = stack.tenant("sc-ended-before-run")
    plan(c, "week", [], baseFee="7", interval="weekly")
    plan(c, "quarter", [], baseFee="92", interval="quarterly")
    customer(c, "wk", "week", start="2026-10-19", endDate="2026-10-28")
    customer(c, "qt", "quarter", start="2026-07-01", endDate="2026-08-20")
    bill(c, "2026-10-01", "2026-10-31", created=1)  # the week [Oct 19, 26)
    # November bills the last week [Oct 26, Nov 2), used until Oct 29: 7 × 3/7 = 3.00
    bill(c, "2026-11-01", "2026-11-30", created=1)
    weeks = invoices(c, "wk")
    assert [(i["periodStart"][:10], i["total"]) for i in weeks] == [
        ("2026-10-19", "7.00"),
        ("2026-10-26", "3.00"),
    ]
    assert lines(weeks[1]) == [fee("3.00", "3", kind="PRORATION")]
    # September's run bills Q3 [Jul 1, Oct 1), used Jul 1 → Aug 21: 92 × 51/92 = 51.00
    bill(c, "2026-09-01", "2026-09-30", created=1)
    quarter = invoice(c, "qt")
    assert (quarter["periodStart"], quarter["periodEnd"]) == (
        "2026-07-01T00:00:00Z",
        "2026-10-01T00:00:00Z",
    )
    assert lines(quarter) == [fee("51.00", "51", kind="PRORATION")]
    assert totals(quarter) == ("51.00", Z, Z, Z, "51.00", "51.00")


def test_plan_change_mid_month_splits_events_by_subscription(stack, travel_clock):
    c = stack.tenant("sc-plan-change")
    metric(c, "calls", "count")
    plan(c, "basic", [per_unit("calls", "1")], baseFee="31")
    plan(c, "premium", [per_unit("calls", "2")], baseFee="62")
    basic = customer(c, "mover", "basic")
    travel_clock.travel_to(datetime(2026, 10, 20, tzinfo=UTC))
    c.ok(
        "POST",
        f"/subscriptions/{basic['id']}/terminate",
        json={"at": "2026-10-15T00:00:00Z", "finalInvoice": False},
    )
    travel_clock.reset()
    premium = c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "mover", "planCode": "premium", "startDate": "2026-10-15T00:00:00Z"},
    )
    send(
        c,
        [
            ev("b1", "mover", "calls", "2026-10-10"),
            ev("p1", "mover", "calls", "2026-10-15T00:00:00Z"),
            ev("p2", "mover", "calls", "2026-10-20"),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=2)
    by_sub = {i["subscriptionId"]: i for i in invoices(c, "mover")}
    # basic, Oct 1 → 15: 31 × 14/31 = 14.00 + 1 call × 1
    old = by_sub[basic["id"]]
    assert lines(old) == [fee("14.00", "14", kind="PRORATION"), usage("calls", "1", "1", "1.00")]
    assert totals(old) == ("15.00", Z, Z, Z, "15.00", "15.00")
    # premium, Oct 15 → Nov 1: 62 × 17/31 = 34.00 + 2 calls × 2
    new = by_sub[premium["id"]]
    assert lines(new) == [fee("34.00", "34", kind="PRORATION"), usage("calls", "2", "2", "4.00")]
    assert totals(new) == ("38.00", Z, Z, Z, "38.00", "38.00")


def test_subscription_overrides(stack):
    c = stack.tenant("sc-overrides")
    metric(c, "calls", "count")
    plan(c, "list", [per_unit("calls", "1")], baseFee="10")
    customer(c, "listed", "list")
    c.ok("POST", "/customers", json={"externalId": "vip", "name": "VIP", "currency": "USD"})
    overrides = {
        "baseFee": "5",
        "charges": {"calls": {"properties": {"unitAmount": "0.5"}, "includedQuantity": 2}},
    }
    c.ok(
        "POST",
        "/subscriptions",
        json={
            "customerId": "vip",
            "planCode": "list",
            "startDate": "2026-10-01",
            "overrides": overrides,
        },
    )
    send(c, [ev(f"{n}{i}", n, "calls", "2026-10-03") for n in ("listed", "vip") for i in range(10)])
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # list price: 10 + 10 × 1 = 20
    assert lines(invoice(c, "listed")) == [fee("10.00", "10"), usage("calls", "10", "1", "10.00")]
    # overridden: 5 + (10 − 2 included) × 0.5 = 9
    vip = invoice(c, "vip")
    assert lines(vip) == [fee("5.00", "5"), usage("calls", "8", "0.5", "4.00")]
    assert totals(vip) == ("9.00", Z, Z, Z, "9.00", "9.00")
