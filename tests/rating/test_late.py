"""Late usage lines: the price difference of what is known now vs what was billed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rating.late import late_usage_lines
from rating.model import Aggregation, LineType, Metric, Period, UsageCharge

SEPT = Period(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
CALLS = Metric("calls", "Calls", Aggregation.COUNT)
TIERS = {
    "tiers": [
        {"upTo": "100", "unitAmount": "1", "flatAmount": "0"},
        {"upTo": None, "unitAmount": "0.5"},
    ]
}


def _charge(**kw: object) -> UsageCharge:
    return UsageCharge(id="ch", metric=CALLS, model="graduated", properties=TIERS, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("charge", "billed", "known", "expected"),
    [
        # crosses the tier at 100: price(120) − price(90) = 110 − 90
        (_charge(), "90", "120", ("30", "20.00")),
        # all inside the allowance: nothing to bill
        (_charge(included_quantity=Decimal(200)), "90", "120", None),
        # half inside the allowance of 100: billable 0 → 20
        (_charge(included_quantity=Decimal(100)), "90", "120", ("20", "20.00")),
        # above the hard cap: nothing more is billed
        (_charge(hard_cap=Decimal(90)), "90", "120", None),
        # first late usage for a period that billed nothing
        (_charge(), "0", "3", ("3", "3.00")),
    ],
    ids=["tier-crossing", "within-allowance", "partly-allowance", "hard-cap", "from-zero"],
)
def test_late_usage_lines(charge, billed, known, expected):
    lines = late_usage_lines(
        (charge,),
        SEPT,
        "inv_old",
        {("ch", ()): Decimal(billed)},
        {("ch", ()): Decimal(known)},
        "USD",
    )
    if expected is None:
        assert lines == ()
        return
    [line] = lines
    assert (str(line.quantity), str(line.amount)) == expected
    assert line.type == LineType.USAGE_FEE
    assert line.prior_invoice_id == "inv_old"
    assert (line.period_start, line.period_end) == (SEPT.start, SEPT.end)
    assert "late usage" in line.description
