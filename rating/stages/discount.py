"""Stage 7, Discount: coupons, percentage or fixed, optionally scoped to plans or metrics.

A coupon never makes a line negative; a fixed coupon's unused remainder is reported
in `coupon_uses` so the ledger can carry it to the next invoice.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from rating.context import AppliedCoupon, CouponUse, RatingState
from rating.model import ZERO, InvoiceLine, LineType
from rating.money import round_money

DISCOUNTABLE = {LineType.CHARGE, LineType.USAGE_FEE, LineType.SETUP_FEE, LineType.PRORATION}


def _in_scope(coupon: AppliedCoupon, line: InvoiceLine, plan_code: str) -> bool:
    if coupon.plan_codes and plan_code not in coupon.plan_codes:
        return False
    return not (coupon.metric_codes and line.metric not in coupon.metric_codes)


def discount(state: RatingState) -> RatingState:
    ctx = state.context
    currency = ctx.currency
    plan_code = ctx.subscription.plan.code
    lines = list(state.lines)
    uses: list[CouponUse] = []
    new_lines: list[InvoiceLine] = []
    for coupon in ctx.coupons:
        total = ZERO
        budget = coupon.amount_remaining
        for i, line in enumerate(lines):
            net = line.amount - line.discount_amount
            if line.type not in DISCOUNTABLE or net <= 0 or not _in_scope(coupon, line, plan_code):
                continue
            if coupon.kind == "percentage":
                cut = min(round_money(net * coupon.percentage / Decimal(100), currency), net)
            else:
                cut = min(net, budget)
                budget -= cut
            if cut > 0:
                lines[i] = replace(line, discount_amount=line.discount_amount + cut)
                total += cut
        if total > 0:
            uses.append(CouponUse(coupon.id, total))
            new_lines.append(
                InvoiceLine(
                    type=LineType.DISCOUNT,
                    description=f"Coupon {coupon.code}",
                    amount=-total,
                    unit_amount=-total,
                )
            )
    return state.evolve(lines=tuple(lines + new_lines), coupon_uses=tuple(uses))
