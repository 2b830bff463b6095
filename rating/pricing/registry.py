"""The registry of pricers: one per charge model, looked up by the model's name.

    validate_properties("graduated", raw)   -> normalized properties (or InvalidChargeProperties)
    price("graduated", properties, usage)   -> PricedCharge(amount exact, unit_amount)
    needs_event_amounts(model, properties)  -> whether to fetch per-transaction amounts

A new charge model is one module implementing `Pricer` and one entry in `_ALL`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import localcontext
from typing import Any

from rating.money import EXACT
from rating.pricing.base import ChargeUsage, InvalidChargeProperties, PricedCharge, Pricer
from rating.pricing.graduated import GRADUATED
from rating.pricing.graduated_percentage import GRADUATED_PERCENTAGE
from rating.pricing.package import PACKAGE
from rating.pricing.per_unit import PER_UNIT
from rating.pricing.percentage import PERCENTAGE
from rating.pricing.volume import VOLUME

_ALL: tuple[Pricer[Any], ...] = (
    PER_UNIT,
    GRADUATED,
    VOLUME,
    PACKAGE,
    PERCENTAGE,
    GRADUATED_PERCENTAGE,
)
PRICERS: Mapping[str, Pricer[Any]] = {pricer.model: pricer for pricer in _ALL}
MODELS: frozenset[str] = frozenset(PRICERS)


def validate_properties(model: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a charge's properties and return them normalized (camelCase, decimal strings)."""
    pricer = _pricer(model)
    return pricer.normalize(_parse(pricer, properties))


def price(model: str, properties: Mapping[str, Any], usage: ChargeUsage) -> PricedCharge:
    """The exact, unrounded price of one period's usage of a charge."""
    pricer = _pricer(model)
    parsed = _parse(pricer, properties)
    with localcontext(EXACT):
        return pricer.price(parsed, usage)


def needs_event_amounts(model: str, properties: Mapping[str, Any]) -> bool:
    """Whether pricing needs the period's per-transaction amounts (percentage rules)."""
    pricer = _pricer(model)
    return pricer.needs_event_amounts(_parse(pricer, properties))


def _pricer(model: str) -> Pricer[Any]:
    pricer = PRICERS.get(model)
    if pricer is None:
        raise InvalidChargeProperties(
            f"unknown charge model {model!r} (expected one of: {', '.join(sorted(MODELS))})"
        )
    return pricer


# Parsed properties are frozen, so a bill run prices every group of a charge with
# one parse. The key keeps each value's type, so True and 1, or "1" and 1, never share
# an entry; properties that cannot be frozen are simply parsed every time.
_PARSED: dict[tuple[str, Hashable], Any] = {}
_PARSED_MAX = 1024
_MISSING = object()
# The charges of one plan share their properties object across every subscription of a
# run: it is recognised by identity first, without freezing it again. Each entry keeps
# the object itself, so its id cannot be reused while the entry lives; properties are
# not changed once a plan is built (UsageCharge is frozen).
_BY_IDENTITY: dict[int, tuple[Mapping[str, Any], str, Any]] = {}


def _parse(pricer: Pricer[Any], properties: Mapping[str, Any]) -> Any:
    entry = _BY_IDENTITY.get(id(properties))
    if entry is not None and entry[0] is properties and entry[1] == pricer.model:
        return entry[2]
    parsed = _parse_frozen(pricer, properties)
    if len(_BY_IDENTITY) >= _PARSED_MAX:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(properties)] = (properties, pricer.model, parsed)
    return parsed


def _parse_frozen(pricer: Pricer[Any], properties: Mapping[str, Any]) -> Any:
    if not isinstance(properties, Mapping):
        raise InvalidChargeProperties("properties must be an object")
    try:
        key: tuple[str, Hashable] | None = (pricer.model, _freeze(properties))
        hash(key)
    except TypeError:
        key = None
    if key is not None:
        cached = _PARSED.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
    parsed = pricer.parse(properties)
    if key is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    return parsed


def _freeze(value: object) -> Hashable:
    if isinstance(value, Mapping):
        return ("map", tuple((_freeze(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("seq", tuple(_freeze(item) for item in value))
    if not isinstance(value, Hashable):
        raise TypeError("unhashable")
    return (type(value), value)
