"""Stage 7, Discount: percentage and fixed coupons, scoped, in order, never below zero."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rating.context import AppliedCoupon, BillingContext, CouponUse, RatingState
from rating.model import (
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    Plan,
    Subscription,
)
from rating.stages.discount import InvalidCoupon, discount
from tests.helpers.dates import OCTOBER

BASE = InvoiceLine(LineType.CHARGE, "Pro base fee", D("49.00"))
CALLS = InvoiceLine(LineType.USAGE_FEE, "API calls", D("12.35"), metric="api_calls")
STORAGE = InvoiceLine(LineType.USAGE_FEE, "Storage", D("8.00"), metric="storage")
SETUP = InvoiceLine(LineType.SETUP_FEE, "Onboarding", D("99.00"))
PRORATED = InvoiceLine(LineType.PRORATION, "Support (prorated)", D("10.97"))
FREE = InvoiceLine(LineType.USAGE_FEE, "Free", D("0.00"), metric="free")


def percent(value: str, coupon_id: str = "pc", **scope: tuple[str, ...]) -> AppliedCoupon:
    return AppliedCoupon(coupon_id, coupon_id.upper(), "percentage", percentage=D(value), **scope)


def fixed(value: str, coupon_id: str = "fx", **scope: tuple[str, ...]) -> AppliedCoupon:
    return AppliedCoupon(coupon_id, coupon_id.upper(), "fixed", amount_remaining=D(value), **scope)


def run(lines: list[InvoiceLine], coupons: list[AppliedCoupon]) -> RatingState:
    plan = Plan("pro", "Pro", "USD", Interval.MONTHLY)
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), plan, OCTOBER.start)
    ctx = BillingContext(subscription, OCTOBER, coupons=tuple(coupons))
    return discount(RatingState(context=ctx, lines=tuple(lines)))


@pytest.mark.parametrize(
    ("lines", "coupons", "cuts", "discount_lines", "uses"),
    [
        # 10 % of 49.00 = 4.90; of 12.35 = 1.235 → 1.24 (half up, per line)
        pytest.param(
            [BASE, CALLS],
            [percent("10")],
            ["4.90", "1.24"],
            [("Coupon PC", "-6.14")],
            [("pc", "6.14", "0")],
            id="percentage-rounded-per-line",
        ),
        pytest.param(
            [BASE, CALLS],
            [percent("100")],
            ["49.00", "12.35"],
            [("Coupon PC", "-61.35")],
            [("pc", "61.35", "0")],
            id="percentage-100",
        ),
        pytest.param(
            [SETUP, PRORATED],
            [percent("50")],
            ["49.50", "5.49"],
            [("Coupon PC", "-54.99")],
            [("pc", "54.99", "0")],
            id="setup-and-proration-lines",
        ),
        pytest.param(
            [BASE, CALLS],
            [fixed("20")],
            ["20.00", "0"],
            [("Coupon FX", "-20.00")],
            [("fx", "20.00", "0.00")],
            id="fixed-in-line-order",
        ),
        pytest.param(
            [BASE, CALLS],
            [fixed("55")],
            ["49.00", "6.00"],
            [("Coupon FX", "-55.00")],
            [("fx", "55.00", "0.00")],
            id="fixed-spills-to-next-line",
        ),
        pytest.param(
            [BASE, CALLS],
            [fixed("100")],
            ["49.00", "12.35"],
            [("Coupon FX", "-61.35")],
            [("fx", "61.35", "38.65")],
            id="fixed-never-negative-remainder-carries",
        ),
        pytest.param(
            [FREE], [fixed("10")], ["0"], [], [("fx", "0", "10")], id="nothing-to-discount"
        ),
        pytest.param(
            [BASE, CALLS, STORAGE],
            [percent("50", metric_codes=("api_calls",))],
            ["0", "6.18", "0"],
            [("Coupon PC", "-6.18")],
            [("pc", "6.18", "0")],
            id="metric-scope",
        ),
        pytest.param(
            [BASE, CALLS, STORAGE],
            [fixed("15", metric_codes=("api_calls", "storage"))],
            ["0", "12.35", "2.65"],
            [("Coupon FX", "-15.00")],
            [("fx", "15.00", "0.00")],
            id="fixed-metric-scope",
        ),
        pytest.param(
            [BASE, CALLS],
            [percent("50", plan_codes=("pro", "team"))],
            ["24.50", "6.18"],
            [("Coupon PC", "-30.68")],
            [("pc", "30.68", "0")],
            id="plan-scope-match",
        ),
        pytest.param(
            [BASE, CALLS],
            [fixed("5", plan_codes=("team",))],
            ["0", "0"],
            [],
            [("fx", "0", "5")],
            id="plan-scope-miss",
        ),
        # 10 % then 5 fixed: 4.90 + 1.24, then 5 on what is left of the base fee.
        pytest.param(
            [BASE, CALLS],
            [percent("10"), fixed("5")],
            ["9.90", "1.24"],
            [("Coupon PC", "-6.14"), ("Coupon FX", "-5.00")],
            [("pc", "6.14", "0"), ("fx", "5.00", "0.00")],
            id="percentage-then-fixed",
        ),
        # 5 fixed then 10 %: 44.00 → 4.40, 12.35 → 1.24.
        pytest.param(
            [BASE, CALLS],
            [fixed("5"), percent("10")],
            ["9.40", "1.24"],
            [("Coupon FX", "-5.00"), ("Coupon PC", "-5.64")],
            [("fx", "5.00", "0.00"), ("pc", "5.64", "0")],
            id="fixed-then-percentage",
        ),
        pytest.param(
            [BASE],
            [fixed("30", "a"), fixed("30", "b")],
            ["49.00"],
            [("Coupon A", "-30.00"), ("Coupon B", "-19.00")],
            [("a", "30.00", "0.00"), ("b", "19.00", "11.00")],
            id="second-fixed-gets-the-rest",
        ),
        pytest.param(
            [BASE],
            [fixed("10.005")],
            ["10.00"],
            [("Coupon FX", "-10.00")],
            [("fx", "10.00", "0.005")],
            id="sub-cent-remainder-kept",
        ),
    ],
)
def test_coupons(
    lines: list[InvoiceLine],
    coupons: list[AppliedCoupon],
    cuts: list[str],
    discount_lines: list[tuple[str, str]],
    uses: list[tuple[str, str, str]],
) -> None:
    state = run(lines, coupons)
    assert [ln.discount_amount for ln in state.lines[: len(lines)]] == [D(c) for c in cuts]
    added = state.lines[len(lines) :]
    assert [(ln.type, ln.description, ln.amount) for ln in added] == [
        (LineType.DISCOUNT, d, D(a)) for d, a in discount_lines
    ]
    assert state.coupon_uses == tuple(CouponUse(i, D(a), D(r)) for i, a, r in uses)
    assert all(ln.amount - ln.discount_amount >= 0 for ln in state.lines[: len(lines)])


def test_coupons_discount_what_maximum_spend_left() -> None:
    capped = InvoiceLine(
        LineType.USAGE_FEE, "API calls", D("100.00"), metric="api_calls", discount_amount=D(40)
    )
    adjustment = InvoiceLine(LineType.DISCOUNT, "Maximum spend adjustment", D("-40.00"))
    state = run([capped, adjustment], [percent("10"), fixed("100", "fx")])
    assert state.lines[0].discount_amount == D("100.00")  # 40 + 6.00 + 54.00
    assert state.lines[1] == adjustment  # a DISCOUNT line is never discounted
    assert [u.amount for u in state.coupon_uses] == [D("6.00"), D("54.00")]


def test_unknown_coupon_kind_is_refused() -> None:
    with pytest.raises(InvalidCoupon, match="unknown kind"):
        run([BASE], [AppliedCoupon("x", "X", "bogus")])
