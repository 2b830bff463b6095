"""Coupons (once, recurring, forever, fixed, percentage, scoped) and prepaid wallets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    coupon,
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
