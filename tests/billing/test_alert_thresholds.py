"""Which thresholds a value reached (`invoicing.alerts.reached`): ≥ for usage, ≤ for a
balance, a recurring threshold at every multiple."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.alerts import MAX_MULTIPLES, reached


def t(value: str, recurring: bool = False) -> dict[str, object]:
    return {"value": value, "code": None, "recurring": recurring}


@pytest.mark.parametrize(
    ("thresholds", "value", "falling", "expected"),
    [
        ([t("5"), t("10", True)], "25", False, ["5", "10", "20"]),
        ([t("5"), t("10", True)], "9.99", False, ["5"]),
        ([t("5")], "5", False, ["5"]),  # reaching is enough
        ([t("5")], "4.999", False, []),
        ([t("0.5", True)], "1.5", False, ["0.5", "1", "1.5"]),
        ([t("10"), t("5")], "8", True, ["10"]),  # a balance falls to or below
        ([t("10"), t("5")], "5", True, ["5", "10"]),
        ([t("10", True), t("20")], "20", False, ["10", "20"]),  # 20 once, from both
    ],
)
def test_reached(thresholds, value, falling, expected) -> None:
    assert reached(thresholds, D(value), falling=falling) == [D(e) for e in expected]


@given(
    st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2),
    st.decimals(min_value=D(0), max_value=D("100000"), places=2),
)
def test_recurring_multiples_are_exact_and_complete(step: D, value: D) -> None:
    hits = reached([t(str(step), True)], value, falling=False)
    multiples = int(value // step)
    assert len(hits) == min(multiples, MAX_MULTIPLES)
    assert all(h <= value and h % step == 0 for h in hits)
    if hits:
        assert hits[-1] == step * multiples  # the highest multiple is always there
