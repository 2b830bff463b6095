"""per_unit: every unit at the same price, q * unitAmount."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rating.money import ZERO
from rating.pricing.base import (
    ChargeUsage,
    PricedCharge,
    reject_unknown_keys,
    required_decimal,
    text,
)


@dataclass(frozen=True)
class PerUnitProperties:
    unit_amount: Decimal


class PerUnitPricer:
    model = "per_unit"

    def parse(self, properties: Mapping[str, Any]) -> PerUnitProperties:
        reject_unknown_keys(properties, ("unitAmount",), model=self.model)
        return PerUnitProperties(unit_amount=required_decimal(properties, "unitAmount"))

    def normalize(self, parsed: PerUnitProperties) -> dict[str, Any]:
        return {"unitAmount": text(parsed.unit_amount)}

    def price(self, parsed: PerUnitProperties, usage: ChargeUsage) -> PricedCharge:
        unit_amount = parsed.unit_amount if usage.quantity else ZERO
        return PricedCharge(amount=usage.quantity * parsed.unit_amount, unit_amount=unit_amount)

    def needs_event_amounts(self, parsed: PerUnitProperties) -> bool:
        return False


PER_UNIT = PerUnitPricer()
