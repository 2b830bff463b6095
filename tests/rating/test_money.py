"""The money rules in rating/money.py: exact values, table-driven, and their properties.

Lines round once to the currency's minor unit ROUND_HALF_UP (BILLING.md); budgets (a
coupon's remainder, a wallet's balance, a maximum spend) round DOWN. Every expected
value below is exact; several are chosen at a tie, where ROUND_HALF_EVEN (the decimal
module's default) would give a different answer.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, Inexact, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.money import (
    EXACT,
    ZERO,
    ceil_div,
    format_money,
    minor_units,
    percent,
    prorate,
    quantum,
    ratio,
    round_down,
    round_money,
)

D = Decimal


@pytest.mark.parametrize(
    ("currency", "places", "smallest"),
    [("USD", 2, "0.01"), ("JPY", 0, "1"), ("BHD", 3, "0.001"), ("CLF", 4, "0.0001")],
)
def test_minor_units_and_quantum(currency: str, places: int, smallest: str) -> None:
    assert minor_units(currency) == places
    assert quantum(currency) == D(smallest)
    assert str(quantum(currency)) == smallest


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        # USD: half a cent goes up, just below half goes down
        ("0.005", "USD", "0.01"),
        ("0.004999999999", "USD", "0.00"),
        ("1.025", "USD", "1.03"),  # half-even: 1.02
        ("-1.025", "USD", "-1.03"),  # ties go away from zero
        ("2.5", "USD", "2.50"),
        ("0", "USD", "0.00"),
        # JPY has no minor unit
        ("0.5", "JPY", "1"),
        ("2.5", "JPY", "3"),  # half-even: 2
        ("-2.5", "JPY", "-3"),
        ("100.4999", "JPY", "100"),
        # BHD has three decimals
        ("0.0005", "BHD", "0.001"),
        ("1.2345", "BHD", "1.235"),  # half-even: 1.234
        ("1.2344999", "BHD", "1.234"),
        # 12-decimal products of unit prices
        ("0.000000000005", "USD", "0.00"),
        ("7.124999999999", "USD", "7.12"),
        ("7.125000000000", "USD", "7.13"),  # half-even: 7.12
        # wider than the default 28-digit context, which would refuse to quantize it
        ("123456789012345678901234567.785", "USD", "123456789012345678901234567.79"),
    ],
)
def test_round_money_is_half_up_to_the_minor_unit(amount: str, currency: str, rounded: str) -> None:
    result = round_money(D(amount), currency)
    assert str(result) == rounded
    assert format_money(D(amount), currency) == rounded


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("0.019", "USD", "0.01"),
        ("10.999", "USD", "10.99"),
        ("10.99", "USD", "10.99"),
        ("0.005", "USD", "0.00"),
        ("-0.019", "USD", "-0.01"),  # toward zero
        ("99.9", "JPY", "99"),
        ("0.5", "JPY", "0"),
        ("1.2349", "BHD", "1.234"),
        ("25.000000000001", "USD", "25.00"),
    ],
)
def test_round_down_keeps_whole_minor_units(amount: str, currency: str, rounded: str) -> None:
    assert str(round_down(D(amount), currency)) == rounded


@pytest.mark.parametrize(
    ("numerator", "denominator", "places", "rounding", "expected"),
    [
        ("1", "3", 2, ROUND_HALF_UP, "0.33"),
        ("2", "3", 2, ROUND_HALF_UP, "0.67"),
        ("1", "8", 2, ROUND_HALF_UP, "0.13"),  # 0.125, a tie: up
        ("-1", "8", 2, ROUND_HALF_UP, "-0.13"),
        ("1", "-8", 2, ROUND_HALF_UP, "-0.13"),
        ("2", "3", 2, ROUND_DOWN, "0.66"),
        ("-2", "3", 2, ROUND_DOWN, "-0.66"),
        ("5", "2", 0, ROUND_HALF_UP, "3"),  # half-even: 2
        ("5", "2", 0, ROUND_DOWN, "2"),
        ("0.000000000001", "2", 12, ROUND_HALF_UP, "0.000000000001"),
        ("1.000000000001", "2", 12, ROUND_HALF_UP, "0.500000000001"),  # half-even: ...000
        ("10", "4", 3, ROUND_HALF_UP, "2.500"),
        ("0", "7", 2, ROUND_HALF_UP, "0.00"),
    ],
)
def test_ratio(numerator: str, denominator: str, places: int, rounding: str, expected: str) -> None:
    result = ratio(D(numerator), D(denominator), places, rounding=rounding)  # type: ignore[arg-type]
    assert result == D(expected)
    assert result.as_tuple().exponent == -places


def test_ratio_refuses_zero_and_unknown_rounding() -> None:
    with pytest.raises(ZeroDivisionError):
        ratio(D(1), ZERO, 2)
    with pytest.raises(ValueError, match="unknown rounding"):
        ratio(D(1), D(3), 2, rounding="ROUND_HALF_EVEN")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [("10", "3", 4), ("9", "3", 3), ("0", "5", 0), ("10.5", "0.5", 21), ("10.6", "0.5", 22)],
)
def test_ceil_div(numerator: str, denominator: str, expected: int) -> None:
    assert ceil_div(D(numerator), D(denominator)) == expected


@pytest.mark.parametrize(
    ("amount", "used", "total", "currency", "rounding", "expected"),
    [
        ("100", "15", "30", "USD", ROUND_HALF_UP, "50.00"),
        ("100", "1", "3", "USD", ROUND_HALF_UP, "33.33"),
        ("200", "1", "3", "USD", ROUND_HALF_UP, "66.67"),
        ("0.1", "1", "8", "USD", ROUND_HALF_UP, "0.01"),  # 0.0125
        ("0.2", "1", "8", "USD", ROUND_HALF_UP, "0.03"),  # 0.025, a tie: up
        ("49", "17", "31", "USD", ROUND_HALF_UP, "26.87"),  # 26.870967…
        ("1000", "1", "3", "JPY", ROUND_HALF_UP, "333"),
        ("1000", "2", "3", "JPY", ROUND_HALF_UP, "667"),
        ("1", "1", "8", "BHD", ROUND_HALF_UP, "0.125"),
        ("0.001", "1", "2", "BHD", ROUND_HALF_UP, "0.001"),  # 0.0005
        # a ceiling rounds down: 0.50 JPY allows 0 yen, and 200 × 2/3 allows 133.33
        ("0.50", "1", "1", "JPY", ROUND_DOWN, "0"),
        ("200", "2", "3", "USD", ROUND_DOWN, "133.33"),
        ("100", "30", "30", "USD", ROUND_DOWN, "100.00"),
    ],
)
def test_prorate(
    amount: str, used: str, total: str, currency: str, rounding: str, expected: str
) -> None:
    result = prorate(D(amount), D(used), D(total), currency, rounding=rounding)  # type: ignore[arg-type]
    assert str(result) == expected


@pytest.mark.parametrize(
    ("value", "rate", "expected"),
    [
        ("0.000000000001", "1.5", "0.000000000000015"),
        ("123.456789012345", "7.25", "8.9506172033950125"),
        ("0.05", "10", "0.005"),
        ("100", "0", "0"),
        ("100", "100", "100"),
        ("0.123456789012", "33.3333", "0.041152221851736996"),
    ],
)
def test_percent_is_exact(value: str, rate: str, expected: str) -> None:
    result = percent(D(value), D(rate))
    assert result == D(expected)
    assert Fraction(result) == Fraction(D(value)) * Fraction(D(rate)) / 100


def test_exact_context_turns_hidden_rounding_into_an_error() -> None:
    with localcontext(EXACT), pytest.raises(Inexact):
        _ = D(1) / D(3)
    with localcontext(EXACT):
        assert D("0.1") + D("0.2") == D("0.3")


# --- properties -------------------------------------------------------------------

currencies = st.sampled_from(["USD", "JPY", "BHD", "CLF", "EUR", "KWD"])
amounts = st.builds(
    lambda n, places: D(n).scaleb(-places),
    st.integers(min_value=-(10**24), max_value=10**24),
    st.integers(min_value=0, max_value=14),
)


@given(amounts, currencies)
def test_rounding_is_idempotent_and_within_half_a_minor_unit(
    amount: Decimal, currency: str
) -> None:
    rounded = round_money(amount, currency)
    assert round_money(rounded, currency) == rounded
    assert rounded.as_tuple().exponent == -minor_units(currency)
    assert abs(rounded - amount) * 2 <= quantum(currency)


@given(amounts, currencies)
def test_round_down_never_grows_and_loses_less_than_a_minor_unit(
    amount: Decimal, currency: str
) -> None:
    floored = round_down(amount, currency)
    assert round_down(floored, currency) == floored
    assert abs(floored) <= abs(amount)
    assert abs(amount - floored) < quantum(currency)


@given(
    st.integers(min_value=-(10**18), max_value=10**18),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=0, max_value=12),
)
def test_ratio_is_the_exact_fraction_rounded_once(n: int, d: int, places: int) -> None:
    exact = Fraction(n, d) * 10**places
    half_up = ratio(D(n), D(d), places)
    down = ratio(D(n), D(d), places, rounding=ROUND_DOWN)
    sign = -1 if exact < 0 else 1
    assert Fraction(half_up) * 10**places == sign * int(abs(exact) + Fraction(1, 2))
    assert Fraction(down) * 10**places == sign * int(abs(exact))


@given(
    amounts.filter(lambda a: a >= 0),
    st.integers(min_value=1, max_value=366),
    st.integers(min_value=0, max_value=366),
    currencies,
)
def test_prorate_is_within_half_a_minor_unit_of_the_exact_share(
    amount: Decimal, total: int, used: int, currency: str
) -> None:
    used = min(used, total)
    share = Fraction(amount) * used / total
    prorated = prorate(amount, D(used), D(total), currency)
    ceiling = prorate(amount, D(used), D(total), currency, rounding=ROUND_DOWN)
    step = Fraction(quantum(currency))
    assert abs(Fraction(prorated) - share) <= step / 2
    assert 0 <= share - Fraction(ceiling) < step
    assert ceiling <= prorated <= round_money(amount, currency)
