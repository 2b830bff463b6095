"""volume: the tier containing q prices all units, plus that tier's flat amount."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.pricing import ChargeUsage, PricedCharge, price

THREE_TIERS: dict[str, Any] = {
    "tiers": [
        {"upTo": "10", "unitAmount": "1", "flatAmount": "5"},
        {"upTo": "20", "unitAmount": "0.5", "flatAmount": "2"},
        {"upTo": None, "unitAmount": "0.1", "flatAmount": "1"},
    ]
}

TINY_PRICES: dict[str, Any] = {
    "tiers": [
        {"upTo": 1000, "unitAmount": "0.000000000123"},
        {"upTo": None, "unitAmount": "0.0000000001"},
    ]
}


@pytest.mark.parametrize(
    ("quantity", "amount", "unit"),
    [
        pytest.param("0", "5", "0", id="zero-falls-in-first-tier"),
        pytest.param("1", "6", "1", id="inside-first"),
        pytest.param("9.5", "14.5", "1", id="below-first-bound"),
        pytest.param("10", "15", "1", id="at-first-bound-is-first-tier"),
        pytest.param("10.5", "7.25", "0.5", id="fraction-above-bound-is-second-tier"),
        pytest.param("11", "7.5", "0.5", id="just-above-first-bound"),
        pytest.param("20", "12", "0.5", id="at-second-bound"),
        pytest.param("20.5", "3.05", "0.1", id="fraction-above-second-bound"),
        pytest.param("21", "3.1", "0.1", id="just-above-second-bound"),
        pytest.param("1000", "101", "0.1", id="deep-in-last"),
        pytest.param(
            "1000000000000000000000000000000",
            "100000000000000000000000000001",
            "0.1",
            id="huge-quantity",
        ),
    ],
)
def test_three_tiers(quantity: str, amount: str, unit: str) -> None:
    result = price("volume", THREE_TIERS, ChargeUsage(D(quantity)))
    assert result == PricedCharge(amount=D(amount), unit_amount=D(unit))


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        pytest.param("1", "0.000000000123", id="one"),
        pytest.param("1000", "0.000000123", id="at-bound"),
        pytest.param("1000.5", "0.00000010005", id="split"),
        pytest.param("1001", "0.0000001001", id="above-bound"),
    ],
)
def test_twelve_decimal_prices(quantity: str, amount: str) -> None:
    assert price("volume", TINY_PRICES, ChargeUsage(D(quantity))).amount == D(amount)


def test_volume_is_not_monotone_across_a_bound() -> None:
    # The documented property of volume pricing: crossing a bound can lower the total.
    at_bound = price("volume", THREE_TIERS, ChargeUsage(D("10"))).amount
    above = price("volume", THREE_TIERS, ChargeUsage(D("11"))).amount
    assert above < at_bound
