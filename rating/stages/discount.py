"""Stage 7, Discount: the progressive billing credit, then coupons, percentage or fixed,
optionally scoped to plans or metrics.

What the period's progressive-billing invoices billed comes off first
(`rating.progressive.credit`), as Lago orders its credits: coupons discount what is
left to bill.

Coupons apply in the order the ledger gives them, each to what the previous ones left
(the net amount: amount − discount_amount, which already excludes the maximum-spend
excess). A coupon discounts the CHARGE, USAGE_FEE, SETUP_FEE and PRORATION lines in its
scope, in line order:
- percentage: each line loses its percentage of its net, rounded per line (ROUND_HALF_UP);
- fixed: the remaining amount is spent on the lines in order, never beyond a line's net,
  so no line goes negative; what is left is reported in `CouponUse.remaining`.
Each coupon that discounts something adds one DISCOUNT line of minus its total, and its
share on every line is added to that line's `discount_amount`. Which coupons apply
(once / recurring N periods / forever) is the ledger's decision; every coupon passed in
gets a CouponUse, even when it discounted nothing.
"""

from __future__ import annotations

from dataclasses import replace

from rating.context import AppliedCoupon, CouponUse, RatingState
from rating.model import InvoiceLine, LineType
from rating.money import ZERO, percent, round_down, round_money
from rating.progressive import credit

DISCOUNTABLE = {LineType.CHARGE, LineType.USAGE_FEE, LineType.SETUP_FEE, LineType.PRORATION}


class InvalidCoupon(ValueError):
    """A coupon the pipeline cannot apply (a ledger bug, not a customer error)."""


def in_scope(coupon: AppliedCoupon, line: InvoiceLine, plan_code: str) -> bool:
    """Whether a coupon discounts a line: plan scope first, then metric scope (usage only)."""
    if line.type not in DISCOUNTABLE:
        return False
    if coupon.plan_codes and plan_code not in coupon.plan_codes:
        return False
    return not (coupon.metric_codes and line.metric not in coupon.metric_codes)


def discount(state: RatingState) -> RatingState:
    state = credit(state)
    ctx = state.context
    currency = ctx.currency
    plan_code = ctx.subscription.plan.code
    lines = list(state.lines)
    uses: list[CouponUse] = []
    discount_lines: list[InvoiceLine] = []
    for coupon in ctx.coupons:
        if coupon.kind not in ("percentage", "fixed"):
            raise InvalidCoupon(f"coupon {coupon.code!r}: unknown kind {coupon.kind!r}")
        if coupon.percentage < 0 or coupon.amount_remaining < 0:
            raise InvalidCoupon(f"coupon {coupon.code!r}: negative percentage or amount")
        total = ZERO
        # Lines are whole minor units, so only whole minor units of the coupon are spent.
        budget = round_down(coupon.amount_remaining, currency)
        for i, line in enumerate(lines):
            net = line.amount - line.discount_amount
            if net <= 0 or not in_scope(coupon, line, plan_code):
                continue
            if coupon.kind == "percentage":
                cut = min(round_money(percent(net, coupon.percentage), currency), net)
            else:
                # Spent in line order (not pro rata), never beyond the line's net.
                cut = min(net, budget)
                budget -= cut
            if cut > 0:
                lines[i] = replace(line, discount_amount=line.discount_amount + cut)
                total += cut
        remaining = coupon.amount_remaining - total if coupon.kind == "fixed" else ZERO
        uses.append(CouponUse(coupon.id, total, remaining=remaining))
        if total > 0:
            discount_lines.append(
                InvoiceLine(
                    type=LineType.DISCOUNT,
                    description=f"Coupon {coupon.code}",
                    amount=-total,
                    unit_amount=-total,
                )
            )
    return state.evolve(lines=tuple(lines + discount_lines), coupon_uses=tuple(uses))
