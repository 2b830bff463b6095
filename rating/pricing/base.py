"""The pricer interface, its value types and the readers of raw properties.

A pricer turns the raw `properties` of a charge into a typed, frozen properties
object (validating them) and prices a period's usage with it. Pricers are pure:
no I/O, no clock, Decimal only. Every computation runs in `rating.money.EXACT`, a
decimal context that raises instead of rounding, so an amount is either exact or an
error. The registry of pricers is `rating.pricing.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Protocol, TypeVar

from rating.money import (
    EXACT,
    HUNDRED,
    MAX_UNIT_PRICE_DECIMALS,
    ZERO,
    InvalidAmount,
    format_decimal,
    ratio,
    to_decimal,
)

# Decimal places shown in a derived unit amount (amount / quantity).
UNIT_AMOUNT_DECIMALS = 12

# Property values are prices, bounds and sizes; anything with more integer digits is
# a typo, and refusing it keeps absurd inputs ("1e999999") from expanding to huge strings.
MAX_INTEGER_DIGITS = 30


class InvalidChargeProperties(ValueError):
    """Charge properties that do not describe a valid price; the message says which and why."""


class InvalidChargeUsage(ValueError):
    """Usage that a pricer cannot price (a caller bug, not a customer error)."""


@dataclass(frozen=True)
class ChargeUsage:
    """What a charge is priced on for one period (and one group)."""

    quantity: Decimal  # billable quantity after allowance (>= 0)
    event_count: int = 0  # number of transactions in the period (percentage models)
    # Per-transaction amounts in time order (percentage with per-transaction rules).
    event_amounts: tuple[Decimal, ...] = ()

    def __post_init__(self) -> None:
        if not self.quantity.is_finite() or self.quantity < 0:
            raise InvalidChargeUsage(f"quantity must be a finite number >= 0 (got {self.quantity})")
        if self.event_count < 0:
            raise InvalidChargeUsage(f"event_count must be >= 0 (got {self.event_count})")


@dataclass(frozen=True)
class PricedCharge:
    """The exact (unrounded) price of a charge's usage, and the unit amount shown on the line."""

    amount: Decimal
    unit_amount: Decimal


P = TypeVar("P")


class Pricer(Protocol[P]):
    """One charge model: parse its properties once, then price usage with them."""

    @property
    def model(self) -> str: ...

    def parse(self, properties: Mapping[str, Any]) -> P:
        """Validate raw properties into a typed, frozen object; raise InvalidChargeProperties."""
        ...

    def normalize(self, parsed: P) -> dict[str, Any]:
        """The canonical API form of parsed properties (camelCase keys, decimal strings)."""
        ...

    def price(self, parsed: P, usage: ChargeUsage) -> PricedCharge:
        """The exact amount of the usage; called inside the EXACT decimal context."""
        ...

    def needs_event_amounts(self, parsed: P) -> bool:
        """Whether pricing needs the per-transaction amounts of the period."""
        ...


# --- derived amounts ---------------------------------------------------------------


def average_unit_amount(amount: Decimal, quantity: Decimal) -> Decimal:
    """amount / quantity to 12 decimals (ROUND_HALF_UP), 0 when the quantity is 0."""
    if quantity == 0:
        return ZERO
    return ratio(amount, quantity, UNIT_AMOUNT_DECIMALS)


# --- reading raw properties -------------------------------------------------------


def _camel_case(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def require_mapping(value: object, label: str) -> Mapping[str, Any]:
    """The value as a mapping, or an error naming it."""
    if not isinstance(value, Mapping):
        raise InvalidChargeProperties(f"{label} must be an object")
    return value


def reject_unknown_keys(
    raw: Mapping[str, Any], allowed: Sequence[str], *, model: str, prefix: str = ""
) -> None:
    """Refuse keys a model does not know, hinting at the camelCase spelling."""
    for key in raw:
        if key in allowed:
            continue
        where = f"{prefix}{key}" if isinstance(key, str) else repr(key)
        if isinstance(key, str) and _camel_case(key) in allowed:
            raise InvalidChargeProperties(
                f"unknown property '{where}' for {model}: did you mean '{_camel_case(key)}'?"
            )
        raise InvalidChargeProperties(
            f"unknown property '{where}' for {model} (allowed: {', '.join(allowed)})"
        )


def _decimal_places(value: Decimal) -> int:
    """Significant decimal places of a finite value: 1.500 -> 1, 1E+3 -> 0."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros)) if any(digits) else 0


def parse_decimal(
    value: object,
    label: str,
    *,
    max_decimals: int = MAX_UNIT_PRICE_DECIMALS,
) -> Decimal:
    """A property value as an exact, canonical, non-negative Decimal."""
    try:
        number = to_decimal(value, what=label)
    except InvalidAmount as exc:
        raise InvalidChargeProperties(str(exc)) from None
    # Bound the size before formatting: "1e999999" must not expand to a million digits.
    if number != 0 and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidChargeProperties(
            f"{label} is too large (more than {MAX_INTEGER_DIGITS} integer digits)"
        )
    places = _decimal_places(number)
    if places > max_decimals:
        shown = text(number) if places <= 2 * max_decimals else str(number)
        raise InvalidChargeProperties(
            f"{label} has more than {max_decimals} decimal places (got {shown})"
        )
    canonical = text(number)
    if number < 0:
        raise InvalidChargeProperties(f"{label} must not be negative (got {canonical})")
    return Decimal(canonical)


def required_decimal(raw: Mapping[str, Any], key: str, *, prefix: str = "") -> Decimal:
    """A mandatory decimal property."""
    value = raw.get(key)
    if value is None:
        raise InvalidChargeProperties(f"{prefix}{key} is required")
    return parse_decimal(value, f"{prefix}{key}")


def optional_decimal(raw: Mapping[str, Any], key: str, *, prefix: str = "") -> Decimal | None:
    """An optional decimal property; absent and null both mean "not set"."""
    value = raw.get(key)
    return None if value is None else parse_decimal(value, f"{prefix}{key}")


def parse_rate(value: object, label: str) -> Decimal:
    """A percent between 0 and 100 inclusive."""
    if value is None:
        raise InvalidChargeProperties(f"{label} is required")
    rate = parse_decimal(value, label)
    if rate > HUNDRED:
        raise InvalidChargeProperties(f"{label} must be between 0 and 100 (got {text(rate)})")
    return rate


def optional_count(raw: Mapping[str, Any], key: str) -> int | None:
    """An optional whole, non-negative number such as a number of transactions."""
    value = raw.get(key)
    if value is None:
        return None
    number = parse_decimal(value, key)
    if _decimal_places(number) > 0:
        raise InvalidChargeProperties(f"{key} must be a whole number (got {text(number)})")
    return int(number)


def text(value: Decimal) -> str:
    """The canonical string of a decimal property (exact, no exponent)."""
    with localcontext(EXACT):
        return format_decimal(value)
