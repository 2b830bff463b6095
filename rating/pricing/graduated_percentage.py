"""graduated_percentage: graduated tiers over the summed amount, each with a percent rate.

amount = Σ (portion of the summed amount in tier) * tier.rate / 100 + the flat amounts
of the tiers entered, with the same rule as graduated: the first tier's flat amount
is always charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rating.money import percent
from rating.pricing.base import ChargeUsage, PricedCharge, average_unit_amount, parse_rate
from rating.pricing.tiers import Tier, graduated_amount, normalize_tiers, parse_tiers


@dataclass(frozen=True)
class GraduatedPercentageProperties:
    tiers: tuple[Tier, ...]  # Tier.price is the tier's rate in percent


class GraduatedPercentagePricer:
    model = "graduated_percentage"

    def parse(self, properties: Mapping[str, Any]) -> GraduatedPercentageProperties:
        tiers = parse_tiers(properties, model=self.model, price_key="rate", parse_price=parse_rate)
        return GraduatedPercentageProperties(tiers=tiers)

    def normalize(self, parsed: GraduatedPercentageProperties) -> dict[str, Any]:
        return {"tiers": normalize_tiers(parsed.tiers, price_key="rate")}

    def price(self, parsed: GraduatedPercentageProperties, usage: ChargeUsage) -> PricedCharge:
        amount = graduated_amount(parsed.tiers, usage.quantity, percent)
        return PricedCharge(amount=amount, unit_amount=average_unit_amount(amount, usage.quantity))

    def needs_event_amounts(self, parsed: GraduatedPercentageProperties) -> bool:
        return False


GRADUATED_PERCENTAGE = GraduatedPercentagePricer()
