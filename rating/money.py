"""Money: exact decimals and the one rounding rule of the product.

Every amount is a `Decimal`. Charge models compute exact amounts; an amount is
rounded once, at line level, to the currency's ISO 4217 minor unit with
ROUND_HALF_UP. Sums of rounded lines are then exact, so total = sum of lines.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from core.errors import InvalidInput

ZERO = Decimal(0)

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


def quantum(currency: str) -> Decimal:
    """The smallest amount of a currency: Decimal('0.01') for USD."""
    return Decimal(1).scaleb(-minor_units(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round an exact amount once to the currency's minor unit, ROUND_HALF_UP."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


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
    return Decimal(0) if value == 0 else value.normalize()


def format_decimal(value: Decimal) -> str:
    """A quantity or unit price as a plain decimal string without exponent or trailing zeros."""
    return format(canonical(value), "f")
