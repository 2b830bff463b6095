"""percentage: a percent of the summed transaction amount, plus per-transaction rules.

Properties: `rate` (percent, required), `fixedAmount` (per transaction that is not
entirely free), `freeUnitsPerEvents` (the first N transactions are free),
`freeUnitsPerTotalAggregation` (the first X of the summed amount is free) and
`perTransactionMin` / `perTransactionMax` (clamp each non-free transaction's fee).

Choices where BILLING.md is silent (Lago's percentage model is the reference; the
same list is in docs/pricing-models.md):

1. Free amount with both free rules set: min(sum of the first N transactions, X).
   Equivalently, transaction i (in time order) is free only while BOTH hold:
   i < N and the running total up to and including it is <= X. This matches Lago's
   documented example ("the first 3 events or $500 are free": the 4th event is
   charged although the running total is still under $500).
2. A transaction is entirely free when it lies wholly inside the free amount; it
   costs 0 and is never raised to perTransactionMin. The transaction that crosses
   X is partially free: it pays the rate on its part above X, plus fixedAmount,
   and is clamped. A transaction that ends exactly at X is entirely free.
3. A zero-amount transaction that is not free pays fixedAmount (clamped), as Lago
   charges the fixed fee per event; but when the whole period's amount is 0 the
   charge costs 0, fixed fees included (BILLING.md).
4. `0` for freeUnitsPerEvents or freeUnitsPerTotalAggregation means "no free
   units", exactly like leaving it out (Lago does the same); with N set and X = 0,
   the first N transactions are free.
5. fixedAmount and the clamps apply per transaction, after the rate: fee =
   clamp(rate% * non-free part + fixedAmount, min, max). perTransactionMin must not
   exceed perTransactionMax.
6. Per-transaction amounts are needed only when a rule works per transaction
   (fixedAmount > 0, freeUnitsPerEvents > 0, perTransactionMin > 0 or
   perTransactionMax set). Otherwise the amount is rate% * max(q - X, 0) from the
   quantity alone. With fixedAmount alone (no free units, no clamps) and no
   amounts given, rate% * q + fixedAmount * event_count is used.
7. When per-transaction amounts are used they are authoritative: the fee is computed
   from them and `quantity` only divides the amount into the line's unit amount (a
   quantity of 0 still costs 0). Event_count, when given, must equal their number.
8. A negative transaction amount is a refund: it costs nothing (no rate, no
   fixedAmount, no perTransactionMin) and takes no free units (neither one of the
   first N transactions nor part of the free amount X); the refund itself is credited
   with a credit note, not netted into a fee. So an accepted event never makes a
   subscription unbillable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rating.money import ZERO, percent
from rating.pricing.base import (
    ChargeUsage,
    InvalidChargeProperties,
    InvalidChargeUsage,
    PricedCharge,
    average_unit_amount,
    optional_count,
    optional_decimal,
    parse_rate,
    reject_unknown_keys,
    text,
)

_KEYS = (
    "rate",
    "fixedAmount",
    "freeUnitsPerEvents",
    "freeUnitsPerTotalAggregation",
    "perTransactionMin",
    "perTransactionMax",
)


@dataclass(frozen=True)
class PercentageProperties:
    rate: Decimal  # percent: 1.5 means 1.5 %
    fixed_amount: Decimal | None = None
    free_units_per_events: int | None = None
    free_units_per_total_aggregation: Decimal | None = None
    per_transaction_min: Decimal | None = None
    per_transaction_max: Decimal | None = None

    @property
    def fixed(self) -> Decimal:
        return self.fixed_amount or ZERO

    @property
    def free_events(self) -> int | None:
        """N, or None when no transaction is free by count (absent or 0)."""
        return self.free_units_per_events or None

    @property
    def free_total(self) -> Decimal | None:
        """X, or None when no amount is free (absent or 0)."""
        return self.free_units_per_total_aggregation or None

    @property
    def clamps(self) -> bool:
        """Whether perTransactionMin/Max can change a fee (a minimum of 0 never does)."""
        return bool(self.per_transaction_min) or self.per_transaction_max is not None

    def clamp(self, fee: Decimal) -> Decimal:
        if self.per_transaction_min is not None and fee < self.per_transaction_min:
            return self.per_transaction_min
        if self.per_transaction_max is not None and fee > self.per_transaction_max:
            return self.per_transaction_max
        return fee


class PercentagePricer:
    model = "percentage"

    def parse(self, properties: Mapping[str, Any]) -> PercentageProperties:
        reject_unknown_keys(properties, _KEYS, model=self.model)
        parsed = PercentageProperties(
            rate=parse_rate(properties.get("rate"), "rate"),
            fixed_amount=optional_decimal(properties, "fixedAmount"),
            free_units_per_events=optional_count(properties, "freeUnitsPerEvents"),
            free_units_per_total_aggregation=optional_decimal(
                properties, "freeUnitsPerTotalAggregation"
            ),
            per_transaction_min=optional_decimal(properties, "perTransactionMin"),
            per_transaction_max=optional_decimal(properties, "perTransactionMax"),
        )
        low, high = parsed.per_transaction_min, parsed.per_transaction_max
        if low is not None and high is not None and low > high:
            raise InvalidChargeProperties(
                f"perTransactionMin ({text(low)}) must not be greater than "
                f"perTransactionMax ({text(high)})"
            )
        return parsed

    def normalize(self, parsed: PercentageProperties) -> dict[str, Any]:
        normalized: dict[str, Any] = {"rate": text(parsed.rate)}
        optional: dict[str, Decimal | None] = {
            "fixedAmount": parsed.fixed_amount,
            "freeUnitsPerTotalAggregation": parsed.free_units_per_total_aggregation,
            "perTransactionMin": parsed.per_transaction_min,
            "perTransactionMax": parsed.per_transaction_max,
        }
        if parsed.free_units_per_events is not None:
            normalized["freeUnitsPerEvents"] = parsed.free_units_per_events
        normalized.update(
            {key: text(value) for key, value in optional.items() if value is not None}
        )
        return {key: normalized[key] for key in _KEYS if key in normalized}

    def needs_event_amounts(self, parsed: PercentageProperties) -> bool:
        return bool(parsed.fixed) or parsed.free_events is not None or parsed.clamps

    def price(self, parsed: PercentageProperties, usage: ChargeUsage) -> PricedCharge:
        if usage.quantity == 0:
            amount = ZERO  # zero total amount costs 0, fixed fees included
        elif not self.needs_event_amounts(parsed):
            free = parsed.free_total or ZERO
            amount = percent(max(usage.quantity - free, ZERO), parsed.rate)
        elif usage.event_amounts:
            amount = _per_transaction_amount(parsed, usage.event_amounts, usage.event_count)
        else:
            amount = _fixed_fee_without_amounts(parsed, usage)
        return PricedCharge(amount=amount, unit_amount=average_unit_amount(amount, usage.quantity))


def _per_transaction_amount(
    parsed: PercentageProperties, amounts: Sequence[Decimal], event_count: int
) -> Decimal:
    """Σ over transactions in time order of clamp(rate% * non-free part + fixed)."""
    if event_count not in (0, len(amounts)):
        raise InvalidChargeUsage(
            f"event_count ({event_count}) differs from the number of event amounts ({len(amounts)})"
        )
    # Refunds (negative amounts) cost nothing and take no free units (rule 8).
    if any(value < 0 for value in amounts):
        amounts = [value for value in amounts if value >= 0]
    if sum(amounts, ZERO) == 0:
        return ZERO

    free_events, free_total = parsed.free_events, parsed.free_total
    has_free_units = free_events is not None or free_total is not None
    amount = ZERO
    running_total = ZERO
    for index, value in enumerate(amounts):
        before, running_total = running_total, running_total + value
        # Inside the free window by count (if N is set) …
        eligible = has_free_units and (free_events is None or index < free_events)
        # … and wholly inside the free amount (if X is set): entirely free, never raised.
        if eligible and (free_total is None or running_total <= free_total):
            continue
        paid = value
        if eligible and free_total is not None:
            paid = value - max(free_total - before, ZERO)  # crosses X: partially free
        amount += parsed.clamp(percent(paid, parsed.rate) + parsed.fixed)
    return amount


def _fixed_fee_without_amounts(parsed: PercentageProperties, usage: ChargeUsage) -> Decimal:
    """rate% * q + fixed * event_count, possible only when no rule needs single amounts."""
    if parsed.free_events is not None or parsed.free_total is not None or parsed.clamps:
        raise InvalidChargeUsage(
            "percentage: free units and per-transaction min/max need the per-transaction "
            "amounts (event_amounts)"
        )
    if usage.event_count == 0:
        raise InvalidChargeUsage(
            "percentage with fixedAmount needs event_count or event_amounts when quantity > 0"
        )
    return percent(usage.quantity, parsed.rate) + parsed.fixed * usage.event_count


PERCENTAGE = PercentagePricer()
