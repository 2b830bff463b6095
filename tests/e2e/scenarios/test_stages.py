"""The quantity and commitment stages: hard cap (Quota Check), Allowance, Rollover, and
the minimum and maximum of Commit."""

from __future__ import annotations

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    customer,
    discount,
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


def test_hard_cap_then_included_quantity(stack):
    c = stack.tenant("sc-hard-cap")
    metric(c, "tokens", "sum")
    plan(c, "capped", [per_unit("tokens", "0.01", hardCap="1000", includedQuantity="200")])
    customer(c, "bot", "capped")
    send(
        c,
        [
            ev("t1", "bot", "tokens", "2026-10-03", 600),
            ev("t2", "bot", "tokens", "2026-10-04", 700),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "bot")
    # 1300 used, capped at 1000 (Quota Check before Allowance); − 200 included = 800
    # × 0.01 = 8.00
    assert lines(inv) == [usage("tokens", "800", "0.01", "8.00")]
    assert totals(inv) == ("8.00", Z, Z, Z, "8.00", "8.00")


def test_rollover_to_next_month_uncapped_and_capped(stack):
    c = stack.tenant("sc-rollover")
    metric(c, "minutes", "sum")
    plan(c, "roll", [per_unit("minutes", "0.10", includedQuantity="100", rollover={})])
    plan(c, "rollcap", [per_unit("minutes", "0.10", includedQuantity="100", rollover={"cap": 25})])
    customer(c, "free", "roll")
    customer(c, "cap", "rollcap")
    send(
        c,
        [
            ev("f-oct", "free", "minutes", "2026-10-10", 60),
            ev("c-oct", "cap", "minutes", "2026-10-10", 60),
            ev("f-nov", "free", "minutes", "2026-11-10", 170),
            ev("c-nov", "cap", "minutes", "2026-11-10", 170),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # October: 60 of the 100 included used → 0 billed; 40 unused carry over
    # (the capped plan carries at most 25)
    for name in ("free", "cap"):
        inv = invoice(c, name)
        assert lines(inv) == [usage("minutes", "0", "0", Z)]
        assert totals(inv) == (Z, Z, Z, Z, Z, Z)
    bill(c, "2026-11-01", "2026-11-30", created=2)
    # November, 170 used: free: 100 + 40 carried = 140 → 30 × 0.10 = 3.00
    free_oct, free_nov = invoices(c, "free")
    assert lines(free_nov) == [usage("minutes", "30", "0.1", "3.00")]
    assert totals(free_nov) == ("3.00", Z, Z, Z, "3.00", "3.00")
    # cap: 100 + 25 carried = 125 → 45 × 0.10 = 4.50
    cap_oct, cap_nov = invoices(c, "cap")
    assert lines(cap_nov) == [usage("minutes", "45", "0.1", "4.50")]
    assert totals(cap_nov) == ("4.50", Z, Z, Z, "4.50", "4.50")
    assert free_oct["periodStart"] == cap_oct["periodStart"] == "2026-10-01T00:00:00Z"


def test_minimum_commitment_true_up(stack):
    c = stack.tenant("sc-minimum")
    metric(c, "calls", "count")
    plan(c, "commit", [per_unit("calls", "1")], baseFee="10", minimumCommitment="50")
    customer(c, "small", "commit")
    customer(c, "newbie", "commit", start="2026-10-16")
    send(c, [ev(f"s{i}", "small", "calls", "2026-10-05") for i in range(12)])
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # base 10; usage 12 × 1 = 12 < 50 → true-up 50 − 12 = 38 (fixed fees do not count)
    small = invoice(c, "small")
    assert lines(small) == [
        fee("10.00", "10"),
        usage("calls", "12", "1", "12.00"),
        fee("38.00", "38"),
    ]
    assert small["lines"][2]["description"] == "Minimum commitment true-up"
    assert totals(small) == ("60.00", Z, Z, Z, "60.00", "60.00")
    # newbie, from Oct 16: 16 of 31 days. base 10 × 16/31 = 5.161… → 5.16 (unit 5.161290322581)
    # minimum 50 × 16/31 = 25.806… → 25.81; no usage → true-up 25.81
    newbie = invoice(c, "newbie")
    assert lines(newbie) == [
        fee("5.16", "5.161290322581", kind="PRORATION"),
        usage("calls", "0", "0", Z),
        fee("25.81", "25.81"),
    ]
    assert totals(newbie) == ("30.97", Z, Z, Z, "30.97", "30.97")


def test_maximum_spend_adjustment(stack):
    c = stack.tenant("sc-maximum")
    metric(c, "calls", "count")
    metric(c, "storage", "sum")
    plan(
        c,
        "ceiling",
        [per_unit("calls", "1"), per_unit("storage", "2")],
        baseFee="5",
        maximumSpend="20",
    )
    c.ok("POST", "/taxes", json={"code": "vat", "name": "VAT", "rate": "10", "country": "IE"})
    customer(c, "spender", "ceiling", country="IE")
    events = [ev(f"k{i}", "spender", "calls", "2026-10-06") for i in range(15)]
    events.append(ev("st", "spender", "storage", "2026-10-06", 5))
    send(c, events)
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "spender")
    # base 5 (not capped); usage 15 × 1 + 5 × 2 = 25 > 20 → adjustment −5, taken from the
    # last usage line (storage keeps 5). tax 10%: base 0.50, calls 1.50, storage 10 − 5 = 5
    # → 0.50; tax 2.50. subtotal 30, discount 5, total 30 − 5 + 2.50 = 27.50
    assert lines(inv) == [
        fee("5.00", "5", tax="0.50"),
        usage("calls", "15", "1", "15.00", "1.50"),
        usage("storage", "5", "2", "10.00", "0.50"),
        discount("-5.00", "-5"),
    ]
    assert inv["lines"][3]["description"] == "Maximum spend adjustment"
    assert totals(inv) == ("30.00", "5.00", "2.50", Z, "27.50", "27.50")
