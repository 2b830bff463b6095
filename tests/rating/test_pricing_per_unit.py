"""per_unit: q * unitAmount, exactly."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.pricing import ChargeUsage, PricedCharge, price


@pytest.mark.parametrize(
    ("unit_amount", "quantity", "amount", "unit"),
    [
        pytest.param("0.002", "0", "0", "0", id="zero-quantity"),
        pytest.param("0.002", "1", "0.002", "0.002", id="one-unit"),
        pytest.param("0.002", "1000", "2", "0.002", id="thousand"),
        pytest.param("0.002", "10.5", "0.021", "0.002", id="fractional-quantity"),
        pytest.param("0", "1000", "0", "0", id="free-price"),
        pytest.param("0.000000000123", "1", "0.000000000123", "0.000000000123", id="12dp-one"),
        pytest.param("0.000000000123", "1000000000000", "123", "0.000000000123", id="12dp-1e12"),
        pytest.param(
            "0.000000000123", "0.000001", "0.000000000000000123", "0.000000000123", id="12dp-tiny"
        ),
        pytest.param(
            "0.002",
            "123456789012345678901234567890",
            "246913578024691357802469135.78",
            "0.002",
            id="huge-quantity-beyond-28-digits",
        ),
        pytest.param(
            "999999999.999999999999",
            "99999999999999999999",
            "99999999999999999998900000000.000000000001",  # (1e9 - 1e-12) * (1e20 - 1)
            "999999999.999999999999",
            id="huge-both",
        ),
    ],
)
def test_per_unit(unit_amount: str, quantity: str, amount: str, unit: str) -> None:
    result = price("per_unit", {"unitAmount": unit_amount}, ChargeUsage(D(quantity)))
    assert result == PricedCharge(amount=D(amount), unit_amount=D(unit))


@pytest.mark.parametrize(
    ("raw", "quantity", "amount"),
    [
        pytest.param(0.1, "3", "0.3", id="float-through-repr"),
        pytest.param(2, "10.5", "21", id="int"),
        pytest.param(D("0.0020"), "1000", "2", id="decimal-trailing-zeros"),
        pytest.param(" 0.5 ", "3", "1.5", id="padded-string"),
        pytest.param("1e-3", "2000", "2", id="exponent-string"),
    ],
)
def test_per_unit_accepts_numbers(raw: Any, quantity: str, amount: str) -> None:
    assert price("per_unit", {"unitAmount": raw}, ChargeUsage(D(quantity))).amount == D(amount)


def test_amount_is_not_rounded() -> None:
    result = price("per_unit", {"unitAmount": "0.000000000001"}, ChargeUsage(D("3")))
    assert result.amount == D("0.000000000003")
    assert result.amount != 0
