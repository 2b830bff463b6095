"""validate_properties: exact error messages and the normalized form."""

from __future__ import annotations

import re
from decimal import Decimal as D
from typing import Any

import pytest

from rating.pricing import (
    MODELS,
    ChargeUsage,
    InvalidChargeProperties,
    InvalidChargeUsage,
    needs_event_amounts,
    price,
    validate_properties,
)


def _tiers(*tiers: dict[str, Any]) -> dict[str, Any]:
    return {"tiers": list(tiers)}


LAST = {"upTo": None, "unitAmount": "1"}

INVALID: list[Any] = [
    # model and shape
    pytest.param(
        "tiered",
        {},
        "unknown charge model 'tiered' (expected one of: graduated, graduated_percentage, "
        "package, per_unit, percentage, volume)",
        id="unknown-model",
    ),
    pytest.param("per_unit", ["unitAmount"], "properties must be an object", id="not-an-object"),
    # per_unit and the decimal rules shared by every price
    pytest.param("per_unit", {}, "unitAmount is required", id="missing"),
    pytest.param("per_unit", {"unitAmount": None}, "unitAmount is required", id="null"),
    pytest.param(
        "per_unit", {"unitAmount": "-1"}, "unitAmount must not be negative (got -1)", id="negative"
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": "abc"},
        "unitAmount 'abc' is not a decimal number",
        id="not-a-number",
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": True},
        "unitAmount must be a number, not a boolean",
        id="boolean",
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": [1]},
        "unitAmount must be a decimal string or a number",
        id="list",
    ),
    pytest.param("per_unit", {"unitAmount": "NaN"}, "unitAmount must be a finite number", id="nan"),
    pytest.param(
        "per_unit", {"unitAmount": float("inf")}, "unitAmount must be a finite number", id="inf"
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": "0.0000000000001"},
        "unitAmount has more than 12 decimal places (got 0.0000000000001)",
        id="13-decimals",
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": "1e-999999"},
        "unitAmount has more than 12 decimal places (got 1E-999999)",
        id="absurd-decimals",
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": "1e30"},
        "unitAmount is too large (more than 30 integer digits)",
        id="too-large",
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": "1", "unit_amount": "1"},
        "unknown property 'unit_amount' for per_unit: did you mean 'unitAmount'?",
        id="snake-case-key",
    ),
    pytest.param(
        "per_unit",
        {"unitAmount": "1", "currency": "USD"},
        "unknown property 'currency' for per_unit (allowed: unitAmount)",
        id="extra-key",
    ),
    # tiers
    pytest.param("graduated", {}, "tiers must be a non-empty list", id="tiers-missing"),
    pytest.param("volume", {"tiers": []}, "tiers must be a non-empty list", id="tiers-empty"),
    pytest.param("graduated", {"tiers": "1,2"}, "tiers must be a non-empty list", id="tiers-str"),
    pytest.param("graduated", {"tiers": ["x"]}, "tiers[0] must be an object", id="tier-not-obj"),
    pytest.param(
        "graduated",
        _tiers({"upTo": "1000", "unitAmount": "0"}, {"upTo": "1000", "unitAmount": "1"}, LAST),
        "tiers[1].upTo must be greater than tiers[0].upTo (1000)",
        id="equal-bounds",
    ),
    pytest.param(
        "volume",
        _tiers({"upTo": 1000, "unitAmount": "0"}, {"upTo": 500, "unitAmount": "1"}, LAST),
        "tiers[1].upTo must be greater than tiers[0].upTo (1000)",
        id="descending-bounds",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": 10, "unitAmount": "1"}),
        "tiers[0].upTo must be null: the last tier has no upper bound (got 10)",
        id="last-bounded",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": None, "unitAmount": "1"}, LAST),
        "tiers[0].upTo is required: only the last tier has upTo null (no upper bound)",
        id="middle-unbounded",
    ),
    pytest.param(
        "graduated",
        _tiers({"unitAmount": "1"}, LAST),
        "tiers[0].upTo is required: only the last tier has upTo null (no upper bound)",
        id="middle-upto-missing",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": 0, "unitAmount": "1"}, LAST),
        "tiers[0].upTo must be greater than 0 (got 0)",
        id="first-bound-zero",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": "-5", "unitAmount": "1"}, LAST),
        "tiers[0].upTo must not be negative (got -5)",
        id="negative-bound",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": 10, "unitAmount": "1"}, {"upTo": None}),
        "tiers[1].unitAmount is required",
        id="tier-price-missing",
    ),
    pytest.param(
        "volume",
        _tiers({"upTo": 10, "unitAmount": "1", "flatAmount": "-5"}, LAST),
        "tiers[0].flatAmount must not be negative (got -5)",
        id="negative-flat",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": None, "unitAmount": "0.0000000000001"}),
        "tiers[0].unitAmount has more than 12 decimal places (got 0.0000000000001)",
        id="tier-13-decimals",
    ),
    pytest.param(
        "graduated",
        _tiers({"upTo": None, "rate": "1"}),
        "unknown property 'tiers[0].rate' for graduated (allowed: upTo, unitAmount, flatAmount)",
        id="rate-in-graduated",
    ),
    pytest.param(
        "volume",
        _tiers({"up_to": None, "unitAmount": "1"}),
        "unknown property 'tiers[0].up_to' for volume: did you mean 'upTo'?",
        id="snake-case-tier-key",
    ),
    pytest.param(
        "graduated",
        {"tiers": [LAST], "flatAmount": "1"},
        "unknown property 'flatAmount' for graduated (allowed: tiers)",
        id="extra-top-level-key",
    ),
    # graduated_percentage
    pytest.param(
        "graduated_percentage",
        _tiers({"upTo": None, "rate": "101"}),
        "tiers[0].rate must be between 0 and 100 (got 101)",
        id="tier-rate-over-100",
    ),
    pytest.param(
        "graduated_percentage",
        _tiers({"upTo": None, "unitAmount": "1"}),
        "unknown property 'tiers[0].unitAmount' for graduated_percentage "
        "(allowed: upTo, rate, flatAmount)",
        id="unit-amount-in-graduated-percentage",
    ),
    pytest.param(
        "graduated_percentage",
        _tiers({"upTo": None}),
        "tiers[0].rate is required",
        id="tier-rate-missing",
    ),
    # package
    pytest.param(
        "package",
        {"amount": "5", "packageSize": "0"},
        "packageSize must be greater than 0",
        id="size-zero",
    ),
    pytest.param(
        "package",
        {"amount": "5", "packageSize": "-10"},
        "packageSize must not be negative (got -10)",
        id="size-negative",
    ),
    pytest.param("package", {"amount": "5"}, "packageSize is required", id="size-missing"),
    pytest.param("package", {"packageSize": "10"}, "amount is required", id="amount-missing"),
    pytest.param(
        "package",
        {"amount": "5", "packageSize": "10", "freeUnits": "-1"},
        "freeUnits must not be negative (got -1)",
        id="free-negative",
    ),
    # percentage
    pytest.param("percentage", {}, "rate is required", id="rate-missing"),
    pytest.param(
        "percentage", {"rate": "150"}, "rate must be between 0 and 100 (got 150)", id="rate-150"
    ),
    pytest.param(
        "percentage", {"rate": "-1"}, "rate must not be negative (got -1)", id="rate-negative"
    ),
    pytest.param(
        "percentage",
        {"rate": "1", "perTransactionMin": "10", "perTransactionMax": "5"},
        "perTransactionMin (10) must not be greater than perTransactionMax (5)",
        id="min-above-max",
    ),
    pytest.param(
        "percentage",
        {"rate": "1", "freeUnitsPerEvents": 2.5},
        "freeUnitsPerEvents must be a whole number (got 2.5)",
        id="fractional-event-count",
    ),
    pytest.param(
        "percentage",
        {"rate": "1", "freeUnitsPerEvents": -1},
        "freeUnitsPerEvents must not be negative (got -1)",
        id="negative-event-count",
    ),
    pytest.param(
        "percentage",
        {"rate": "1", "fixedAmount": "-0.1"},
        "fixedAmount must not be negative (got -0.1)",
        id="negative-fixed",
    ),
    pytest.param(
        "percentage",
        {"rate": "1", "per_transaction_min_amount": "1"},
        "unknown property 'per_transaction_min_amount' for percentage (allowed: rate, "
        "fixedAmount, freeUnitsPerEvents, freeUnitsPerTotalAggregation, perTransactionMin, "
        "perTransactionMax)",
        id="lago-key",
    ),
]


