"""graduated: each tier prices the part of the quantity that falls inside it.

amount = Σ (portion of q in tier) * tier.unitAmount + the flat amounts of the tiers q
enters; the first tier's flat amount is always charged (the charge's base fee).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rating.pricing.base import ChargeUsage, PricedCharge, average_unit_amount, parse_decimal
from rating.pricing.tiers import Tier, graduated_amount, normalize_tiers, parse_tiers


@dataclass(frozen=True)
class GraduatedProperties:
    tiers: tuple[Tier, ...]


def _units_times_price(portion: Decimal, unit_amount: Decimal) -> Decimal:
    return portion * unit_amount


class GraduatedPricer:
    model = "graduated"

    def parse(self, properties: Mapping[str, Any]) -> GraduatedProperties:
        tiers = parse_tiers(
            properties, model=self.model, price_key="unitAmount", parse_price=parse_decimal
        )
        return GraduatedProperties(tiers=tiers)

    def normalize(self, parsed: GraduatedProperties) -> dict[str, Any]:
        return {"tiers": normalize_tiers(parsed.tiers, price_key="unitAmount")}

    def price(self, parsed: GraduatedProperties, usage: ChargeUsage) -> PricedCharge:
        amount = graduated_amount(parsed.tiers, usage.quantity, _units_times_price)
        return PricedCharge(amount=amount, unit_amount=average_unit_amount(amount, usage.quantity))

    def needs_event_amounts(self, parsed: GraduatedProperties) -> bool:
        return False


GRADUATED = GraduatedPricer()
