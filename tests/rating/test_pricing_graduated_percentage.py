"""graduated_percentage: a rate per tier on the summed amount, graduated flat-amount rule."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.pricing import ChargeUsage, price

# Lago's documented example: 1% + 200 flat, 2% + 300 flat above 1000, 3% + 400 above 10000.
LAGO: dict[str, Any] = {
    "tiers": [
        {"upTo": "1000", "rate": "1", "flatAmount": "200"},
        {"upTo": "10000", "rate": "2", "flatAmount": "300"},
        {"upTo": None, "rate": "3", "flatAmount": "400"},
    ]
}

# The API contract's example.
CONTRACT: dict[str, Any] = {
    "tiers": [
        {"upTo": "1000", "rate": "2", "flatAmount": "0"},
        {"upTo": None, "rate": "1", "flatAmount": "5"},
    ]
}


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        pytest.param("0", "200", id="zero-charges-first-flat"),
        pytest.param("500", "205", id="lago-first-transaction"),
        pytest.param("999.99", "209.9999", id="below-first-bound"),
        pytest.param("1000", "210", id="at-first-bound"),
        pytest.param("1000.5", "510.01", id="split-at-first-bound"),
        pytest.param("1050", "511", id="lago-second-transaction"),
        pytest.param("5050", "591", id="lago-third-transaction"),
        pytest.param("10000", "690", id="at-second-bound"),
        pytest.param("10000.5", "1090.015", id="split-at-second-bound"),
        pytest.param("10001", "1090.03", id="above-second-bound"),
        pytest.param("20000", "1390", id="deep-in-last"),
        pytest.param(
            "1000000000000000000000000000000",
            "30000000000000000000000000790",
            id="huge",
        ),
    ],
)
def test_lago_tiers(quantity: str, amount: str) -> None:
    assert price("graduated_percentage", LAGO, ChargeUsage(D(quantity))).amount == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        pytest.param("0", "0", id="zero"),
        pytest.param("1000", "20", id="at-bound"),
        pytest.param("1000.01", "25.0001", id="just-above-bound"),
        pytest.param("2000", "35", id="two-tiers"),
    ],
)
def test_contract_example(quantity: str, amount: str) -> None:
    assert price("graduated_percentage", CONTRACT, ChargeUsage(D(quantity))).amount == D(amount)


def test_twelve_decimal_rate() -> None:
    props = {"tiers": [{"upTo": None, "rate": "0.000000000123"}]}
    result = price("graduated_percentage", props, ChargeUsage(D("100")))
    assert result.amount == D("0.000000000123")


def test_unit_amount() -> None:
    # 511 / 1050 = 0.486666666666|67
    result = price("graduated_percentage", LAGO, ChargeUsage(D("1050")))
    assert result.unit_amount == D("0.486666666667")
    assert price("graduated_percentage", LAGO, ChargeUsage(D("0"))).unit_amount == 0
