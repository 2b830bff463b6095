"""Stage 1, Quota Check: usage above a charge's hardCap is not billed.

The cap limits the charge's quantity, shared by its groups: the groups fill it in
group order (the order of the invoice lines), and what lies above it is recorded as
`capped_quantity` on the groups it overflows (the stream already blocked or flagged it).

The metered quantities enter the pipeline here, so this is where each metric's rounding
(rating/rounding.py) applies: per charge and group, before the cap, so the cap limits
the quantity the metric reports and every later stage sees that one.
"""

from __future__ import annotations

from decimal import Decimal

from rating.context import ChargeQuantity, RatingState
from rating.model import Group
from rating.money import ZERO
from rating.rounding import rounded_usage


def quota_check(state: RatingState) -> RatingState:
    """One ChargeQuantity per metered quantity of a plan charge, clamped to the hard cap."""
    charges = {c.id: c for c in state.context.subscription.plan.charges}
    seen: set[tuple[str, Group]] = set()
    for usage in state.context.usage:
        key = (usage.charge_id, usage.group)
        if key in seen:
            raise ValueError(f"usage of charge {usage.charge_id!r} given twice for group {key[1]}")
        seen.add(key)
    # Usage of a charge the plan does not have is not billed on this subscription.
    usages = sorted(
        (u for u in rounded_usage(charges.values(), state.context.usage) if u.charge_id in charges),
        key=lambda u: (u.charge_id, u.group),
    )
    # What is left of each charge's cap; groups fill it in group order.
    room: dict[str, Decimal] = {}
    quantities: list[ChargeQuantity] = []
    for usage in usages:
        charge = charges[usage.charge_id]
        quantity, capped = usage.quantity, ZERO
        if charge.hard_cap is not None:
            left = room.get(charge.id, charge.hard_cap)
            if quantity > left:
                quantity, capped = max(left, ZERO), quantity - max(left, ZERO)
            room[charge.id] = left - quantity
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
