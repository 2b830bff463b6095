"""Stage 4, Allowance: subtract the included (and rolled-over) quantity, never below zero."""

from __future__ import annotations

from dataclasses import replace

from rating.context import RatingState
from rating.model import ZERO


def allowance(state: RatingState) -> RatingState:
    """Consume each charge's allowance across its groups in group order.

    Unused allowance of a charge with `rollover` is what the next period may carry,
    limited by the rule's cap.
    """
    remaining = dict(state.allowances)
    result = []
    for quantity in state.quantities:
        left = remaining.get(quantity.charge.id, ZERO)
        used = min(left, quantity.quantity)
        remaining[quantity.charge.id] = left - used
        result.append(replace(quantity, billable=max(quantity.quantity - used, ZERO)))
    rollover_out = {}
    for charge in state.context.subscription.plan.charges:
        if charge.rollover is None:
            continue
        # Only this period's included quantity rolls on; what came in from earlier
        # periods is consumed first (it is the oldest) and its expiry is tracked by
        # the ledger, which passes in only unexpired carry.
        carried_in = state.context.rollover_in.get(charge.id, ZERO)
        unused_included = min(remaining.get(charge.id, ZERO), charge.included_quantity)
        unused_carry = max(remaining.get(charge.id, ZERO) - unused_included, ZERO)
        carry = unused_included + min(unused_carry, carried_in)
        if charge.rollover.cap is not None:
            carry = min(carry, charge.rollover.cap)
        rollover_out[charge.id] = carry
    return state.evolve(quantities=tuple(result), rollover_out=rollover_out)
