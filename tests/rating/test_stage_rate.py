"""Stage 5, Rate: usage priced by its model, fixed fees prorated, pay-in-advance fees."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest

from rating.context import BillingContext, ChargeQuantity, RatingState
from rating.model import (
    Aggregation,
    Customer,
    FixedCharge,
    Interval,
    LineType,
    Metric,
    Period,
    Plan,
    Subscription,
    UsageCharge,
)
from rating.stages.rate import rate
from tests.helpers.dates import NOVEMBER, OCTOBER, at

CALLS = Metric("api_calls", "API calls", Aggregation.COUNT)

TIERS: dict[str, Any] = {
    "tiers": [
        {"upTo": "1000", "unitAmount": "0", "flatAmount": "10"},
        {"upTo": "10000", "unitAmount": "0.002"},
        {"upTo": None, "unitAmount": "0.001", "flatAmount": "5"},
    ]
}
PERCENTAGE: dict[str, Any] = {
    "rate": "1.2",
    "fixedAmount": "0.10",
    "freeUnitsPerEvents": 3,
    "freeUnitsPerTotalAggregation": "500",
}
GRADUATED_PERCENTAGE: dict[str, Any] = {
    "tiers": [
        {"upTo": "1000", "rate": "2", "flatAmount": "0"},
        {"upTo": None, "rate": "1", "flatAmount": "5"},
    ]
}


def state_for(
    plan: Plan,
    start: datetime = at(2026, 9),
    end: datetime | None = None,
    period: Period = OCTOBER,
    quantities: tuple[ChargeQuantity, ...] = (),
) -> RatingState:
    subscription = Subscription("sub", Customer("acme", "Acme", plan.currency), plan, start, end)
    return RatingState(context=BillingContext(subscription, period), quantities=quantities)


def plan(currency: str = "USD", **changes: Any) -> Plan:
    return Plan("pro", "Pro", currency, Interval.MONTHLY, **changes)


@pytest.mark.parametrize(
    ("currency", "model", "properties", "quantity", "events", "amount"),
    [
        pytest.param(
            "USD", "per_unit", {"unitAmount": "0.0015"}, "1234", (), "1.85", id="per-unit"
        ),
        pytest.param(
            "USD", "per_unit", {"unitAmount": "0.005"}, "1", (), "0.01", id="per-unit-half-up"
        ),
        pytest.param(
            "USD", "per_unit", {"unitAmount": "0.0049"}, "1", (), "0.00", id="per-unit-rounds-down"
        ),
        pytest.param("USD", "graduated", TIERS, "12345.5", (), "35.35", id="graduated"),
        pytest.param(
            "USD", "graduated", TIERS, "0", (), "10.00", id="graduated-first-flat-at-zero"
        ),
        pytest.param("USD", "volume", TIERS, "12345.5", (), "17.35", id="volume"),
        pytest.param("USD", "volume", TIERS, "10000", (), "20.00", id="volume-on-bound"),
        pytest.param(
            "USD",
            "package",
            {"amount": "5", "packageSize": "1000", "freeUnits": "100"},
            "2150",
            (),
            "15.00",
            id="package",
        ),
        pytest.param(
            "USD",
            "percentage",
            PERCENTAGE,
            "450",
            ("200", "100", "100", "50"),
            "0.70",
            id="percentage",
        ),
        pytest.param(
            "USD",
            "graduated_percentage",
            GRADUATED_PERCENTAGE,
            "2500",
            (),
            "40.00",
            id="graduated-percentage",
        ),
        pytest.param("JPY", "per_unit", {"unitAmount": "0.5"}, "3", (), "2", id="jpy-no-decimals"),
        pytest.param(
            "BHD", "per_unit", {"unitAmount": "0.0005"}, "3", (), "0.002", id="bhd-three-decimals"
        ),
    ],
)
def test_usage_priced_by_model(
    currency: str,
    model: str,
    properties: dict[str, Any],
    quantity: str,
    events: tuple[str, ...],
    amount: str,
) -> None:
    charge = UsageCharge("c1", CALLS, model, properties)
    q = ChargeQuantity(
        charge, (), D(quantity), D(quantity), len(events), tuple(D(e) for e in events)
    )
    [line] = rate(state_for(plan(currency, charges=(charge,)), quantities=(q,))).lines
    assert line.type == LineType.USAGE_FEE
    assert (line.amount, line.quantity, line.charge_id, line.metric) == (
        D(amount),
        D(quantity),
        "c1",
        "api_calls",
    )
    assert str(line.amount) == amount  # rounded to the currency's minor unit


def test_usage_line_prices_the_billable_quantity_for_the_active_part() -> None:
    charge = UsageCharge("c1", CALLS, "per_unit", {"unitAmount": "0.5"})
    q = ChargeQuantity(charge, (("region", "eu"),), D(150), D(50))
    state = state_for(plan(charges=(charge,)), start=at(2026, 10, 15), quantities=(q,))
    [line] = rate(state).lines
    assert (line.amount, line.quantity, line.unit_amount) == (D("25.00"), D(50), D("0.5"))
    assert line.description == "API calls (region=eu)"
    assert (line.period_start, line.period_end) == (at(2026, 10, 15), at(2026, 11))


SUPPORT = FixedCharge("fx_support", "Support", D(10), units=D(2))
SUPPORT_FULL = FixedCharge("fx_support", "Support", D(10), units=D(2), prorated=False)
SUPPORT_ADVANCE = FixedCharge("fx_support", "Support", D(10), pay_in_advance=True)
SETUP = FixedCharge("fx_setup", "Onboarding", D(99), one_time=True)

Row = tuple[LineType, str, str, datetime, datetime]
C, P, S = LineType.CHARGE, LineType.PRORATION, LineType.SETUP_FEE
BASE = "Pro base fee"


@pytest.mark.parametrize(
    ("plan_", "start", "end", "period", "expected"),
    [
        pytest.param(
            plan(base_fee=D(49)),
            at(2026, 9),
            None,
            OCTOBER,
            [(C, BASE, "49.00", at(2026, 10), at(2026, 11))],
            id="full-period",
        ),
        pytest.param(
            plan(base_fee=D(49)),
            at(2026, 10, 15),
            None,
            OCTOBER,
            [(P, f"{BASE} (prorated 17/31 days)", "26.87", at(2026, 10, 15), at(2026, 11))],
            id="starts-mid-period",
        ),
        pytest.param(
            plan(base_fee=D(49)),
            at(2026, 9),
            at(2026, 10, 21),
            OCTOBER,
            [(P, f"{BASE} (prorated 20/31 days)", "31.61", at(2026, 10), at(2026, 10, 21))],
            id="ends-mid-period",
        ),
        pytest.param(
            plan(base_fee=D(49)),
            at(2026, 10, 10),
            at(2026, 10, 20),
            OCTOBER,
            [(P, f"{BASE} (prorated 10/31 days)", "15.81", at(2026, 10, 10), at(2026, 10, 20))],
            id="starts-and-ends",
        ),
        pytest.param(
            plan(base_fee=D("0.09")),
            at(2026, 11, 16),
            None,
            NOVEMBER,
            [(P, f"{BASE} (prorated 15/30 days)", "0.05", at(2026, 11, 16), at(2026, 12))],
            id="round-half-up-0.045",
        ),
        pytest.param(
            plan(base_fee=D(49), trial_days=14),
            at(2026, 10),
            None,
            OCTOBER,
            [(P, f"{BASE} (prorated 17/31 days)", "26.87", at(2026, 10, 15), at(2026, 11))],
            id="trial-waives-base-fee",
        ),
        pytest.param(
            plan(base_fee=D(49), trial_days=40),
            at(2026, 10),
            None,
            OCTOBER,
            [],
            id="whole-period-in-trial",
        ),
        pytest.param(
            plan(fixed_charges=(SUPPORT,)),
            at(2026, 9),
            None,
            OCTOBER,
            [(C, "Support", "20.00", at(2026, 10), at(2026, 11))],
            id="fixed-charge-units",
        ),
        pytest.param(
            plan(fixed_charges=(SUPPORT,)),
            at(2026, 10, 15),
            None,
            OCTOBER,
            [(P, "Support (prorated 17/31 days)", "10.97", at(2026, 10, 15), at(2026, 11))],
            id="fixed-charge-prorated",
        ),
        pytest.param(
            plan(fixed_charges=(SUPPORT_FULL,)),
            at(2026, 10, 15),
            None,
            OCTOBER,
            [(C, "Support", "20.00", at(2026, 10, 15), at(2026, 11))],
            id="fixed-charge-not-prorated",
        ),
        pytest.param(
            plan(base_fee=D(49), trial_days=14, fixed_charges=(SUPPORT,)),
            at(2026, 10),
            None,
            OCTOBER,
            [
                (P, f"{BASE} (prorated 17/31 days)", "26.87", at(2026, 10, 15), at(2026, 11)),
                (C, "Support", "20.00", at(2026, 10), at(2026, 11)),
            ],
            id="trial-is-base-fee-only",
        ),
        pytest.param(
            plan(fixed_charges=(SETUP,)),
            at(2026, 10, 15),
            None,
            OCTOBER,
            [(S, "Onboarding", "99.00", at(2026, 10, 15), at(2026, 11))],
            id="setup-fee-first-period-unprorated",
        ),
        pytest.param(
            plan(fixed_charges=(SETUP,)),
            at(2026, 10, 15),
            None,
            NOVEMBER,
            [],
            id="no-setup-fee-later",
        ),
        pytest.param(
            plan(fixed_charges=(SETUP,)),
            at(2026, 9),
            None,
            OCTOBER,
            [],
            id="no-setup-fee-for-older-subscription",
        ),
    ],
)
def test_fixed_fees(
    plan_: Plan, start: datetime, end: datetime | None, period: Period, expected: list[Row]
) -> None:
    lines = rate(state_for(plan_, start, end, period)).lines
    assert [
        (ln.type, ln.description, ln.amount, ln.period_start, ln.period_end) for ln in lines
    ] == [(t, d, D(a), s, e) for t, d, a, s, e in expected]


def test_prorated_line_shows_units_and_prorated_unit_amount() -> None:
    [line] = rate(state_for(plan(fixed_charges=(SUPPORT,)), start=at(2026, 10, 15))).lines
    assert (line.quantity, line.unit_amount, line.charge_id) == (
        D(2),
        D("5.483870967742"),  # 10 × 17/31, 12 decimals
        "fx_support",
    )


ADVANCE = plan(base_fee=D(30), pay_in_advance=True)


@pytest.mark.parametrize(
    ("plan_", "start", "end", "period", "expected"),
    [
        pytest.param(
            ADVANCE,
            at(2026, 9),
            None,
            OCTOBER,
            [(C, BASE, "30.00", at(2026, 11), at(2026, 12))],
            id="bills-next-period",
        ),
        pytest.param(
            ADVANCE,
            at(2026, 10),
            None,
            OCTOBER,
            [
                (C, BASE, "30.00", at(2026, 10), at(2026, 11)),
                (C, BASE, "30.00", at(2026, 11), at(2026, 12)),
            ],
            id="first-invoice-also-bills-own-period",
        ),
        pytest.param(
            ADVANCE,
            at(2026, 10, 15),
            None,
            OCTOBER,
            [
                (P, f"{BASE} (prorated 17/31 days)", "16.45", at(2026, 10, 15), at(2026, 11)),
                (C, BASE, "30.00", at(2026, 11), at(2026, 12)),
            ],
            id="first-period-prorated",
        ),
        pytest.param(
            ADVANCE,
            at(2026, 9),
            at(2026, 11, 10),
            OCTOBER,
            [(P, f"{BASE} (prorated 9/30 days)", "9.00", at(2026, 11), at(2026, 11, 10))],
            id="next-period-cut-by-end",
        ),
        pytest.param(
            ADVANCE, at(2026, 9), at(2026, 11), OCTOBER, [], id="ends-with-period-nothing-ahead"
        ),
        pytest.param(
            ADVANCE, at(2026, 9), at(2026, 11, 10), NOVEMBER, [], id="last-invoice-bills-no-advance"
        ),
        pytest.param(
            plan(base_fee=D(30), pay_in_advance=True, trial_days=45),
            at(2026, 10),
            None,
            OCTOBER,
            [(P, f"{BASE} (prorated 16/30 days)", "16.00", at(2026, 11, 15), at(2026, 12))],
            id="advance-after-trial",
        ),
        pytest.param(
            plan(base_fee=D(49), fixed_charges=(SUPPORT_ADVANCE,)),
            at(2026, 9),
            None,
            OCTOBER,
            [
                (C, BASE, "49.00", at(2026, 10), at(2026, 11)),
                (C, "Support", "10.00", at(2026, 11), at(2026, 12)),
            ],
            id="arrears-base-advance-fixed",
        ),
        pytest.param(
            ADVANCE,
            at(2026, 9),
            None,
            Period(at(2026, 10), at(2026, 10, 20)),
            [],
            id="preview-window-opens-nothing",
        ),
    ],
)
def test_pay_in_advance(
    plan_: Plan, start: datetime, end: datetime | None, period: Period, expected: list[Row]
) -> None:
    lines = rate(state_for(plan_, start, end, period)).lines
    assert [
        (ln.type, ln.description, ln.amount, ln.period_start, ln.period_end) for ln in lines
    ] == [(t, d, D(a), s, e) for t, d, a, s, e in expected]


def test_pay_in_advance_usage_charge_is_billed_in_the_period_of_its_usage() -> None:
    charge = UsageCharge("c1", CALLS, "per_unit", {"unitAmount": "1"}, pay_in_advance=True)
    q = ChargeQuantity(charge, (), D(7), D(7))
    [line] = rate(state_for(plan(charges=(charge,)), quantities=(q,))).lines
    assert (line.amount, line.period_start, line.period_end) == (D(7), at(2026, 10), at(2026, 11))


def test_line_order_setup_fixed_then_usage() -> None:
    charge = UsageCharge("c1", CALLS, "per_unit", {"unitAmount": "1"})
    p = plan(base_fee=D(49), fixed_charges=(SUPPORT, SETUP), charges=(charge,))
    q = ChargeQuantity(charge, (), D(1), D(1))
    lines = rate(state_for(p, start=at(2026, 10), quantities=(q,))).lines
    assert [ln.type for ln in lines] == [S, C, C, LineType.USAGE_FEE]
