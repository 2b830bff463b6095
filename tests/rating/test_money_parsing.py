"""The one decimal parser: exact from strings and JSON numbers, an InvalidInput naming
the field otherwise; and the display forms the API shows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import InvalidInput
from rating.money import InvalidAmount, canonical, format_decimal, format_money, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.50", "12.50"), (" 7 ", "7"), (12.5, "12.5"), (0.1, "0.1"), (1e3, "1000.0"), (3, "3"),
     (Decimal("1E+3"), "1E+3"), ("0.000000000001", "1E-12")],
)  # fmt: skip
def test_parses_exactly(value: object, expected: str) -> None:
    assert str(to_decimal(value)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", "baseFee 'abc' is not a decimal number"), (True, "baseFee must be a number, not a"),
     (None, "baseFee must be a decimal string or a number"), ([1], "baseFee must be a decimal"),
     ("NaN", "baseFee must be a finite number"), (float("inf"), "baseFee must be a finite")],
)  # fmt: skip
def test_refuses_with_an_invalid_input_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        to_decimal(value, what="baseFee")
    assert isinstance(caught.value, InvalidAmount) and isinstance(caught.value, ValueError)
    assert caught.value.message.startswith(message)
    assert caught.value.code == "validation_error"


def test_display_forms() -> None:
    assert [format_decimal(Decimal(v)) for v in ("1234.500", "-0", "0E-12", "1E+3")] == [
        "1234.5",
        "0",
        "0",
        "1000",
    ]
    assert format(canonical(Decimal("19.000")), "f") == "19"
    assert [format_money(Decimal("10.005"), c) for c in ("USD", "JPY", "BHD")] == [
        "10.01",
        "10",
        "10.005",
    ]
