"""package: ceil(max(q - freeUnits, 0) / packageSize) * amount, exactly."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rating.pricing import ChargeUsage, PricedCharge, price


@pytest.mark.parametrize(
    ("props", "quantity", "amount"),
    [
        pytest.param({}, "0", "0", id="zero"),
        pytest.param({}, "1", "5", id="one-unit-starts-a-package"),
        pytest.param({}, "999", "5", id="below-size"),
        pytest.param({}, "1000", "5", id="at-size"),
        pytest.param({}, "1000.5", "10", id="fraction-above-size"),
        pytest.param({}, "1001", "10", id="above-size"),
        pytest.param({}, "2000", "10", id="two-packages"),
        pytest.param({}, "2001", "15", id="third-package"),
        pytest.param({"freeUnits": "100"}, "100", "0", id="free-at-bound"),
        pytest.param({"freeUnits": "100"}, "50", "0", id="free-below-bound"),
        pytest.param({"freeUnits": "100"}, "100.5", "5", id="free-split"),
        pytest.param({"freeUnits": "100"}, "1100", "5", id="free-plus-one-package"),
        pytest.param({"freeUnits": "100"}, "1101", "10", id="free-plus-two-packages"),
        pytest.param({"packageSize": "0.5", "amount": "1"}, "1.2", "3", id="fractional-size"),
        pytest.param({"packageSize": "0.5", "amount": "1"}, "1.5", "3", id="fractional-exact"),
        pytest.param(
            {"packageSize": "1", "amount": "0.000000000123"},
            "3",
            "0.000000000369",
            id="12dp-amount",
        ),
        pytest.param(
            {},
            "1000000000000000000000000000000",
            "5000000000000000000000000000",
            id="huge-exact-multiple",
        ),
        pytest.param(
            {},
            "1000000000000000000000000000001",
            "5000000000000000000000000005",
            id="huge-plus-one",
        ),
        pytest.param(
            {"packageSize": "3"},
            "100000000000000000000000000000000",
            "166666666666666666666666666666670",
            id="huge-non-dividing",
        ),
    ],
)
def test_package(props: dict[str, str], quantity: str, amount: str) -> None:
    properties = {"amount": "5", "packageSize": "1000", **props}
    assert price("package", properties, ChargeUsage(D(quantity))).amount == D(amount)


@pytest.mark.parametrize(
    ("properties", "quantity", "unit"),
    [
        pytest.param({"amount": "10", "packageSize": 1000}, "0", "0", id="zero"),
        pytest.param({"amount": "10", "packageSize": 1000}, "1000", "0.01", id="full-package"),
        # 20 / 1500 = 0.013333333333|33...
        pytest.param({"amount": "10", "packageSize": 1000}, "1500", "0.013333333333", id="down"),
        # 10 / 1500 * ... : 10 / 1200 = 0.008333333333|33
        pytest.param({"amount": "10", "packageSize": 2000}, "1200", "0.008333333333", id="one-pkg"),
        # 20 / 1800 = 0.011111111111|11 ; 10 / 1500 = 0.006666666666|67 -> rounds up
        pytest.param({"amount": "10", "packageSize": 2000}, "1500", "0.006666666667", id="up"),
        # 0.000000000001 / 2 = 0.0000000000005: exactly half, ROUND_HALF_UP goes up.
        pytest.param(
            {"amount": "0.000000000001", "packageSize": 2}, "2", "0.000000000001", id="half-up"
        ),
    ],
)
def test_unit_amount(properties: dict[str, object], quantity: str, unit: str) -> None:
    result = price("package", properties, ChargeUsage(D(quantity)))
    assert result.unit_amount == D(unit)


def test_free_units_default_to_zero() -> None:
    result = price("package", {"amount": 5, "packageSize": 10}, ChargeUsage(D("10")))
    assert result == PricedCharge(amount=D("5"), unit_amount=D("0.5"))
