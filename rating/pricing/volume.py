"""volume: the one tier that contains the quantity prices every unit.

amount = q * tier.unitAmount + tier.flatAmount, where the tier covers
(upTo[i-1], upTo[i]]; q = 0 falls in the first tier, so its flat amount is charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rating.money import ZERO
from rating.pricing.base import ChargeUsage, PricedCharge, parse_decimal
from rating.pricing.tiers import Tier, normalize_tiers, parse_tiers, tier_containing


@dataclass(frozen=True)
class VolumeProperties:
    tiers: tuple[Tier, ...]


class VolumePricer:
    model = "volume"

    def parse(self, properties: Mapping[str, Any]) -> VolumeProperties:
        tiers = parse_tiers(
            properties, model=self.model, price_key="unitAmount", parse_price=parse_decimal
        )
        return VolumeProperties(tiers=tiers)

    def normalize(self, parsed: VolumeProperties) -> dict[str, Any]:
        return {"tiers": normalize_tiers(parsed.tiers, price_key="unitAmount")}

    def price(self, parsed: VolumeProperties, usage: ChargeUsage) -> PricedCharge:
        tier = tier_containing(parsed.tiers, usage.quantity)
        amount = usage.quantity * tier.price + tier.flat_amount
        # The line shows the tier's unit price; the flat amount is part of the amount only.
        unit_amount = tier.price if usage.quantity else ZERO
        return PricedCharge(amount=amount, unit_amount=unit_amount)

    def needs_event_amounts(self, parsed: VolumeProperties) -> bool:
        return False


VOLUME = VolumePricer()
