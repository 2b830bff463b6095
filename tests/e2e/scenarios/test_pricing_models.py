"""Pricing models: per unit, graduated, volume, package, percentage and graduated percentage."""

from __future__ import annotations

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    charge,
    customer,
    ev,
    fee,
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


def test_per_unit_with_included_quantity(stack):
    c = stack.tenant("sc-per-unit")
    metric(c, "api_calls", "count")
    plan(c, "starter", [per_unit("api_calls", "0.05", includedQuantity=100)], baseFee="20")
    customer(c, "heavy", "starter")
    customer(c, "light", "starter")
    events = [ev(f"h{i}", "heavy", "api_calls", f"2026-10-{1 + i % 28:02d}") for i in range(130)]
    events += [ev(f"l{i}", "light", "api_calls", "2026-10-09") for i in range(40)]
    send(c, events)
    bill(c, "2026-10-01", "2026-10-31", created=2)

    heavy = invoice(c, "heavy")
    # base fee 20; 130 calls − 100 included = 30 × 0.05 = 1.50; total 21.50
    assert lines(heavy) == [fee("20.00", "20"), usage("api_calls", "30", "0.05", "1.50")]
    assert totals(heavy) == ("21.50", Z, Z, Z, "21.50", "21.50")
    light = invoice(c, "light")
    # 40 calls, all inside the 100 included: quantity 0, 0.00 (at q = 0 the unit amount
    # shown is 0 for every model, docs/pricing-models.md)
    assert lines(light) == [fee("20.00", "20"), usage("api_calls", "0", "0", Z)]
    assert totals(light) == ("20.00", Z, Z, Z, "20.00", "20.00")


