"""Tiers shared by the graduated, volume and graduated_percentage models.

Tiers are ascending; tier i covers (upTo[i-1], upTo[i]], the first starts at 0 and
the last has `upTo = null` (no upper bound). Each tier has a price (a unit amount,
or a percent rate for graduated_percentage) and an optional flat amount.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rating.money import ZERO
from rating.pricing.base import (
    InvalidChargeProperties,
    parse_decimal,
    reject_unknown_keys,
    require_mapping,
    text,
)


@dataclass(frozen=True)
class Tier:
    lower: Decimal  # exclusive lower bound: the previous tier's upTo, 0 for the first
    upper: Decimal | None  # inclusive upper bound; None for the last tier
    price: Decimal  # unitAmount, or the rate in percent for graduated_percentage
    flat_amount: Decimal

    def contains(self, quantity: Decimal) -> bool:
        """Whether the quantity is at most this tier's upper bound."""
        return self.upper is None or quantity <= self.upper

    def portion(self, quantity: Decimal) -> Decimal:
        """The part of the quantity inside (lower, upper]: 10.5 in (10, 20] is 0.5."""
        if quantity <= self.lower:
            return ZERO
        top = quantity if self.contains(quantity) else self.upper
        assert top is not None
        return top - self.lower


def parse_tiers(
    properties: Mapping[str, Any],
    *,
    model: str,
    price_key: str,
    parse_price: Callable[[object, str], Decimal],
) -> tuple[Tier, ...]:
    """Validate `tiers` (ascending, last upTo null) into Tier objects."""
    reject_unknown_keys(properties, ("tiers",), model=model)
    raw_tiers = properties.get("tiers")
    if not isinstance(raw_tiers, Sequence) or isinstance(raw_tiers, str | bytes):
        raise InvalidChargeProperties("tiers must be a non-empty list")
    if not raw_tiers:
        raise InvalidChargeProperties("tiers must be a non-empty list")

    tiers: list[Tier] = []
    lower = ZERO
    last = len(raw_tiers) - 1
    for index, raw_tier in enumerate(raw_tiers):
        label = f"tiers[{index}]"
        tier = require_mapping(raw_tier, label)
        reject_unknown_keys(
            tier, ("upTo", price_key, "flatAmount"), model=model, prefix=f"{label}."
        )
        upper = _parse_up_to(tier.get("upTo"), index=index, last=last, lower=lower)
        raw_price = tier.get(price_key)
        if raw_price is None:
            raise InvalidChargeProperties(f"{label}.{price_key} is required")
        price = parse_price(raw_price, f"{label}.{price_key}")
        raw_flat = tier.get("flatAmount")
        flat = ZERO if raw_flat is None else parse_decimal(raw_flat, f"{label}.flatAmount")
        tiers.append(Tier(lower=lower, upper=upper, price=price, flat_amount=flat))
        if upper is not None:
            lower = upper
    return tuple(tiers)


def _parse_up_to(value: object, *, index: int, last: int, lower: Decimal) -> Decimal | None:
    label = f"tiers[{index}].upTo"
    if value is None:
        if index != last:
            raise InvalidChargeProperties(
                f"{label} is required: only the last tier has upTo null (no upper bound)"
            )
        return None
    if index == last:
        raise InvalidChargeProperties(
            f"{label} must be null: the last tier has no upper bound (got {value!r})"
        )
    upper = parse_decimal(value, label)
    if index == 0 and upper <= 0:
        raise InvalidChargeProperties(f"{label} must be greater than 0 (got {text(upper)})")
    if index > 0 and upper <= lower:
        raise InvalidChargeProperties(
            f"{label} must be greater than tiers[{index - 1}].upTo ({text(lower)})"
        )
    return upper


def normalize_tiers(tiers: Sequence[Tier], *, price_key: str) -> list[dict[str, Any]]:
    """The API form of tiers: decimal strings, upTo null on the last tier."""
    return [
        {
            "upTo": None if tier.upper is None else text(tier.upper),
            price_key: text(tier.price),
            "flatAmount": text(tier.flat_amount),
        }
        for tier in tiers
    ]


def graduated_amount(
    tiers: Sequence[Tier],
    quantity: Decimal,
    portion_amount: Callable[[Decimal, Decimal], Decimal],
) -> Decimal:
    """Σ portion_amount(portion of q in tier, tier price) plus the flat amounts of entered tiers.

    The first tier's flat amount is always charged, even at q = 0 (the charge's base
    fee); any other tier's when q exceeds its lower bound.
    """
    amount = ZERO
    for index, tier in enumerate(tiers):
        if index > 0 and quantity <= tier.lower:
            break
        amount += tier.flat_amount + portion_amount(tier.portion(quantity), tier.price)
    return amount


def tier_containing(tiers: Sequence[Tier], quantity: Decimal) -> Tier:
    """The single tier whose (lower, upper] holds q; q = 0 falls in the first tier."""
    for tier in tiers:
        if tier.contains(quantity):
            return tier
    return tiers[-1]  # unreachable: the last tier has no upper bound
