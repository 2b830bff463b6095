"""percentage: rate on the summed amount, fixed fee, free units and per-transaction clamps.

Each choice made where BILLING.md is silent (see rating/pricing/percentage.py and
docs/pricing-models.md) has a case here.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.pricing import ChargeUsage, InvalidChargeUsage, needs_event_amounts, price


def _usage(*amounts: str) -> ChargeUsage:
    values = tuple(D(a) for a in amounts)
    return ChargeUsage(quantity=sum(values, D(0)), event_count=len(values), event_amounts=values)


@pytest.mark.parametrize(
    ("props", "quantity", "amount"),
    [
        pytest.param({"rate": "1.5"}, "0", "0", id="zero"),
        pytest.param({"rate": "1.5"}, "1000", "15", id="rate-only"),
        pytest.param({"rate": "1.5"}, "0.01", "0.00015", id="tiny-amount-not-rounded"),
        pytest.param({"rate": "0"}, "1000", "0", id="zero-rate"),
        pytest.param({"rate": "100"}, "12.34", "12.34", id="full-rate"),
        pytest.param({"rate": "0.000000000123"}, "100", "0.000000000123", id="12dp-rate"),
        pytest.param(
            {"rate": "1.5"},
            "1000000000000000000000000000000",
            "15000000000000000000000000000",
            id="huge",
        ),
        pytest.param({"rate": "1.5", "freeUnitsPerTotalAggregation": "500"}, "400", "0", id="x-1"),
        pytest.param({"rate": "1.5", "freeUnitsPerTotalAggregation": "500"}, "500", "0", id="x-2"),
        pytest.param(
            {"rate": "1.5", "freeUnitsPerTotalAggregation": "500"}, "500.5", "0.0075", id="x-3"
        ),
        pytest.param(
            {"rate": "1.5", "freeUnitsPerTotalAggregation": "500"}, "1000", "7.5", id="x-4"
        ),
        pytest.param(
            {"rate": "1.5", "freeUnitsPerTotalAggregation": "0"}, "1000", "15", id="x-zero-unset"
        ),
    ],
)
def test_from_quantity_alone(props: dict[str, Any], quantity: str, amount: str) -> None:
    # No per-transaction rule: amounts are not needed, the event count does not matter.
    assert not needs_event_amounts("percentage", props)
    usage = ChargeUsage(D(quantity), event_count=7)
    assert price("percentage", props, usage).amount == D(amount)


@pytest.mark.parametrize(
    ("props", "amounts", "amount"),
    [
        pytest.param(
            {"rate": "2", "fixedAmount": "0.10"},
            ("100", "50"),
            "3.2",
            id="fixed-per-transaction",
        ),
        pytest.param(
            {"rate": "2", "fixedAmount": "0.10"},
            ("100", "50", "0"),
            "3.3",
            id="zero-amount-transaction-pays-fixed",
        ),
        pytest.param(
            {"rate": "1", "fixedAmount": "0.10"},
            ("0", "0"),
            "0",
            id="zero-total-costs-nothing-fixed-included",
        ),
        # Lago's documented example: first 3 events or $500 free; the 4th is charged
        # although the running total (450) is under 500: 1.2% of 50 + 0.10 = 0.70.
        pytest.param(
            {
                "rate": "1.2",
                "fixedAmount": "0.10",
                "freeUnitsPerEvents": 3,
                "freeUnitsPerTotalAggregation": "500",
            },
            ("200", "100", "100", "50"),
            "0.7",
            id="lago-example-n-binds",
        ),
        # X binds before N: free amount = min(200 + 100 + 100, 250) = 250. Tx0 free;
        # tx1 crosses 250 (pays on 50); tx2 and tx3 pay in full. 1% + 0.5 fixed each.
        pytest.param(
            {
                "rate": "1",
                "fixedAmount": "0.5",
                "freeUnitsPerEvents": 3,
                "freeUnitsPerTotalAggregation": "250",
            },
            ("200", "100", "100", "50"),
            "3.5",
            id="x-binds-partial-transaction",
        ),
        pytest.param(
            {"rate": "2", "freeUnitsPerEvents": 2},
            ("100", "100", "100"),
            "2",
            id="first-n-free",
        ),
        pytest.param(
            {"rate": "2", "fixedAmount": "1", "freeUnitsPerEvents": 5},
            ("100", "100"),
            "0",
            id="all-within-n",
        ),
        pytest.param(
            {"rate": "1", "freeUnitsPerEvents": 2, "freeUnitsPerTotalAggregation": "0"},
            ("100", "100", "100"),
            "1",
            id="x-zero-means-unset",
        ),
        pytest.param(
            {"rate": "1", "fixedAmount": "1", "freeUnitsPerTotalAggregation": "300"},
            ("200", "100", "50"),
            "1.5",
            id="ending-exactly-at-x-is-entirely-free",
        ),
        pytest.param(
            {"rate": "1", "fixedAmount": "1", "freeUnitsPerTotalAggregation": "300"},
            ("200", "100", "0", "50"),
            "1.5",
            id="zero-amount-inside-free-amount-is-free",
        ),
        pytest.param(
            {"rate": "1", "perTransactionMin": "0.5", "perTransactionMax": "2"},
            ("10", "100", "1000"),
            "3.5",
            id="min-raises-max-caps",
        ),
        pytest.param(
            {"rate": "1", "perTransactionMin": "0.5"},
            ("10", "0"),
            "1",
            id="zero-amount-non-free-raised-to-min",
        ),
        pytest.param(
            {"rate": "10", "perTransactionMax": "5"},
            ("100", "10"),
            "6",
            id="max-only",
        ),
        pytest.param(
            {"rate": "10", "fixedAmount": "1", "perTransactionMax": "5"},
            ("45", "10"),
            "7",
            id="max-clamps-rate-plus-fixed",
        ),
        # Tx0 entirely free (not raised); tx1 crosses X=100: 1% of 20 + 0.1 = 0.3 -> 0.5;
        # tx2: 1% of 10 + 0.1 = 0.2 -> 0.5.
        pytest.param(
            {
                "rate": "1",
                "fixedAmount": "0.1",
                "freeUnitsPerTotalAggregation": "100",
                "perTransactionMin": "0.5",
            },
            ("60", "60", "10"),
            "1",
            id="free-not-raised-partial-is-clamped",
        ),
        pytest.param(
            {"rate": "1", "freeUnitsPerEvents": 2, "perTransactionMin": "5"},
            ("1", "1", "1"),
            "5",
            id="free-by-count-not-raised",
        ),
        pytest.param(
            {"rate": "0", "fixedAmount": "0.000000000001"},
            ("1", "1", "1"),
            "0.000000000003",
            id="12dp-fixed",
        ),
        pytest.param(
            {"rate": "1.5", "fixedAmount": "0.3"},
            ("1000000000000000000000000000000", "1"),
            "15000000000000000000000000000.615",
            id="huge-transaction",
        ),
    ],
)
def test_per_transaction(props: dict[str, Any], amounts: tuple[str, ...], amount: str) -> None:
    assert needs_event_amounts("percentage", props)
    assert price("percentage", props, _usage(*amounts)).amount == D(amount)


@pytest.mark.parametrize(
    ("props", "needed"),
    [
        pytest.param({"rate": "1"}, False, id="rate"),
        pytest.param({"rate": "1", "freeUnitsPerTotalAggregation": "5"}, False, id="x"),
        pytest.param({"rate": "1", "fixedAmount": "0.1"}, True, id="fixed"),
        pytest.param({"rate": "1", "fixedAmount": "0"}, False, id="fixed-zero"),
        pytest.param({"rate": "1", "freeUnitsPerEvents": 3}, True, id="n"),
        pytest.param({"rate": "1", "freeUnitsPerEvents": 0}, False, id="n-zero"),
        pytest.param({"rate": "1", "perTransactionMin": "0.5"}, True, id="min"),
        pytest.param({"rate": "1", "perTransactionMin": "0"}, False, id="min-zero"),
        pytest.param({"rate": "1", "perTransactionMax": "10"}, True, id="max"),
        pytest.param({"rate": "1", "perTransactionMax": "0"}, True, id="max-zero"),
    ],
)
def test_needs_event_amounts(props: dict[str, Any], needed: bool) -> None:
    assert needs_event_amounts("percentage", props) is needed


@pytest.mark.parametrize(
    ("model", "props"),
    [
        ("per_unit", {"unitAmount": "1"}),
        ("graduated", {"tiers": [{"upTo": None, "unitAmount": "1", "flatAmount": "1"}]}),
        ("volume", {"tiers": [{"upTo": None, "unitAmount": "1"}]}),
        ("package", {"amount": "1", "packageSize": "1"}),
        ("graduated_percentage", {"tiers": [{"upTo": None, "rate": "1", "flatAmount": "1"}]}),
    ],
)
def test_other_models_never_need_event_amounts(model: str, props: dict[str, Any]) -> None:
    assert not needs_event_amounts(model, props)


def test_fixed_amount_without_event_amounts_uses_event_count() -> None:
    props = {"rate": "1", "fixedAmount": "0.25"}
    usage = ChargeUsage(D("1000"), event_count=4)
    assert price("percentage", props, usage).amount == D("11")


def test_zero_quantity_without_event_amounts_costs_nothing() -> None:
    props = {"rate": "1", "fixedAmount": "0.25", "freeUnitsPerEvents": 2}
    assert price("percentage", props, ChargeUsage(D("0"), event_count=3)).amount == 0


def test_unit_amount_is_amount_over_quantity() -> None:
    props = {
        "rate": "1.2",
        "fixedAmount": "0.10",
        "freeUnitsPerEvents": 3,
        "freeUnitsPerTotalAggregation": "500",
    }
    # 0.7 / 450 = 0.0015555...
    assert price("percentage", props, _usage("200", "100", "100", "50")).unit_amount == D(
        "0.001555555556"
    )


@pytest.mark.parametrize(
    ("props", "usage", "message"),
    [
        pytest.param(
            {"rate": "1", "freeUnitsPerEvents": 2},
            ChargeUsage(D("10"), event_count=3),
            "need the per-transaction amounts",
            id="free-events-without-amounts",
        ),
        pytest.param(
            {"rate": "1", "perTransactionMax": "2"},
            ChargeUsage(D("10"), event_count=3),
            "need the per-transaction amounts",
            id="clamp-without-amounts",
        ),
        pytest.param(
            {"rate": "1", "fixedAmount": "1"},
            ChargeUsage(D("10")),
            "needs event_count or event_amounts",
            id="fixed-without-count",
        ),
        pytest.param(
            {"rate": "1", "fixedAmount": "1"},
            ChargeUsage(D("10"), event_count=3, event_amounts=(D("5"), D("5"))),
            "event_count (3) differs from the number of event amounts (2)",
            id="count-mismatch",
        ),
    ],
)
def test_unpriceable_usage(props: dict[str, Any], usage: ChargeUsage, message: str) -> None:
    with pytest.raises(InvalidChargeUsage) as excinfo:
        price("percentage", props, usage)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("props", "amounts", "expected"),
    [
        # 1 % of 15 + 1 fixed; the refund of 5 pays no fixed fee.
        ({"rate": "1", "fixedAmount": "1"}, ("15", "-5"), "1.15"),
        # A refund is not raised to the per-transaction minimum.
        ({"rate": "1", "perTransactionMin": "2"}, ("-5", "100"), "2"),
        # Nor does it take one of the first N free transactions: the 100 is free.
        ({"rate": "10", "freeUnitsPerEvents": "1"}, ("-5", "100", "50"), "5"),
        # Nor part of the free amount: 10 of the 100, then all 50, lie over X = 90.
        (
            {"rate": "10", "freeUnitsPerTotalAggregation": "90", "fixedAmount": "0.01"},
            ("100", "-40", "50"),
            "6.02",
        ),
        # Only refunds: nothing to bill.
        ({"rate": "1", "fixedAmount": "1"}, ("-5", "-1"), "0"),
    ],
)
def test_refunds_cost_nothing_and_take_no_free_units(
    props: dict[str, Any], amounts: tuple[str, ...], expected: str
) -> None:
    values = tuple(D(a) for a in amounts)
    quantity = max(sum(values, D(0)), D(0))
    priced = price("percentage", props, ChargeUsage(quantity, event_amounts=values))
    assert priced.amount == D(expected)


def test_docs_example_with_free_amount_and_clamps() -> None:
    # docs/pricing-models.md, percentage example 2: 0 + 0.90 + 0.50 (min) + 5 (max).
    props = {
        "rate": "2",
        "fixedAmount": "0.30",
        "freeUnitsPerTotalAggregation": "100",
        "perTransactionMin": "0.50",
        "perTransactionMax": "5",
    }
    assert price("percentage", props, _usage("80", "50", "5", "1000")).amount == D("6.4")
