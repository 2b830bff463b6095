"""Rounding of a metric's quantity (Lago's `rounding_function` and `rounding_precision`).

A billable metric may round the quantity it measured over a period before any charge
prices it: `round` (half up: ties away from zero, as `rating.money` rounds amounts),
`ceil` (toward +∞) or `floor` (toward −∞), to `precision` decimal places; a negative
precision rounds to tens, hundreds … (−2: to a multiple of 100). The rounding applies
to each (charge, group) quantity of a period — the aggregate a charge prices — never
to single events. docs/aggregations.md ("Rounding") has every choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rating.model import MeteredQuantity, UsageCharge

MIN_PRECISION = -15
MAX_PRECISION = 15


class RoundingFunction(StrEnum):
    ROUND = "round"
    CEIL = "ceil"
    FLOOR = "floor"


_MODES = {
    RoundingFunction.ROUND: ROUND_HALF_UP,
    RoundingFunction.CEIL: ROUND_CEILING,
    RoundingFunction.FLOOR: ROUND_FLOOR,
}

# Rounding is this context's job; quantities have at most a few dozen digits.
_CONTEXT = Context(prec=1000, traps=[InvalidOperation])


@dataclass(frozen=True)
class QuantityRounding:
    """How a metric rounds its period quantity."""

    function: RoundingFunction
    precision: int = 0

    def __post_init__(self) -> None:
        if not MIN_PRECISION <= self.precision <= MAX_PRECISION:
            raise ValueError(
                f"rounding precision must be between {MIN_PRECISION} and {MAX_PRECISION}"
            )


def round_quantity(quantity: Decimal, rounding: QuantityRounding | None) -> Decimal:
    """`quantity` rounded by `rounding` (unchanged without one), exactly."""
    if rounding is None:
        return quantity
    mode = _MODES[rounding.function]
    rounded = quantity.quantize(Decimal(1).scaleb(-rounding.precision), mode, _CONTEXT)
    if rounding.precision < 0:
        # 1.2E+3 → 1200: a plain integer, as quantities are shown and stored.
        rounded = rounded.quantize(Decimal(1), context=_CONTEXT)
    return rounded


def rounded_usage(
    charges: Iterable[UsageCharge], usage: Sequence[MeteredQuantity]
) -> tuple[MeteredQuantity, ...]:
    """Each metered quantity rounded by its charge's metric (usage of a charge not in
    `charges` is left as it is). Rounding is idempotent, so rounding twice is harmless."""
    rules = {c.id: c.metric.rounding for c in charges if c.metric.rounding is not None}
    if not rules:
        return tuple(usage)
    return tuple(
        replace(u, quantity=round_quantity(u.quantity, rules[u.charge_id]))
        if u.charge_id in rules
        else u
        for u in usage
    )
