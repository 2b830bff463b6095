"""graduated: each tier prices its portion of q; flat amounts of entered tiers, first always."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.pricing import ChargeUsage, price

# (0, 10]: 1 per unit + 5 flat; (10, 20]: 0.5 + 2 flat; (20, inf): 0.1 + 1 flat.
THREE_TIERS: dict[str, Any] = {
    "tiers": [
        {"upTo": "10", "unitAmount": "1", "flatAmount": "5"},
        {"upTo": 20, "unitAmount": "0.5", "flatAmount": "2"},
        {"upTo": None, "unitAmount": "0.1", "flatAmount": "1"},
    ]
}

# The API contract's example: the first 1000 free, then 0.002 per unit.
FREE_THEN_PAID: dict[str, Any] = {
    "tiers": [
        {"upTo": "1000", "unitAmount": "0", "flatAmount": "0"},
        {"upTo": None, "unitAmount": "0.002"},
    ]
}

TINY_PRICES: dict[str, Any] = {
    "tiers": [
        {"upTo": "1000000", "unitAmount": "0.000000000123"},
        {"upTo": None, "unitAmount": "0.0000000001"},
    ]
}


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        pytest.param("0", "5", id="zero-charges-first-flat"),
        pytest.param("1", "6", id="inside-first"),
        pytest.param("9.5", "14.5", id="below-first-bound"),
        pytest.param("10", "15", id="at-first-bound"),
        pytest.param("10.5", "17.25", id="split-at-first-bound"),
        pytest.param("11", "17.5", id="just-above-first-bound"),
        pytest.param("19.999", "21.9995", id="below-second-bound"),
        pytest.param("20", "22", id="at-second-bound"),
        pytest.param("20.5", "23.05", id="split-at-second-bound"),
        pytest.param("21", "23.1", id="just-above-second-bound"),
        pytest.param("100", "31", id="deep-in-last"),
        pytest.param(
            "1000000000000000000000000000000",
            "100000000000000000000000000021",
            id="huge-quantity",
        ),
    ],
)
def test_three_tiers(quantity: str, amount: str) -> None:
    assert price("graduated", THREE_TIERS, ChargeUsage(D(quantity))).amount == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        pytest.param("0", "0", id="zero"),
        pytest.param("999", "0", id="below-bound"),
        pytest.param("1000", "0", id="at-bound"),
        pytest.param("1000.5", "0.001", id="split"),
        pytest.param("1001", "0.002", id="above-bound"),
        pytest.param("1500", "1", id="1500"),
    ],
)
def test_free_then_paid(quantity: str, amount: str) -> None:
    assert price("graduated", FREE_THEN_PAID, ChargeUsage(D(quantity))).amount == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        pytest.param("1", "0.000000000123", id="one"),
        pytest.param("1000000", "0.000123", id="at-bound"),
        pytest.param("1000001", "0.0001230001", id="above-bound"),
        pytest.param("2000000", "0.000223", id="two-tiers"),
    ],
)
def test_twelve_decimal_prices(quantity: str, amount: str) -> None:
    assert price("graduated", TINY_PRICES, ChargeUsage(D(quantity))).amount == D(amount)


def test_flat_amount_defaults_to_zero_and_single_tier_works() -> None:
    props = {"tiers": [{"upTo": None, "unitAmount": "0.25"}]}
    assert price("graduated", props, ChargeUsage(D("8"))).amount == D("2")


def test_flat_only_tiers() -> None:
    props = {
        "tiers": [
            {"upTo": "100", "unitAmount": "0", "flatAmount": "10"},
            {"upTo": None, "unitAmount": "0", "flatAmount": "15"},
        ]
    }
    assert price("graduated", props, ChargeUsage(D("100"))).amount == D("10")
    assert price("graduated", props, ChargeUsage(D("100.000001"))).amount == D("25")


@pytest.mark.parametrize(
    ("quantity", "unit_amount"),
    [
        pytest.param("0", "0", id="zero-quantity"),
        pytest.param("10", "1.5", id="exact"),
        # 17.25 / 10.5 = 1.642857142857|142857...
        pytest.param("10.5", "1.642857142857", id="rounded-down"),
        # 23.1 / 21 = 1.1
        pytest.param("21", "1.1", id="exact-after-bound"),
        # 31 / 100
        pytest.param("100", "0.31", id="hundred"),
    ],
)
def test_unit_amount_is_amount_over_quantity(quantity: str, unit_amount: str) -> None:
    result = price("graduated", THREE_TIERS, ChargeUsage(D(quantity)))
    assert result.unit_amount == D(unit_amount)
    assert result.unit_amount == result.unit_amount.quantize(D("1e-12"))


def test_docs_example() -> None:
    # docs/pricing-models.md: 10 + 9000 * 0.002 + (5 + 2345.5 * 0.001).
    props = {
        "tiers": [
            {"upTo": "1000", "unitAmount": "0", "flatAmount": "10"},
            {"upTo": "10000", "unitAmount": "0.002"},
            {"upTo": None, "unitAmount": "0.001", "flatAmount": "5"},
        ]
    }
    result = price("graduated", props, ChargeUsage(D("12345.5")))
    assert result.amount == D("35.3455")
    assert result.unit_amount == D("0.002863027014")
