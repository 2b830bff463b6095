"""Stage 2, Rollover: unused included quantity carries, optionally capped and expiring.

The ledger keeps per charge a list of buckets (quantity, expires_at), oldest first; the
stage ignores expired ones, and `carry_forward` (run by Allowance, once the period's use
is known) says which buckets to store next.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest

from rating.context import BillingContext, RatingState, RolloverBucket
from rating.model import (
    Aggregation,
    Customer,
    Interval,
    MeteredQuantity,
    Metric,
    Period,
    Plan,
    RolloverRule,
    Subscription,
    UsageCharge,
)
from rating.periods import next_period
from rating.stages.aggregate import aggregate
from rating.stages.allowance import allowance
from rating.stages.quota_check import quota_check
from rating.stages.rollover import carry_forward, expiry, rollover
from tests.helpers.dates import OCTOBER, at

OCT1, NOV1, DEC1, JAN1, FEB1 = at(2026, 10), at(2026, 11), at(2026, 12), at(2027, 1), at(2027, 2)
CALLS = Metric("api_calls", "API calls", Aggregation.COUNT)


def bucket(quantity: str, expires_at: datetime | None) -> RolloverBucket:
    return RolloverBucket(D(quantity), expires_at)


def plan(*charges: UsageCharge) -> Plan:
    return Plan("pro", "Pro", "USD", Interval.MONTHLY, charges=charges)


def charge(
    charge_id: str = "c1",
    included: str = "100",
    rule: RolloverRule | None = RolloverRule(expiry_periods=1),
) -> UsageCharge:
    return UsageCharge(
        charge_id,
        CALLS,
        "per_unit",
        {"unitAmount": "1"},
        included_quantity=D(included),
        rollover=rule,
    )


def context(
    p: Plan,
    period: Period = OCTOBER,
    usage: tuple[MeteredQuantity, ...] = (),
    rollover_in: dict[str, tuple[RolloverBucket, ...]] | None = None,
) -> BillingContext:
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), p, at(2026, 1))
    return BillingContext(subscription, period, usage=usage, rollover_in=rollover_in or {})


@pytest.mark.parametrize(
    ("expiry_periods", "expected"),
    [
        pytest.param(None, None, id="never"),
        pytest.param(1, DEC1, id="usable-next-period-only"),
        pytest.param(3, FEB1, id="three-periods"),
    ],
)
def test_expiry(expiry_periods: int | None, expected: datetime | None) -> None:
    rule = RolloverRule(expiry_periods=expiry_periods)
    assert expiry(rule, Interval.MONTHLY, OCTOBER) == expected


@pytest.mark.parametrize(
    ("buckets", "allowance_", "kept"),
    [
        pytest.param((), "100", (), id="included-only"),
        pytest.param(
            (bucket("30", DEC1),), "130", (bucket("30", DEC1),), id="unexpired-carry-adds"
        ),
        pytest.param(
            (bucket("30", NOV1),),
            "130",
            (bucket("30", NOV1),),
            id="expiring-at-period-end-still-usable",
        ),
        pytest.param((bucket("30", OCT1),), "100", (), id="expired-ignored"),
        pytest.param(
            (bucket("5", None), bucket("30", OCT1), bucket("7", JAN1)),
            "112",
            (bucket("5", None), bucket("7", JAN1)),
            id="mixed",
        ),
        pytest.param((bucket("0", None),), "100", (), id="empty-bucket-ignored"),
    ],
)
def test_rollover_stage_allowance(
    buckets: tuple[RolloverBucket, ...], allowance_: str, kept: tuple[RolloverBucket, ...]
) -> None:
    state = rollover(RatingState(context=context(plan(charge()), rollover_in={"c1": buckets})))
    assert state.allowances == {"c1": D(allowance_)}
    assert state.rollover_buckets == {"c1": kept}


def test_charge_without_rollover_ignores_carried_buckets() -> None:
    p = plan(charge("a", included="10", rule=None), charge("b", included="0"))
    ctx = context(p, rollover_in={"a": (bucket("50", None),), "b": (bucket("4", None),)})
    state = rollover(RatingState(context=ctx))
    assert state.allowances == {"a": D(10), "b": D(4)}
    assert state.rollover_buckets == {"b": (bucket("4", None),)}


@pytest.mark.parametrize(
    ("cap", "carried", "unused", "expected"),
    [
        pytest.param(None, (), "100", (bucket("100", FEB1),), id="all-unused"),
        pytest.param(None, (), "40", (bucket("40", FEB1),), id="partly-used"),
        pytest.param(None, (), "0", (), id="all-used"),
        # Allowance = 100 included + 30 + 20 carried; usage 40 consumed the 30 (oldest)
        # and 10 of the 20 first, so the 100 included and 10 of the newest carry remain.
        pytest.param(
            None,
            (bucket("30", DEC1), bucket("20", JAN1)),
            "110",
            (bucket("10", JAN1), bucket("100", FEB1)),
            id="carry-consumed-oldest-first",
        ),
        pytest.param(
            None,
            (bucket("30", DEC1), bucket("20", JAN1)),
            "130",
            (bucket("10", DEC1), bucket("20", JAN1), bucket("100", FEB1)),
            id="some-carry-left",
        ),
        pytest.param(
            None, (bucket("30", NOV1),), "130", (bucket("100", FEB1),), id="expiring-now-dropped"
        ),
        pytest.param(
            "110",
            (bucket("30", DEC1), bucket("20", JAN1)),
            "150",
            (bucket("10", JAN1), bucket("100", FEB1)),
            id="cap-drops-oldest",
        ),
        pytest.param("50", (), "100", (bucket("50", FEB1),), id="cap-below-fresh"),
        pytest.param(
            "500",
            (bucket("30", DEC1),),
            "130",
            (bucket("30", DEC1), bucket("100", FEB1)),
            id="cap-not-reached",
        ),
    ],
)
def test_carry_forward(
    cap: str | None,
    carried: tuple[RolloverBucket, ...],
    unused: str,
    expected: tuple[RolloverBucket, ...],
) -> None:
    rule = RolloverRule(cap=None if cap is None else D(cap), expiry_periods=3)
    out = carry_forward(rule, Interval.MONTHLY, OCTOBER, carried, D(100), D(unused))
    assert out == expected


def _close(
    p: Plan, period: Period, used: str, rollover_in: dict[str, tuple[RolloverBucket, ...]]
) -> RatingState:
    ctx = context(p, period, (MeteredQuantity("c1", D(used)),), rollover_in)
    state = RatingState(context=ctx)
    for stage in (quota_check, rollover, aggregate, allowance):
        state = stage(state)
    return state


def test_periods_chain_through_the_ledger() -> None:
    """The ledger stores rollover_out and passes it back as rollover_in next period."""
    p = plan(charge(included="100", rule=RolloverRule(expiry_periods=1)))
    november = next_period(Interval.MONTHLY, OCTOBER)
    december = next_period(Interval.MONTHLY, november)

    october = _close(p, OCTOBER, "40", {})
    assert october.quantities[0].billable == D(0)
    assert october.rollover_out == {"c1": (bucket("60", DEC1),)}

    # November: 100 included + 60 carried; 130 used → the carry first, then 70 included.
    nov = _close(p, november, "130", dict(october.rollover_out))
    assert nov.quantities[0].billable == D(0)
    assert nov.quantities[0].allowance_used == D(130)
    assert nov.rollover_out == {"c1": (bucket("30", JAN1),)}

    # December: 100 + 30; 250 used → 120 billable; nothing left to carry.
    dec = _close(p, december, "250", dict(nov.rollover_out))
    assert dec.quantities[0].billable == D(120)
    assert dec.rollover_out == {"c1": ()}


def test_unused_carry_expires_after_its_periods() -> None:
    p = plan(charge(included="100", rule=RolloverRule(expiry_periods=1)))
    november = next_period(Interval.MONTHLY, OCTOBER)
    october = _close(p, OCTOBER, "0", {})
    assert october.rollover_out == {"c1": (bucket("100", DEC1),)}
    # Nothing used in November: October's 100 expires at the end of November.
    nov = _close(p, november, "0", dict(october.rollover_out))
    assert nov.rollover_out == {"c1": (bucket("100", JAN1),)}
    # Passed in after its expiry, the bucket is ignored.
    late = _close(p, next_period(Interval.MONTHLY, november), "150", dict(october.rollover_out))
    assert late.quantities[0].billable == D(50)