@pytest.mark.parametrize(("model", "properties", "message"), INVALID)
def test_invalid_properties(model: str, properties: Any, message: str) -> None:
    with pytest.raises(InvalidChargeProperties, match=f"^{re.escape(message)}$"):
        validate_properties(model, properties)


@pytest.mark.parametrize(("model", "properties", "message"), INVALID)
def test_price_and_needs_event_amounts_validate_too(
    model: str, properties: Any, message: str
) -> None:
    with pytest.raises(InvalidChargeProperties, match=f"^{re.escape(message)}$"):
        price(model, properties, ChargeUsage(D(1)))
    with pytest.raises(InvalidChargeProperties, match=f"^{re.escape(message)}$"):
        needs_event_amounts(model, properties)


def test_invalid_properties_is_a_value_error() -> None:
    assert issubclass(InvalidChargeProperties, ValueError)
    assert issubclass(InvalidChargeUsage, ValueError)


@pytest.mark.parametrize(
    ("model", "properties", "normalized"),
    [
        pytest.param("per_unit", {"unitAmount": 0.1}, {"unitAmount": "0.1"}, id="float"),
        pytest.param("per_unit", {"unitAmount": 2}, {"unitAmount": "2"}, id="int"),
        pytest.param("per_unit", {"unitAmount": "1.500"}, {"unitAmount": "1.5"}, id="zeros"),
        pytest.param("per_unit", {"unitAmount": "1e3"}, {"unitAmount": "1000"}, id="exponent"),
        pytest.param("per_unit", {"unitAmount": " 0.002 "}, {"unitAmount": "0.002"}, id="spaces"),
        pytest.param("per_unit", {"unitAmount": D("-0")}, {"unitAmount": "0"}, id="minus-zero"),
        pytest.param(
            "per_unit",
            {"unitAmount": 1e-12},
            {"unitAmount": "0.000000000001"},
            id="float-1e-12",
        ),
        pytest.param(
            "per_unit",
            {"unitAmount": "123456789012345678901234567890.000000000001"},
            {"unitAmount": "123456789012345678901234567890.000000000001"},
            id="42-digits-kept-exactly",
        ),
        pytest.param(
            "graduated",
            _tiers({"upTo": 1000, "unitAmount": 0}, {"upTo": None, "unitAmount": 0.002}),
            _tiers(
                {"upTo": "1000", "unitAmount": "0", "flatAmount": "0"},
                {"upTo": None, "unitAmount": "0.002", "flatAmount": "0"},
            ),
            id="graduated-numbers-and-default-flat",
        ),
        pytest.param(
            "volume",
            _tiers({"upTo": "10.50", "unitAmount": "1", "flatAmount": 5}, {"unitAmount": "0.5"}),
            _tiers(
                {"upTo": "10.5", "unitAmount": "1", "flatAmount": "5"},
                {"upTo": None, "unitAmount": "0.5", "flatAmount": "0"},
            ),
            id="volume-missing-last-upto-is-null",
        ),
        pytest.param(
            "graduated_percentage",
            _tiers({"upTo": 1000, "rate": 2}, {"upTo": None, "rate": "1", "flatAmount": "5.00"}),
            _tiers(
                {"upTo": "1000", "rate": "2", "flatAmount": "0"},
                {"upTo": None, "rate": "1", "flatAmount": "5"},
            ),
            id="graduated-percentage",
        ),
        pytest.param(
            "package",
            {"amount": 5, "packageSize": 1000},
            {"amount": "5", "packageSize": "1000", "freeUnits": "0"},
            id="package-default-free-units",
        ),
        pytest.param("percentage", {"rate": 1.5}, {"rate": "1.5"}, id="percentage-rate-only"),
        pytest.param(
            "percentage",
            {
                "perTransactionMax": 10,
                "rate": "1.50",
                "fixedAmount": 0.1,
                "freeUnitsPerEvents": "3",
                "freeUnitsPerTotalAggregation": 500,
                "perTransactionMin": "0.50",
            },
            {
                "rate": "1.5",
                "fixedAmount": "0.1",
                "freeUnitsPerEvents": 3,
                "freeUnitsPerTotalAggregation": "500",
                "perTransactionMin": "0.5",
                "perTransactionMax": "10",
            },
            id="percentage-everything",
        ),
        pytest.param(
            "percentage",
            {"rate": "1", "freeUnitsPerEvents": 3.0, "perTransactionMin": None},
            {"rate": "1", "freeUnitsPerEvents": 3},
            id="percentage-null-means-absent",
        ),
    ],
)
def test_normalized(model: str, properties: Any, normalized: dict[str, Any]) -> None:
    assert validate_properties(model, properties) == normalized
    assert validate_properties(model, normalized) == normalized


def test_models() -> None:
    assert (
        frozenset(
            {"per_unit", "graduated", "volume", "package", "percentage", "graduated_percentage"}
        )
        == MODELS
    )


def test_validated_properties_are_a_fresh_dict() -> None:
    props = {"unitAmount": "1"}
    first = validate_properties("per_unit", props)
    first["unitAmount"] = "changed"
    assert validate_properties("per_unit", props) == {"unitAmount": "1"}


def test_cached_parse_does_not_confuse_types() -> None:
    # 1 and True hash alike; only the integer is a valid event count.
    assert validate_properties("percentage", {"rate": 1, "freeUnitsPerEvents": 1})
    with pytest.raises(InvalidChargeProperties):
        validate_properties("percentage", {"rate": 1, "freeUnitsPerEvents": True})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantity": D("-1")}, "quantity must be a finite number >= 0 (got -1)"),
        ({"quantity": D("NaN")}, "quantity must be a finite number >= 0 (got NaN)"),
        ({"quantity": D("1"), "event_count": -1}, "event_count must be >= 0 (got -1)"),
    ],
)
def test_invalid_usage(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidChargeUsage, match=f"^{re.escape(message)}$"):
        ChargeUsage(**kwargs)
