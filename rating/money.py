"""Money: exact decimals and the rounding rules of the product, in one place.

Every amount is a `Decimal`. Charge models compute exact amounts (in `EXACT`, which
turns any hidden rounding into an error); an amount is rounded once, at line level,
to the currency's ISO 4217 minor unit with ROUND_HALF_UP (BILLING.md). Sums of rounded
lines are then exact, so total = sum of lines. Budgets that must never be exceeded (a
coupon's remainder, a wallet's balance, a maximum spend) round DOWN instead.
"""

from __future__ import annotations

from decimal import (
    ROUND_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Literal

from core.errors import InvalidInput

ZERO = Decimal(0)
HUNDRED = Decimal(100)

# Operands carry at most a few dozen digits, so exact results fit comfortably; the
# Inexact trap turns any silent rounding into an error instead of a wrong invoice.
EXACT = Context(
    prec=1000,
    rounding=ROUND_HALF_UP,
    traps=[Inexact, InvalidOperation, DivisionByZero, Overflow],
)

# The context of the one deliberate rounding step: wide enough for any amount (the
# default 28 digits would refuse a 27-digit amount in cents), and rounding is its job.
_ROUNDING = Context(prec=1000, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])

Rounding = Literal["ROUND_HALF_UP", "ROUND_DOWN"]
"""The two rounding rules of the product: HALF_UP for lines, DOWN for budgets."""

# ISO 4217 minor units of the currencies that are not 2-decimal. Any other
# well-formed code (three uppercase letters) has 2.
_MINOR_UNITS: dict[str, int] = {
    # zero-decimal
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    # three-decimal
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four-decimal
    "CLF": 4, "UYW": 4,
}  # fmt: skip

# The currencies accepted by the catalog: the active ISO 4217 codes.
CURRENCIES: frozenset[str] = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CLF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYI UYU UYW UZS VES
    VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()  # noqa: SIM905
)

MAX_UNIT_PRICE_DECIMALS = 12


class InvalidAmount(InvalidInput, ValueError):
    """A value that is not an exact decimal amount; the message names the field.

    An `InvalidInput` (a 422 at the API), and a `ValueError` so that validators of the
    API's request models report it on the field it came from."""


def minor_units(currency: str) -> int:
    """The number of decimals of a currency's minor unit (USD 2, JPY 0, BHD 3)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


_QUANTA: dict[str, Decimal] = {}


def quantum(currency: str) -> Decimal:
    """The smallest amount of a currency: Decimal('0.01') for USD."""
    found = _QUANTA.get(currency)
    if found is None:
        found = Decimal(1).scaleb(-minor_units(currency))
        if len(_QUANTA) < 1_000:  # codes are checked elsewhere; stay bounded anyway
            _QUANTA[currency] = found
    return found


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round an exact amount once to the currency's minor unit, ROUND_HALF_UP."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP, context=_ROUNDING)


def round_down(amount: Decimal, currency: str) -> Decimal:
    """The whole minor units of an amount, toward zero: what a budget can spend."""
    return amount.quantize(quantum(currency), rounding=ROUND_DOWN, context=_ROUNDING)


def _integer_ratio(numerator: Decimal, denominator: Decimal) -> tuple[int, int]:
    """Integers n, d with n / d == numerator / denominator and d > 0 (finite operands)."""
    n1, d1 = numerator.as_integer_ratio()
    n2, d2 = denominator.as_integer_ratio()
    if n2 == 0:
        raise ZeroDivisionError("division by zero")
    n, d = n1 * d2, d1 * n2
    return (-n, -d) if d < 0 else (n, d)


def ratio(
    numerator: Decimal,
    denominator: Decimal,
    places: int,
    *,
    rounding: Rounding = ROUND_HALF_UP,
) -> Decimal:
    """numerator / denominator rounded once to `places` decimals (HALF_UP: ties away
    from zero; DOWN: toward zero), computed with integers whatever the context."""
    n, d = _integer_ratio(numerator, denominator)
    n *= 10**places
    if rounding == ROUND_HALF_UP:
        magnitude = (2 * abs(n) + d) // (2 * d)
    elif rounding == ROUND_DOWN:
        magnitude = abs(n) // d
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    # Built from a string: the constructor is exact, whatever the current context.
    return Decimal(f"{'-' if n < 0 else ''}{magnitude}E-{places}")


def ceil_div(numerator: Decimal, denominator: Decimal) -> int:
    """⌈numerator / denominator⌉ computed exactly with integers (no rounding at all)."""
    n, d = _integer_ratio(numerator, denominator)
    return -((-n) // d)


def prorate(
    amount: Decimal,
    used: Decimal,
    total: Decimal,
    currency: str,
    *,
    rounding: Rounding = ROUND_HALF_UP,
) -> Decimal:
    """amount × used / total, computed exactly and rounded once to the minor unit
    (HALF_UP for a line; DOWN for a ceiling that rounding must not exceed)."""
    # The context's own methods: exact like `localcontext(EXACT)`, without switching.
    return ratio(EXACT.multiply(amount, used), total, minor_units(currency), rounding=rounding)


def percent(value: Decimal, rate: Decimal) -> Decimal:
    """rate percent of value, exactly (an error rather than a rounded result)."""
    return EXACT.divide(EXACT.multiply(value, rate), HUNDRED)


def to_decimal(value: object, *, what: str = "amount") -> Decimal:
    """Parse a decimal string, int or Decimal exactly; floats go through their repr.

    The product's one decimal parser: the API's request models, the catalog and the
    invoices all parse with it, and a bad value is an `InvalidAmount` naming `what`.

    JSON numbers reach us as floats only when a client sends them; their shortest
    repr ("0.1") is what the client wrote, so `str()` recovers it exactly.
    """
    if isinstance(value, bool):
        raise InvalidAmount(f"{what} must be a number, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidAmount(f"{what} {value!r} is not a decimal number") from None
    else:
        raise InvalidAmount(f"{what} must be a decimal string or a number")
    if not result.is_finite():
        raise InvalidAmount(f"{what} must be a finite number")
    return result


def format_money(amount: Decimal, currency: str) -> str:
    """The API's decimal-string form of a rounded amount: '12.50', '100' for JPY."""
    return str(round_money(amount, currency))


def canonical(value: Decimal) -> Decimal:
    """A quantity or unit price without trailing zeros (and 0 without sign or scale)."""
    # In EXACT: normalize() rounds to the context's precision (28 digits by default).
    return Decimal(0) if value == 0 else value.normalize(EXACT)


def format_decimal(value: Decimal) -> str:
    """A quantity or unit price as a plain decimal string without exponent or trailing zeros."""
    return format(canonical(value), "f")
