"""Stage 1, Quota Check: usage above a charge's hardCap is not billed."""

from __future__ import annotations

from rating.context import ChargeQuantity, RatingState
from rating.model import ZERO


def quota_check(state: RatingState) -> RatingState:
    """Clamp each metered quantity to its charge's hard cap (per group)."""
    charges = {c.id: c for c in state.context.subscription.plan.charges}
    quantities = []
    for usage in state.context.usage:
        charge = charges.get(usage.charge_id)
        if charge is None:
            continue
        quantity = usage.quantity
        capped = ZERO
        if charge.hard_cap is not None and quantity > charge.hard_cap:
            capped = quantity - charge.hard_cap
            quantity = charge.hard_cap
        quantities.append(
            ChargeQuantity(
                charge=charge,
                group=usage.group,
                quantity=quantity,
                billable=quantity,
                event_count=usage.event_count,
                event_amounts=usage.event_amounts,
                capped_quantity=capped,
            )
        )
    return state.evolve(quantities=tuple(quantities))
