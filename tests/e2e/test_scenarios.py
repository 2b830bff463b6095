"""End-to-end billing scenarios, in the style of Lago's spec/scenarios.

Each scenario builds its own catalog through the API in a new tenant, sends its events
through POST /api/v1/events (Kafka → Faust → ClickHouse), waits until they are stored,
runs a bill run and asserts the exact invoice: every line's type, metric, quantity,
unit amount, amount and tax, and the totals
(subtotal, discountTotal, taxTotal, creditTotal, total, amountDue).
The arithmetic is written next to each expectation; the rules are BILLING.md's and
docs/billing-rules.md's. Nothing is shared between scenarios but the session `stack`.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

Json = dict[str, Any]


# -- helpers ---------------------------------------------------------------------------


def metric(c: Any, code: str, aggregation: str, **extra: Any) -> None:
    c.ok("POST", "/metrics", json={"code": code, "name": code, "aggregation": aggregation, **extra})


def charge(metric_code: str, model: str, properties: Json, **extra: Any) -> Json:
    return {"metric": metric_code, "model": model, "properties": properties, **extra}


def per_unit(metric_code: str, unit_amount: str, **extra: Any) -> Json:
    return charge(metric_code, "per_unit", {"unitAmount": unit_amount}, **extra)


def plan(
    c: Any,
    code: str,
    charges: list[Json],
    *,
    currency: str = "USD",
    interval: str = "monthly",
    **extra: Any,
) -> None:
    c.ok(
        "POST",
        "/plans",
        json={
            "code": code,
            "name": code,
            "currency": currency,
            "interval": interval,
            "charges": charges,
            **extra,
        },
    )


def customer(
    c: Any, external_id: str, plan_code: str, start: str = "2026-10-01", **extra: Any
) -> Json:
    """A customer (in USD unless `currency` is given) subscribed to a plan from `start`."""
    sub_extra = {k: extra.pop(k) for k in ("endDate",) if k in extra}
    c.ok(
        "POST",
        "/customers",
        json={"externalId": external_id, "name": external_id, "currency": "USD", **extra},
    )
    sub: Json = c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": external_id, "planCode": plan_code, "startDate": start, **sub_extra},
    )
    return sub


def ev(
    event_id: str, customer_id: str, metric_code: str, ts: str, value: Any = None, **props: Any
) -> Json:
    event: Json = {
        "id": event_id,
        "customerId": customer_id,
        "metric": metric_code,
        "timestamp": ts if "T" in ts else f"{ts}T12:00:00Z",
    }
    if value is not None:
        event["value"] = value
    if props:
        event["properties"] = props
    return event


def send(c: Any, events: list[Json], stored: int | None = None) -> None:
    """POST the events (all accepted) and wait until `stored` distinct ones are in ClickHouse."""
    body = c.ok("POST", "/events", json={"events": events})
    assert body == {"accepted": len(events), "rejected": []}
    c.wait_events(len({e["id"] for e in events}) if stored is None else stored)


def bill(c: Any, start: str, end: str, created: int | None = None) -> Json:
    run: Json = c.bill(start, end)
    assert run["status"] == "completed" and run["failed"] == 0, run
    if created is not None:
        assert run["invoicesCreated"] == created, run
    return run


def invoices(c: Any, customer_id: str) -> list[Json]:
    """The customer's invoices with their lines, oldest period first."""
    rows = c.ok("GET", "/invoices", params={"customerId": customer_id, "limit": 500})["data"]
    full = [c.ok("GET", f"/invoices/{r['id']}") for r in rows]
    return sorted(full, key=lambda i: i["periodStart"])


def invoice(c: Any, customer_id: str) -> Json:
    [only] = invoices(c, customer_id)
    return only


def lines(inv: Json) -> list[tuple[Any, ...]]:
    """(type, metric, quantity, unitAmount, amount, taxAmount) of every line, in order."""
    return [
        (ln["type"], ln["metric"], ln["quantity"], ln["unitAmount"], ln["amount"], ln["taxAmount"])
        for ln in inv["lines"]
    ]


