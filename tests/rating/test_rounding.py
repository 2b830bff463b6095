"""A metric's rounding of its period quantity (rating/rounding.py): table cases, the
properties every rounding must have, and where the pipeline applies it (before the hard
cap, per charge and group, and in late usage)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.context import BillingContext
from rating.late import late_usage_lines
from rating.model import (
    Aggregation,
    Customer,
    Interval,
    LineType,
    MeteredQuantity,
    Metric,
    Period,
    Plan,
    Subscription,
    UsageCharge,
)
from rating.pipeline import rate_subscription
from rating.rounding import QuantityRounding, RoundingFunction, round_quantity, rounded_usage
from tests.helpers.dates import at

D = Decimal
ROUND, CEIL, FLOOR = RoundingFunction.ROUND, RoundingFunction.CEIL, RoundingFunction.FLOOR


@pytest.mark.parametrize(
    ("quantity", "function", "precision", "expected"),
    [
        ("10.2", CEIL, 0, "11"),
        ("10.2", FLOOR, 0, "10"),
        ("10.2", ROUND, 0, "10"),
        ("10.5", ROUND, 0, "11"),  # half up
        ("10.49", ROUND, 0, "10"),
        ("-10.5", ROUND, 0, "-11"),  # ties away from zero, as money rounds
        ("-10.2", CEIL, 0, "-10"),  # toward +∞
        ("-10.2", FLOOR, 0, "-11"),  # toward −∞
        ("11", CEIL, 0, "11"),
        ("0", CEIL, 0, "0"),
        ("0.000000000001", CEIL, 0, "1"),
        ("1.2345", ROUND, 2, "1.23"),
        ("1.235", ROUND, 2, "1.24"),
        ("1.231", CEIL, 2, "1.24"),
        ("1.239", FLOOR, 2, "1.23"),
        ("1234", ROUND, -2, "1200"),
        ("1250", ROUND, -2, "1300"),
        ("1201", CEIL, -2, "1300"),
        ("1299", FLOOR, -2, "1200"),
        ("49", ROUND, -2, "0"),
        ("50", ROUND, -2, "100"),
        ("5.333333333333", ROUND, 15, "5.333333333333"),
        ("123456789012345678901234567.5", ROUND, 0, "123456789012345678901234568"),
    ],
)
def test_rounding_table(
    quantity: str, function: RoundingFunction, precision: int, expected: str
) -> None:
    result = round_quantity(D(quantity), QuantityRounding(function, precision))
    assert result == D(expected)
    # A plain decimal, never an exponent form: quantities are shown and stored as such.
    assert "E" not in str(result)


def test_no_rounding_keeps_the_exact_quantity() -> None:
    assert str(round_quantity(D("10.200"), None)) == "10.200"


@pytest.mark.parametrize("precision", [-16, 16])
def test_precision_is_bounded(precision: int) -> None:
    with pytest.raises(ValueError, match="between -15 and 15"):
        QuantityRounding(CEIL, precision)


quantities = st.decimals(
    min_value=D("-1e15"), max_value=D("1e15"), places=12, allow_nan=False, allow_infinity=False
)
precisions = st.integers(min_value=-15, max_value=15)
functions = st.sampled_from(list(RoundingFunction))


@settings(max_examples=300, deadline=None)
@given(quantities, precisions)
def test_ceil_is_never_below_and_floor_never_above(q: Decimal, precision: int) -> None:
    ceil = round_quantity(q, QuantityRounding(CEIL, precision))
    floor = round_quantity(q, QuantityRounding(FLOOR, precision))
    nearest = round_quantity(q, QuantityRounding(ROUND, precision))
    assert floor <= q <= ceil
    assert floor <= nearest <= ceil
    step = D(1).scaleb(-precision)
    with localcontext(prec=100):  # exact differences of 30-digit values
        assert ceil - floor in (0, step)  # the two neighbours on the grid
        # Half up: never further than half a step, and a tie goes away from zero.
        assert abs(nearest - q) <= step / 2
        if abs(nearest - q) == step / 2:
            assert abs(nearest) > abs(q)


@settings(max_examples=300, deadline=None)
@given(quantities, precisions, functions)
def test_rounding_is_idempotent_and_on_the_grid(
    q: Decimal, precision: int, function: RoundingFunction
) -> None:
    rule = QuantityRounding(function, precision)
    once = round_quantity(q, rule)
    assert round_quantity(once, rule) == once
    step = D(1).scaleb(-precision)
    with localcontext(prec=100):  # 15 integer and 15 decimal digits exceed the default 28
        assert once % step == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=10**12), functions)
def test_precision_minus_two_rounds_to_hundreds(n: int, function: RoundingFunction) -> None:
    result = round_quantity(D(n) / 7, QuantityRounding(function, -2))
    assert result % 100 == 0
    assert abs(result - D(n) / 7) < 100


# -- where the pipeline applies it --------------------------------------------------

CUSTOMER = Customer("acme", "Acme", "USD")
OCTOBER = Period(at(2026, 10), at(2026, 11))


def _metric(function: RoundingFunction | None, precision: int = 0) -> Metric:
    rounding = None if function is None else QuantityRounding(function, precision)
    return Metric("gb", "GB", Aggregation.SUM, rounding=rounding)


def _invoice(charge: UsageCharge, *usage: MeteredQuantity) -> list[tuple[str, str, str]]:
    plan = Plan("p", "P", "USD", Interval.MONTHLY, charges=(charge,))
    context = BillingContext(
        Subscription("sub", CUSTOMER, plan, at(2026, 10)), OCTOBER, usage=usage
    )
    lines = rate_subscription(context).invoice.lines
    return [(str(ln.quantity), str(ln.unit_amount), str(ln.amount)) for ln in lines]


def test_the_rounded_quantity_is_priced() -> None:
    charge = UsageCharge("c", _metric(CEIL), "per_unit", {"unitAmount": "0.5"})
    assert _invoice(charge, MeteredQuantity("c", D("10.2"))) == [("11", "0.5", "5.50")]


def test_each_group_is_rounded_alone() -> None:
    metric = Metric("gb", "GB", Aggregation.SUM, group_by=("region",),
                    rounding=QuantityRounding(CEIL))  # fmt: skip
    charge = UsageCharge("c", metric, "per_unit", {"unitAmount": "1"})
    eu = MeteredQuantity("c", D("0.1"), group=(("region", "eu"),))
    us = MeteredQuantity("c", D("0.1"), group=(("region", "us"),))
    assert _invoice(charge, eu, us) == [("1", "1", "1.00"), ("1", "1", "1.00")]


def test_the_cap_limits_the_rounded_quantity() -> None:
    # 10.2 rounds up to 11, over the cap of 10.5: 10.5 are billed, never 11.
    capped = UsageCharge("c", _metric(CEIL), "per_unit", {"unitAmount": "1"}, hard_cap=D("10.5"))
    assert _invoice(capped, MeteredQuantity("c", D("10.2"))) == [("10.5", "1", "10.50")]
    # Under the cap the rounded quantity is billed whole.
    roomy = UsageCharge("c", _metric(CEIL), "per_unit", {"unitAmount": "1"}, hard_cap=D("20"))
    assert _invoice(roomy, MeteredQuantity("c", D("10.2"))) == [("11", "1", "11.00")]


def test_the_allowance_comes_off_the_rounded_quantity() -> None:
    charge = UsageCharge(
        "c", _metric(FLOOR), "per_unit", {"unitAmount": "2"}, included_quantity=D("3")
    )
    # floor(10.9) = 10, minus 3 included: 7 × 2
    assert _invoice(charge, MeteredQuantity("c", D("10.9"))) == [("7", "2", "14.00")]


def test_rounded_usage_leaves_other_charges_alone() -> None:
    rounded = UsageCharge("a", _metric(CEIL), "per_unit", {"unitAmount": "1"})
    exact = UsageCharge("b", _metric(None), "per_unit", {"unitAmount": "1"})
    usage = (MeteredQuantity("a", D("1.5")), MeteredQuantity("b", D("1.5")),
             MeteredQuantity("z", D("1.5")))  # fmt: skip
    assert [u.quantity for u in rounded_usage((rounded, exact), usage)] == [D(2), D("1.5"),
                                                                            D("1.5")]  # fmt: skip


def test_late_usage_is_the_difference_of_rounded_quantities() -> None:
    charge = UsageCharge("c", _metric(CEIL), "per_unit", {"unitAmount": "0.5"})
    # Billed 10.2 → 11; now 11.4 is known → 12: one more unit, 0.50.
    (line,) = late_usage_lines(
        (charge,), OCTOBER, "inv_1", {("c", ()): D("10.2")}, {("c", ()): D("11.4")}, "USD"
    )
    assert (line.type, line.quantity, line.amount) == (LineType.USAGE_FEE, D(1), D("0.50"))
    # 10.2 → 10.9 stays 11 once rounded: nothing more is due.
    assert (
        late_usage_lines(
            (charge,), OCTOBER, "inv_1", {("c", ()): D("10.2")}, {("c", ()): D("10.9")}, "USD"
        )
        == ()
    )
