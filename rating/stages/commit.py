"""Stage 6, Commit: minimum commitment true-up and maximum spend cap of the usage fees."""

from __future__ import annotations

from rating.context import RatingState
from rating.model import ZERO, InvoiceLine, LineType
from rating.money import round_money
from rating.periods import proration_factor


def commit(state: RatingState) -> RatingState:
    ctx = state.context
    plan = ctx.subscription.plan
    active = ctx.period.overlap(ctx.subscription.start, ctx.subscription.end)
    if active is None:
        return state
    usage_total = sum((ln.amount for ln in state.lines if ln.type == LineType.USAGE_FEE), ZERO)
    factor = proration_factor(ctx.period, active)
    lines = list(state.lines)
    if plan.minimum_commitment is not None:
        # A partial period commits to its prorated share, as Lago does.
        minimum = round_money(plan.minimum_commitment * factor, ctx.currency)
        if usage_total < minimum:
            lines.append(
                InvoiceLine(
                    type=LineType.CHARGE,
                    description="Minimum commitment true-up",
                    amount=minimum - usage_total,
                    unit_amount=minimum - usage_total,
                    period_start=active.start,
                    period_end=active.end,
                )
            )
    if plan.maximum_spend is not None:
        maximum = round_money(plan.maximum_spend * factor, ctx.currency)
        if usage_total > maximum:
            lines.append(
                InvoiceLine(
                    type=LineType.CHARGE,
                    description="Maximum spend adjustment",
                    amount=maximum - usage_total,
                    unit_amount=maximum - usage_total,
                    period_start=active.start,
                    period_end=active.end,
                )
            )
    return state.evolve(lines=tuple(lines))