def totals(inv: Json) -> tuple[str, ...]:
    """(subtotal, discountTotal, taxTotal, creditTotal, total, amountDue)."""
    return tuple(
        inv[k]
        for k in ("subtotal", "discountTotal", "taxTotal", "creditTotal", "total", "amountDue")
    )


def usage(metric_code: str, quantity: str, unit: str, amount: str, tax: str = "0.00") -> tuple:
    return ("USAGE_FEE", metric_code, quantity, unit, amount, tax)


def fee(amount: str, unit: str, kind: str = "CHARGE", tax: str = "0.00", qty: str = "1") -> tuple:
    return (kind, None, qty, unit, amount, tax)


def discount(amount: str, unit: str) -> tuple:
    return ("DISCOUNT", None, "1", unit, amount, "0.00")


Z = "0.00"


# -- pricing models --------------------------------------------------------------------


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


# -- aggregations, filters, groups -----------------------------------------------------


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


# -- quotas, rollover, commitments -----------------------------------------------------


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


# -- coupons, taxes, wallets -----------------------------------------------------------


def coupon(c: Any, code: str, customer_id: str, **spec: Any) -> None:
    c.ok("POST", "/coupons", json={"code": code, **spec})
    c.ok("POST", f"/customers/{customer_id}/coupons", json={"couponCode": code})


def test_fixed_coupon_remainder_carries_to_next_invoice(stack):
    c = stack.tenant("sc-coupon-fixed")
    plan(c, "base", [], baseFee="20")
    customer(c, "saver", "base")
    coupon(c, "GIFT30", "saver", type="fixed", amount="30", currency="USD", frequency="once")
    # one run over three months: October, November and December, in order
    bill(c, "2026-10-01", "2026-12-31", created=3)
    oct_, nov, dec = invoices(c, "saver")
    # October: 20 − 20 (the coupon never makes a line negative); 10 remains
    assert lines(oct_) == [fee("20.00", "20"), discount("-20.00", "-20")]
    assert totals(oct_) == ("20.00", "20.00", Z, Z, Z, Z)
    # November: the remaining 10
    assert lines(nov) == [fee("20.00", "20"), discount("-10.00", "-10")]
    assert totals(nov) == ("20.00", "10.00", Z, Z, "10.00", "10.00")
    # December: the coupon is used up
    assert lines(dec) == [fee("20.00", "20")]
    assert totals(dec) == ("20.00", Z, Z, Z, "20.00", "20.00")
    [applied] = c.ok("GET", "/customers/saver/coupons")["data"]
    assert (applied["status"], applied["amountRemaining"]) == ("terminated", "0")


def test_recurring_coupon_for_two_periods(stack):
    c = stack.tenant("sc-coupon-recurring")
    metric(c, "calls", "count")
    plan(c, "pro", [per_unit("calls", "0.5")], baseFee="100")
    customer(c, "loyal", "pro")
    coupon(
        c, "TENOFF", "loyal", type="percentage", percentage="10", frequency="recurring",
        frequencyDuration=2,
    )  # fmt: skip
    months = ["2026-10-15", "2026-11-15", "2026-12-15"]
    send(c, [ev(f"e{m}-{i}", "loyal", "calls", m) for m in months for i in range(3)])
    bill(c, "2026-10-01", "2026-12-31", created=3)
    oct_, nov, dec = invoices(c, "loyal")
    # Oct and Nov: 100 + 3 × 0.5 = 101.50; 10% per line: 10.00 + 0.15 = 10.15 → 91.35
    for inv in (oct_, nov):
        assert lines(inv) == [
            fee("100.00", "100"),
            usage("calls", "3", "0.5", "1.50"),
            discount("-10.15", "-10.15"),
        ]
        assert totals(inv) == ("101.50", "10.15", Z, Z, "91.35", "91.35")
    # Dec: the two periods are over
    assert lines(dec) == [fee("100.00", "100"), usage("calls", "3", "0.5", "1.50")]
    assert totals(dec) == ("101.50", Z, Z, Z, "101.50", "101.50")


