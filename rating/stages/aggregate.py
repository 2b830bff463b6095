"""Stage 3, Aggregate: one quantity per charge and group, zero for charges without usage.

The exact aggregation itself runs in ClickHouse over deduplicated raw events
(streams.usage_store); this stage puts its results in plan charge order, groups sorted
by their (property, value) pairs, so that the invoice lines have a stable order and
charges with no usage still produce their line (a graduated first tier's flat fee is
due at 0).
"""

from __future__ import annotations

from rating.context import ChargeQuantity, RatingState
from rating.money import ZERO


def aggregate(state: RatingState) -> RatingState:
    """The quantities in plan order, groups sorted; a zero ungrouped row for an unused charge."""
    by_charge: dict[str, list[ChargeQuantity]] = {}
    for quantity in state.quantities:
        by_charge.setdefault(quantity.charge.id, []).append(quantity)
    ordered: list[ChargeQuantity] = []
    for charge in state.context.subscription.plan.charges:
        rows = sorted(by_charge.get(charge.id, []), key=lambda q: q.group)
        if not rows:
            rows = [ChargeQuantity(charge=charge, group=(), quantity=ZERO, billable=ZERO)]
        ordered.extend(rows)
    return state.evolve(quantities=tuple(ordered))
