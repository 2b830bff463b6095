"""Stage 6, Commit: minimum commitment true-up and maximum spend cap of the usage fees.

Both compare the period's USAGE_FEE lines (before discounts and taxes, as Lago does)
with the plan's amounts, prorated by days used / days in period for a partial period
(Lago prorates commitments the same way) and rounded once: the minimum ROUND_HALF_UP,
the maximum down (a ceiling must not be exceeded by rounding).

- Below `minimumCommitment`: a CHARGE line "Minimum commitment true-up" for the gap.
- Above `maximumSpend`: a DISCOUNT line "Maximum spend adjustment" of minus the excess.
  The excess is also recorded in `discount_amount` of the usage lines it removes, the
  last lines first (a line keeps what fits under the cap in line order), so coupons,
  taxes and wallets downstream all see the capped amounts.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from rating.context import BillingContext, RatingState
from rating.model import InvoiceLine, LineType, Period
from rating.money import ZERO, Rounding, prorate
from rating.periods import proration_days


def committed_amount(
    ctx: BillingContext, amount: Decimal, active: Period, *, ceiling: bool = False
) -> Decimal:
    """A plan amount for the active part of the period: prorated by days, rounded once.

    A minimum rounds ROUND_HALF_UP like any line; a ceiling (maximum spend) rounds down,
    so the capped usage never exceeds the exact maximum (0.50 JPY allows 0 yen, not 1).
    """
    used, total = proration_days(ctx.period, active, ctx.subscription.customer.zone)
    rounding: Rounding = ROUND_DOWN if ceiling else ROUND_HALF_UP
    return prorate(amount, used, total, ctx.currency, rounding=rounding)


def _this_period_usage(line: InvoiceLine) -> bool:
    return line.type == LineType.USAGE_FEE and line.prior_invoice_id is None


def commit(state: RatingState) -> RatingState:
    ctx = state.context
    plan = ctx.subscription.plan
    active = ctx.active
    if active is None:
        return state
    lines = list(state.lines)
    # Commitments are about this period: late lines of earlier periods do not count.
    usage_total = sum((ln.amount for ln in lines if _this_period_usage(ln)), ZERO)
    if plan.minimum_commitment is not None:
        minimum = committed_amount(ctx, plan.minimum_commitment, active)
        if usage_total < minimum:
            gap = minimum - usage_total
            lines.append(
                InvoiceLine(
                    type=LineType.CHARGE,
                    description="Minimum commitment true-up",
                    amount=gap,
                    unit_amount=gap,
                    period_start=active.start,
                    period_end=active.end,
                )
            )
    if plan.maximum_spend is not None:
        maximum = committed_amount(ctx, plan.maximum_spend, active, ceiling=True)
        if usage_total > maximum:
            room = maximum
            for i, line in enumerate(lines):
                if not _this_period_usage(line):
                    continue
                kept = min(max(room, ZERO), line.amount)
                room -= kept
                if line.amount > kept:
                    cut = line.amount - kept
                    lines[i] = replace(line, discount_amount=line.discount_amount + cut)
            excess = usage_total - maximum
            lines.append(
                InvoiceLine(
                    type=LineType.DISCOUNT,
                    description="Maximum spend adjustment",
                    amount=-excess,
                    unit_amount=-excess,
                    period_start=active.start,
                    period_end=active.end,
                )
            )
    return state.evolve(lines=tuple(lines))