def test_fixed_recurring_and_forever_coupons_apply_to_every_period(stack):
    # Regression: a fixed coupon was spent down like a `once` coupon whatever its
    # frequency, so a recurring one ended after its first invoice and a forever one gave
    # nothing more once its amount was used. As Lago's fixed_amount coupons, a recurring
    # or forever fixed coupon takes up to its amount from each invoice of its periods.
    c = stack.tenant("sc-coupon-fixed-recurring")
    plan(c, "base", [], baseFee="20")
    customer(c, "member", "base")
    c.ok("POST", "/coupons", json={"code": "TEN", "type": "fixed", "amount": "50",
                                   "currency": "USD", "frequency": "recurring",
                                   "frequencyDuration": 2})  # fmt: skip
    # applied with its own amount: 10 instead of the coupon's 50
    applied = c.ok("POST", "/customers/member/coupons", json={"couponCode": "TEN", "amount": "10"})
    assert applied["amountRemaining"] == "10"
    coupon(c, "THREE", "member", type="fixed", amount="3", currency="USD", frequency="forever")
    bill(c, "2026-10-01", "2026-12-31", created=3)
    oct_, nov, dec = invoices(c, "member")
    # Oct and Nov: 20 − 10 − 3 = 7
    for inv in (oct_, nov):
        assert lines(inv) == [
            fee("20.00", "20"),
            discount("-10.00", "-10"),
            discount("-3.00", "-3"),
        ]
        assert totals(inv) == ("20.00", "13.00", Z, Z, "7.00", "7.00")
    # Dec: TEN's two periods are over, THREE goes on: 20 − 3 = 17
    assert lines(dec) == [fee("20.00", "20"), discount("-3.00", "-3")]
    assert totals(dec) == ("20.00", "3.00", Z, Z, "17.00", "17.00")
    state = {
        a["couponCode"]: (a["status"], a["amountRemaining"], a["periodsRemaining"])
        for a in c.ok("GET", "/customers/member/coupons")["data"]
    }
    assert state == {"TEN": ("terminated", "10", 0), "THREE": ("active", "3", None)}


def test_coupons_scoped_to_metrics(stack):
    c = stack.tenant("sc-coupon-metric")
    metric(c, "calls", "count")
    metric(c, "storage", "sum")
    plan(c, "mix", [per_unit("calls", "1"), per_unit("storage", "1")], baseFee="50")
    customer(c, "dev", "mix")
    coupon(
        c, "HALFSTORE", "dev", type="percentage", percentage="50", frequency="forever",
        metricCodes=["storage"],
    )  # fmt: skip
    coupon(
        c, "CALLS100", "dev", type="fixed", amount="100", currency="USD", frequency="once",
        appliesTo={"metricCodes": ["calls"]},
    )  # fmt: skip
    events = [ev(f"c{i}", "dev", "calls", "2026-10-11") for i in range(20)]
    events.append(ev("s1", "dev", "storage", "2026-10-11", 30))
    send(c, events)
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "dev")
    # base 50 (out of both scopes); calls 20; storage 30
    # HALFSTORE: 50% of storage 30 = 15.00; CALLS100: all of calls' 20 (never negative),
    # 80 remain. subtotal 100, discount 35, total 65
    assert lines(inv) == [
        fee("50.00", "50"),
        usage("calls", "20", "1", "20.00"),
        usage("storage", "30", "1", "30.00"),
        discount("-15.00", "-15"),
        discount("-20.00", "-20"),
    ]
    assert totals(inv) == ("100.00", "35.00", Z, Z, "65.00", "65.00")
    applied = {a["couponCode"]: a for a in c.ok("GET", "/customers/dev/coupons")["data"]}
    assert applied["CALLS100"]["amountRemaining"] == "80"
    assert applied["CALLS100"]["status"] == "active"