def test_graduated_three_tiers_flat_amounts_fractional_quantity(stack):
    c = stack.tenant("sc-graduated")
    metric(c, "storage", "sum")
    tiers = [
        {"upTo": "10", "unitAmount": "1", "flatAmount": "5"},
        {"upTo": "20", "unitAmount": "0.5", "flatAmount": "2"},
        {"upTo": None, "unitAmount": "0.25", "flatAmount": "1"},
    ]
    plan(c, "grad", [charge("storage", "graduated", {"tiers": tiers})])
    for name in ("big", "mid", "none"):
        customer(c, name, "grad")
    send(
        c,
        [
            ev("b1", "big", "storage", "2026-10-02", 10),
            ev("b2", "big", "storage", "2026-10-03", 10),
            ev("b3", "big", "storage", "2026-10-04", "5.5"),
            ev("m1", "mid", "storage", "2026-10-05", "10.5"),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=3)

    # q = 25.5: tier 1 10 × 1 + 5, tier 2 10 × 0.5 + 2, tier 3 5.5 × 0.25 + 1
    #   = 15 + 7 + 2.375 = 24.375 → 24.38; unit 24.375 / 25.5 = 0.955882352941
    big = invoice(c, "big")
    assert lines(big) == [usage("storage", "25.5", "0.955882352941", "24.38")]
    assert totals(big) == ("24.38", Z, Z, Z, "24.38", "24.38")
    # q = 10.5 is split at the bound: 10 in tier 1 (10 + 5), 0.5 in tier 2 (0.25 + 2)
    #   = 17.25; unit 17.25 / 10.5 = 1.642857142857
    mid = invoice(c, "mid")
    assert lines(mid) == [usage("storage", "10.5", "1.642857142857", "17.25")]
    assert totals(mid) == ("17.25", Z, Z, Z, "17.25", "17.25")
    # no usage: the first tier's flat amount (5) is still due; unit 0 at q = 0
    none = invoice(c, "none")
    assert lines(none) == [usage("storage", "0", "0", "5.00")]
    assert totals(none) == ("5.00", Z, Z, Z, "5.00", "5.00")


def test_volume_at_a_tier_bound(stack):
    c = stack.tenant("sc-volume")
    metric(c, "seats", "sum")
    tiers = [
        {"upTo": "100", "unitAmount": "0.10", "flatAmount": "0"},
        {"upTo": None, "unitAmount": "0.05", "flatAmount": "10"},
    ]
    plan(c, "vol", [charge("seats", "volume", {"tiers": tiers})])
    customer(c, "on-bound", "vol")
    customer(c, "above", "vol")
    send(
        c,
        [
            ev("a1", "on-bound", "seats", "2026-10-02", 60),
            ev("a2", "on-bound", "seats", "2026-10-20", 40),
            ev("b1", "above", "seats", "2026-10-02", 101),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # q = 100 lies on the bound: tier (0, 100] prices all units, 100 × 0.10 = 10.00
    on_bound = invoice(c, "on-bound")
    assert lines(on_bound) == [usage("seats", "100", "0.1", "10.00")]
    assert totals(on_bound) == ("10.00", Z, Z, Z, "10.00", "10.00")
    # q = 101 is in (100, ∞): 101 × 0.05 + 10 = 15.05
    above = invoice(c, "above")
    assert lines(above) == [usage("seats", "101", "0.05", "15.05")]
    assert totals(above) == ("15.05", Z, Z, Z, "15.05", "15.05")


def test_package_with_free_units(stack):
    c = stack.tenant("sc-package")
    metric(c, "emails", "sum")
    props = {"amount": "5", "packageSize": "1000", "freeUnits": "100"}
    plan(c, "pack", [charge("emails", "package", props)])
    customer(c, "three", "pack")
    customer(c, "one", "pack")
    send(
        c,
        [
            ev("t1", "three", "emails", "2026-10-02", 1000),
            ev("t2", "three", "emails", "2026-10-03", 1150),
            ev("o1", "one", "emails", "2026-10-02", 1100),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # ⌈(2150 − 100) / 1000⌉ = ⌈2.05⌉ = 3 packages × 5 = 15; unit 15 / 2150 = 0.006976744186
    three = invoice(c, "three")
    assert lines(three) == [usage("emails", "2150", "0.006976744186", "15.00")]
    assert totals(three) == ("15.00", Z, Z, Z, "15.00", "15.00")
    # ⌈(1100 − 100) / 1000⌉ = 1 package = 5; unit 5 / 1100 = 0.004545454545
    one = invoice(c, "one")
    assert lines(one) == [usage("emails", "1100", "0.004545454545", "5.00")]
    assert totals(one) == ("5.00", Z, Z, Z, "5.00", "5.00")


def test_percentage_fixed_amount_free_events_min_max(stack):
    c = stack.tenant("sc-percentage")
    metric(c, "payments", "sum", field="amount")
    props = {
        "rate": "2",
        "fixedAmount": "0.30",
        "freeUnitsPerEvents": 1,
        "perTransactionMin": "0.50",
        "perTransactionMax": "5",
    }
    plan(c, "pct", [charge("payments", "percentage", props)])
    customer(c, "shop", "pct")
    # Sent out of time order: the free transaction is the first *in time* (100, Oct 2).
    send(
        c,
        [
            ev("p4", "shop", "payments", "2026-10-05", amount=1000),
            ev("p1", "shop", "payments", "2026-10-02", amount=100),
            ev("p3", "shop", "payments", "2026-10-04", amount=5),
            ev("p2", "shop", "payments", "2026-10-03", amount=10),
            ev("p5", "shop", "payments", "2026-10-06", amount=50),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "shop")
    # 100: first transaction, free → 0
    # 10:   2% × 10 + 0.30 = 0.50            → 0.50
    # 5:    2% × 5 + 0.30 = 0.40 < min 0.50  → 0.50
    # 1000: 2% × 1000 + 0.30 = 20.30 > max 5 → 5.00
    # 50:   2% × 50 + 0.30 = 1.30            → 1.30
    # amount 7.30, q = 1165, unit 7.30 / 1165 = 0.006266094420|6 → 0.006266094421
    assert lines(inv) == [usage("payments", "1165", "0.006266094421", "7.30")]
    assert totals(inv) == ("7.30", Z, Z, Z, "7.30", "7.30")


def test_graduated_percentage(stack):
    c = stack.tenant("sc-grad-pct")
    metric(c, "gmv", "sum")
    tiers = [
        {"upTo": "1000", "rate": "2", "flatAmount": "0"},
        {"upTo": None, "rate": "1", "flatAmount": "5"},
    ]
    plan(c, "gp", [charge("gmv", "graduated_percentage", {"tiers": tiers})])
    customer(c, "market", "gp")
    send(
        c,
        [
            ev("g1", "market", "gmv", "2026-10-02", 1500),
            ev("g2", "market", "gmv", "2026-10-12", 1000),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "market")
    # 2500: 2% × 1000 = 20, then 5 + 1% × 1500 = 20 → 40; unit 40 / 2500 = 0.016
    assert lines(inv) == [usage("gmv", "2500", "0.016", "40.00")]
    assert totals(inv) == ("40.00", Z, Z, Z, "40.00", "40.00")
