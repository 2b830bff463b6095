"""Stage 2, Rollover: the included quantity of a period plus what earlier periods left."""

from __future__ import annotations

from rating.context import RatingState
from rating.model import ZERO


def rollover(state: RatingState) -> RatingState:
    """Each charge's allowance: includedQuantity + carried-over unused quantity."""
    allowances = {}
    for charge in state.context.subscription.plan.charges:
        carried = state.context.rollover_in.get(charge.id, ZERO) if charge.rollover else ZERO
        allowances[charge.id] = charge.included_quantity + carried
    return state.evolve(allowances=allowances)