def test_taxes_by_country_and_region_and_exempt_customer(stack):
    c = stack.tenant("sc-taxes")
    metric(c, "units", "sum")
    plan(c, "taxed", [per_unit("units", "0.111")], baseFee="100")
    for tax in (
        {"code": "us", "name": "US federal", "rate": "5", "country": "US"},
        {"code": "us_ca", "name": "California", "rate": "2.5", "country": "US", "region": "CA"},
        {"code": "fr", "name": "TVA", "rate": "20", "country": "FR"},
        {"code": "std", "name": "Default", "rate": "10"},
    ):
        c.ok("POST", "/taxes", json=tax)
    customer(c, "ca", "taxed", country="US", region="CA")
    customer(c, "ny", "taxed", country="US", region="NY")
    customer(c, "fr", "taxed", country="FR")
    customer(c, "jp", "taxed", country="JP")
    customer(c, "exempt", "taxed", country="US", region="CA", taxExempt=True)
    names = ("ca", "ny", "fr", "jp", "exempt")
    send(c, [ev(f"u-{n}", n, "units", "2026-10-12", 30) for n in names])
    bill(c, "2026-10-01", "2026-10-31", created=5)
    # every invoice: base 100 and usage 30 × 0.111 = 3.33; taxed per line, rounded per line
    expected = {
        # US + CA stack: 7.5%: 7.50 and 3.33 × 7.5% = 0.24975 → 0.25
        "ca": ("7.50", "0.25", ("103.33", Z, "7.75", Z, "111.08", "111.08")),
        # US only (no NY rate): 5%: 5.00 and 0.1665 → 0.17
        "ny": ("5.00", "0.17", ("103.33", Z, "5.17", Z, "108.50", "108.50")),
        # FR 20%: 20.00 and 0.666 → 0.67
        "fr": ("20.00", "0.67", ("103.33", Z, "20.67", Z, "124.00", "124.00")),
        # no JP rate: the default (no country) 10%: 10.00 and 0.333 → 0.33
        "jp": ("10.00", "0.33", ("103.33", Z, "10.33", Z, "113.66", "113.66")),
        # exempt: no tax
        "exempt": (Z, Z, ("103.33", Z, Z, Z, "103.33", "103.33")),
    }
    for name, (base_tax, usage_tax, sums) in expected.items():
        inv = invoice(c, name)
        assert lines(inv) == [
            fee("100.00", "100", tax=base_tax),
            usage("units", "30", "0.111", "3.33", usage_tax),
        ], name
        assert totals(inv) == sums, name


def test_wallets_by_priority_and_scope(stack):
    c = stack.tenant("sc-wallets")
    metric(c, "calls", "count")
    metric(c, "storage", "sum")
    plan(c, "mix", [per_unit("calls", "1"), per_unit("storage", "1")], baseFee="40")
    customer(c, "prepaid", "mix")

    def wallet(credits: str, priority: int, **extra: Any) -> str:
        body = {"customerId": "prepaid", "currency": "USD", "credits": credits}
        return str(c.ok("POST", "/wallets", json={**body, "priority": priority, **extra})["id"])

    # created in the reverse order of their priorities
    rest = wallet("100", 3)
    first = wallet("10", 2)
    top_up = c.ok("POST", f"/wallets/{first}/transactions", json={"credits": "20"})
    assert top_up["wallet"]["balance"] == "30.00"
    scoped = wallet("100", 1, scope={"metrics": ["storage"]})
    events = [ev(f"c{i}", "prepaid", "calls", "2026-10-13") for i in range(15)]
    events.append(ev("s1", "prepaid", "storage", "2026-10-13", 10))
    send(c, events)
    bill(c, "2026-10-01", "2026-10-31", created=1)
    inv = invoice(c, "prepaid")
    # base 40 + calls 15 + storage 10 = 65
    # priority 1, scoped to storage: pays storage 10             → balance 90
    # priority 2: pays 30 of the base fee                        → balance 0
    # priority 3: the rest, base 10 + calls 15 = 25              → balance 75
    assert lines(inv) == [
        fee("40.00", "40"),
        usage("calls", "15", "1", "15.00"),
        usage("storage", "10", "1", "10.00"),
    ]
    assert totals(inv) == ("65.00", Z, Z, "65.00", "65.00", Z)
    balances = [c.ok("GET", f"/wallets/{w}")["balance"] for w in (scoped, first, rest)]
    assert balances == ["90.00", "0.00", "75.00"]
    # the priority-2 deduction of 30 used its two top-ups, oldest first
    deduction, second, initial = c.ok("GET", f"/wallets/{first}/transactions")["data"]
    assert (deduction["type"], deduction["amount"], deduction["invoiceId"]) == (
        "deduction",
        "30.00",
        inv["id"],
    )
    assert deduction["fundedBy"] == [
        {"transactionId": initial["id"], "amount": "10.00"},
        {"transactionId": second["id"], "amount": "20.00"},
    ]


