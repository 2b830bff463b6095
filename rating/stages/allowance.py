"""Stage 4, Allowance: subtract the included (and rolled-over) quantity, never below zero."""

from __future__ import annotations

from dataclasses import replace

from rating.context import ChargeQuantity, RatingState, RolloverBucket
from rating.money import ZERO
from rating.stages.rollover import carry_forward


def allowance(state: RatingState) -> RatingState:
    """Consume each charge's allowance across its groups, in group order.

    The allowance is shared by the groups of a charge: the first group (in the order
    of the lines) uses it first. What a charge with `rollover` leaves unused becomes the
    buckets of `rollover_out`.
    """
    ctx = state.context
    remaining = dict(state.allowances)
    result: list[ChargeQuantity] = []
    for quantity in state.quantities:
        # Groups share the charge's allowance: the first group in line order uses it first.
        left = remaining.get(quantity.charge.id, ZERO)
        used = min(left, max(quantity.quantity, ZERO))
        remaining[quantity.charge.id] = left - used
        billable = max(quantity.quantity - used, ZERO)
        if billable == quantity.billable and used == quantity.allowance_used:
            result.append(quantity)  # nothing included: the quantity as it came (the usual case)
        else:
            result.append(replace(quantity, billable=billable, allowance_used=used))
    rollover_out: dict[str, tuple[RolloverBucket, ...]] = {}
    for charge in ctx.subscription.plan.charges:
        if charge.rollover is None:
            continue
        rollover_out[charge.id] = carry_forward(
            charge.rollover,
            ctx.subscription.plan.interval,
            ctx.period,
            state.rollover_buckets.get(charge.id, ()),
            charge.included_quantity,
            remaining.get(charge.id, ZERO),
            ctx.subscription.customer.zone,
        )
    return state.evolve(quantities=tuple(result), rollover_out=rollover_out)
