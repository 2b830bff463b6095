"""Stage 1, Quota Check: a charge's hardCap limits its billed quantity, shared by its groups."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rating.context import BillingContext, RatingState
from rating.model import (
    Aggregation,
    Customer,
    Group,
    Interval,
    MeteredQuantity,
    Metric,
    Plan,
    Subscription,
    UsageCharge,
)
from rating.stages.quota_check import quota_check
from tests.helpers.dates import OCTOBER

CALLS = Metric("api_calls", "API calls", Aggregation.COUNT, group_by=("region",))
EU: Group = (("region", "eu"),)
US: Group = (("region", "us"),)
ZZ: Group = (("region", "zz"),)


def charge(charge_id: str = "c1", hard_cap: str | None = None) -> UsageCharge:
    return UsageCharge(
        id=charge_id,
        metric=CALLS,
        model="per_unit",
        properties={"unitAmount": "1"},
        hard_cap=None if hard_cap is None else D(hard_cap),
    )


def run(charges: tuple[UsageCharge, ...], usage: list[MeteredQuantity]) -> RatingState:
    plan = Plan("pro", "Pro", "USD", Interval.MONTHLY, charges=charges)
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), plan, OCTOBER.start)
    context = BillingContext(subscription, OCTOBER, usage=tuple(usage))
    return quota_check(RatingState(context=context))


@pytest.mark.parametrize(
    ("hard_cap", "usage", "expected"),
    [
        pytest.param(None, [((), "150")], [((), "150", "0")], id="no-cap"),
        pytest.param("100", [((), "150")], [((), "100", "50")], id="above-cap-not-billed"),
        pytest.param("100", [((), "100")], [((), "100", "0")], id="at-cap"),
        pytest.param("100", [((), "99.5")], [((), "99.5", "0")], id="below-cap"),
        pytest.param("0", [((), "7")], [((), "0", "7")], id="zero-cap"),
        pytest.param("100.25", [((), "100.5")], [((), "100.25", "0.25")], id="fractional"),
        pytest.param(
            "100",
            [(EU, "80"), (US, "50")],
            [(EU, "80", "0"), (US, "20", "30")],
            id="groups-share-the-cap",
        ),
        pytest.param(
            "100",
            [(US, "50"), (EU, "80")],
            [(EU, "80", "0"), (US, "20", "30")],
            id="groups-fill-in-group-order",
        ),
        pytest.param(
            "100",
            [(EU, "30"), (US, "40")],
            [(EU, "30", "0"), (US, "40", "0")],
            id="groups-under-the-cap",
        ),
        pytest.param(
            "100",
            [(ZZ, "5"), (EU, "120"), (US, "1")],
            [(EU, "100", "20"), (US, "0", "1"), (ZZ, "0", "5")],
            id="later-groups-fully-capped",
        ),
    ],
)
def test_hard_cap(
    hard_cap: str | None,
    usage: list[tuple[Group, str]],
    expected: list[tuple[Group, str, str]],
) -> None:
    state = run(
        (charge(hard_cap=hard_cap),),
        [MeteredQuantity("c1", D(q), group=g) for g, q in usage],
    )
    assert [(q.group, q.quantity, q.capped_quantity) for q in state.quantities] == [
        (g, D(q), D(c)) for g, q, c in expected
    ]
    # Nothing is billable beyond the capped quantity yet: Allowance lowers it later.
    assert all(q.billable == q.quantity for q in state.quantities)


def test_each_charge_has_its_own_cap() -> None:
    state = run(
        (charge("a", hard_cap="10"), charge("b", hard_cap="1000")),
        [MeteredQuantity("a", D(50)), MeteredQuantity("b", D(50))],
    )
    assert [(q.charge.id, q.quantity, q.capped_quantity) for q in state.quantities] == [
        ("a", D(10), D(40)),
        ("b", D(50), D(0)),
    ]


def test_event_details_are_kept() -> None:
    state = run(
        (charge(hard_cap="5"),),
        [MeteredQuantity("c1", D(3), event_count=2, event_amounts=(D(1), D(2)))],
    )
    [quantity] = state.quantities
    assert (quantity.event_count, quantity.event_amounts) == (2, (D(1), D(2)))


def test_usage_of_a_charge_not_on_the_plan_is_not_billed() -> None:
    state = run((charge(),), [MeteredQuantity("other", D(5)), MeteredQuantity("c1", D(1))])
    assert [q.charge.id for q in state.quantities] == ["c1"]


def test_usage_given_twice_for_one_group_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="given twice"):
        run((charge(),), [MeteredQuantity("c1", D(1), EU), MeteredQuantity("c1", D(2), EU)])