# -- subscriptions and periods ---------------------------------------------------------


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


def test_subscription_terminated_mid_month(stack):
    c = stack.tenant("sc-terminated")
    metric(c, "calls", "count")
    plan(c, "pro", [per_unit("calls", "1")], baseFee="100")
    sub = customer(c, "leaver", "pro")
    ended = c.ok("POST", f"/subscriptions/{sub['id']}/terminate", json={"at": "2026-10-10"})
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


def test_plan_change_mid_month_splits_events_by_subscription(stack):
    c = stack.tenant("sc-plan-change")
    metric(c, "calls", "count")
    plan(c, "basic", [per_unit("calls", "1")], baseFee="31")
    plan(c, "premium", [per_unit("calls", "2")], baseFee="62")
    basic = customer(c, "mover", "basic")
    c.ok("POST", f"/subscriptions/{basic['id']}/terminate", json={"at": "2026-10-15T00:00:00Z"})
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


def test_zero_and_three_decimal_currencies(stack):
    c = stack.tenant("sc-currencies")
    metric(c, "units", "sum")
    plan(c, "yen", [per_unit("units", "1.5")], currency="JPY", baseFee="1000")
    plan(c, "dinar", [per_unit("units", "0.0125")], currency="BHD", baseFee="10")
    c.ok("POST", "/taxes", json={"code": "jct", "name": "JCT", "rate": "8", "country": "JP"})
    c.ok("POST", "/taxes", json={"code": "bh", "name": "VAT", "rate": "10", "country": "BH"})
    start = "2026-10-15T12:00:00Z"
    customer(c, "tokyo", "yen", start=start, currency="JPY", country="JP")
    customer(c, "manama", "dinar", start=start, currency="BHD", country="BH")
    send(
        c,
        [
            ev("j1", "tokyo", "units", "2026-10-20", 7),
            ev("b1", "manama", "units", "2026-10-20", 7),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # JPY, 0 decimals, 17 of 31 days: 1000 × 17/31 = 548.38… → 548, tax 8% 43.84 → 44
    # usage 7 × 1.5 = 10.5 → 11 (half up), tax 0.88 → 1; subtotal 559, tax 45, total 604
    tokyo = invoice(c, "tokyo")
    assert lines(tokyo) == [
        fee("548", "548.387096774194", kind="PRORATION", tax="44"),
        usage("units", "7", "1.5", "11", "1"),
    ]
    assert totals(tokyo) == ("559", "0", "45", "0", "604", "604")
    # BHD, 3 decimals: 10 × 17/31 = 5.48387… → 5.484, tax 10% 0.5484 → 0.548
    # usage 7 × 0.0125 = 0.0875 → 0.088, tax 0.0088 → 0.009
    # subtotal 5.572, tax 0.557, total 6.129
    manama = invoice(c, "manama")
    assert lines(manama) == [
        fee("5.484", "5.483870967742", kind="PRORATION", tax="0.548"),
        usage("units", "7", "0.0125", "0.088", "0.009"),
    ]
    assert totals(manama) == ("5.572", "0.000", "0.557", "0.000", "6.129", "6.129")


# -- bill runs and the invoice lifecycle -----------------------------------------------


def test_bill_run_idempotent_across_plans(stack):
    c = stack.tenant("sc-idempotent")
    plan(c, "month", [], baseFee="10")
    plan(c, "week", [], baseFee="7", interval="weekly")
    customer(c, "m", "month")
    customer(c, "w", "week")
    # October: m's month + w's 4 weeks ending in October ([Sep 28, Oct 5) prorated)
    bill(c, "2026-10-01", "2026-10-31", created=5)
    again = bill(c, "2026-10-01", "2026-10-31", created=0)
    assert again["total"] == 0
    customer(c, "late", "month", start="2026-10-16")
    # an overlapping window: only what was never invoiced. late's October (16/31 days),
    # November for m and late, and w's 5 weeks from Oct 26 to Nov 30: 1 + 2 + 5 = 8
    bill(c, "2026-10-01", "2026-11-30", created=8)
    bill(c, "2026-10-01", "2026-11-30", created=0)
    m_invoices = [(i["periodStart"][:10], i["total"]) for i in invoices(c, "m")]
    assert m_invoices == [("2026-10-01", "10.00"), ("2026-11-01", "10.00")]
    # 10 × 16/31 = 5.16
    late_invoices = [(i["periodStart"][:10], i["total"]) for i in invoices(c, "late")]
    assert late_invoices == [("2026-10-01", "5.16"), ("2026-11-01", "10.00")]
    w_invoices = [(i["periodStart"][:10], i["total"]) for i in invoices(c, "w")]
    # the first week has 4 of its 7 days from Oct 1: 4.00
    assert w_invoices == [
        ("2026-09-28", "4.00"),
        *[(f"2026-{d}", "7.00") for d in ("10-05", "10-12", "10-19", "10-26")],
        *[(f"2026-11-{d:02d}", "7.00") for d in (2, 9, 16, 23)],
    ]


def test_invoice_lifecycle(stack):
    c = stack.tenant("sc-lifecycle")
    plan(c, "base", [], baseFee="10")
    for name in ("a", "b", "c", "d"):
        customer(c, name, "base")
    bill(c, "2026-10-01", "2026-10-31", created=4)
    inv = {name: invoice(c, name)["id"] for name in ("a", "b", "c", "d")}
    assert {invoice(c, n)["status"] for n in inv} == {"DRAFT"}
    assert {invoice(c, n)["number"] for n in inv} == {None}

    def post(url: str, **body: Any) -> Any:
        return c.post(url, json=body or None)

    def conflict(response: Any) -> None:
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "illegal_transition"

    # a DRAFT can be neither paid nor voided
    conflict(post(f"/invoices/{inv['d']}/payments", amount="1"))
    conflict(post(f"/invoices/{inv['d']}/void"))
    # numbers follow the order of finalization, without gaps
    numbers = [c.ok("POST", f"/invoices/{inv[n]}/finalize")["number"] for n in ("c", "a", "b")]
    assert numbers == ["INV-000001", "INV-000002", "INV-000003"]
    opened = c.ok("GET", f"/invoices/{inv['a']}")
    assert opened["status"] == "OPEN" and opened["issuedAt"] and opened["dueAt"]
    conflict(post(f"/invoices/{inv['a']}/finalize"))
    conflict(post(f"/invoices/{inv['a']}/refresh"))
    # partial payment, then the rest: OPEN → PAID
    part = c.ok("POST", f"/invoices/{inv['a']}/payments", json={"amount": "4"})
    assert (part["status"], part["amountPaid"], part["amountDue"]) == ("OPEN", "4.00", "6.00")
    assert post(f"/invoices/{inv['a']}/payments", amount="6.01").status_code == 422
    paid = c.ok("POST", f"/invoices/{inv['a']}/payments", json={"amount": "6.00"})
    assert (paid["status"], paid["amountPaid"], paid["amountDue"]) == ("PAID", "10.00", Z)
    conflict(post(f"/invoices/{inv['a']}/void"))
    conflict(post(f"/invoices/{inv['a']}/payments", amount="1"))
    # OPEN → VOID, then nothing
    assert c.ok("POST", f"/invoices/{inv['b']}/void")["status"] == "VOID"
    conflict(post(f"/invoices/{inv['b']}/payments", amount="1"))
    conflict(post(f"/invoices/{inv['b']}/finalize"))
    # finalize-all numbers the last DRAFT next
    assert c.ok("POST", "/invoices/finalize-all")["invoiceIds"] == [inv["d"]]
    assert c.ok("GET", f"/invoices/{inv['d']}")["number"] == "INV-000004"
    statuses = {n: c.ok("GET", f"/invoices/{i}")["status"] for n, i in inv.items()}
    assert statuses == {"a": "PAID", "b": "VOID", "c": "OPEN", "d": "OPEN"}


def test_refresh_draft_with_late_events_recomputes_credits(stack):
    c = stack.tenant("sc-refresh")
    metric(c, "gb", "sum")
    plan(c, "meter", [per_unit("gb", "1")])
    customer(c, "late", "meter")
    coupon(c, "THREE", "late", type="fixed", amount="3", currency="USD", frequency="once")
    wallet = c.ok("POST", "/wallets", json={"customerId": "late", "credits": "10"})["id"]
    send(c, [ev("g1", "late", "gb", "2026-10-03", 4)])
    bill(c, "2026-10-01", "2026-10-31", created=1)
    draft = invoice(c, "late")
    # 4 × 1 = 4; coupon 3 → total 1; the wallet pays 1 → due 0
    assert lines(draft) == [usage("gb", "4", "1", "4.00"), discount("-3.00", "-3")]
    assert totals(draft) == ("4.00", "3.00", Z, "1.00", "1.00", Z)
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == "9.00"
    # events of October arrive after the bill run, while the invoice is still a draft
    send(c, [ev("g2", "late", "gb", "2026-10-30", 15)], stored=2)
    fresh = c.ok("POST", f"/invoices/{draft['id']}/refresh")
    # coupon and wallet are given back, then applied again: 19 − 3 = 16;
    # the wallet's 10 → credit 10, due 6
    assert lines(fresh) == [usage("gb", "19", "1", "19.00"), discount("-3.00", "-3")]
    assert totals(fresh) == ("19.00", "3.00", Z, "10.00", "16.00", "6.00")
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == Z
    txs = c.ok("GET", f"/wallets/{wallet}/transactions")["data"]
    assert [(t["type"], t["amount"]) for t in txs] == [("deduction", "10.00"), ("top_up", "10.00")]
    [applied] = c.ok("GET", "/customers/late/coupons")["data"]
    assert (applied["status"], applied["amountRemaining"]) == ("terminated", "0")
    # once finalized and paid, the rest of the due amount closes it
    assert c.ok("POST", f"/invoices/{draft['id']}/finalize")["amountDue"] == "6.00"
    paid = c.ok("POST", f"/invoices/{draft['id']}/payments", json={"amount": "6"})
    assert paid["status"] == "PAID"


def test_tax_override_on_a_draft_paid_by_a_wallet(stack):
    # Regression: lowering a draft's tax below what a wallet had paid clipped the
    # invoice's creditTotal but kept the wallet debited, so the credits were lost.
    c = stack.tenant("sc-tax-override-wallet")
    plan(c, "base", [], baseFee="20")
    c.ok("POST", "/taxes", json={"code": "vat", "name": "TVA", "rate": "20", "country": "FR"})
    customer(c, "paris", "base", country="FR")
    wallet = c.ok("POST", "/wallets", json={"customerId": "paris", "credits": "100"})["id"]
    bill(c, "2026-10-01", "2026-10-31", created=1)
    draft = invoice(c, "paris")
    # 20 + 20% tax 4.00 = 24.00, all paid by the wallet
    assert lines(draft) == [fee("20.00", "20", tax="4.00")]
    assert totals(draft) == ("20.00", Z, "4.00", "24.00", "24.00", Z)
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == "76.00"
    # a manual override to no tax: a TAX_ADJUSTMENT of −4.00; the total is 20.00 and the
    # wallet gets back the 4.00 it no longer pays
    over = c.ok("POST", f"/invoices/{draft['id']}/tax-override", json={"taxTotal": "0"})
    assert lines(over) == [
        fee("20.00", "20", tax="4.00"),
        ("TAX_ADJUSTMENT", None, "1", "0", Z, "-4.00"),
    ]
    assert totals(over) == ("20.00", Z, Z, "20.00", "20.00", Z)
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == "80.00"
    [deduction, top_up] = c.ok("GET", f"/wallets/{wallet}/transactions")["data"]
    assert (deduction["amount"], deduction["fundedBy"]) == (
        "20.00",
        [{"transactionId": top_up["id"], "amount": "20.00"}],
    )
    assert top_up["remaining"] == "80.00"
    # finalized, it is PAID: the wallet covered all of it
    assert c.ok("POST", f"/invoices/{draft['id']}/finalize")["status"] == "PAID"
