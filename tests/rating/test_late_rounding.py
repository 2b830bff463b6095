"""Late usage lines round like every line: exact difference, then ROUND_HALF_UP once.

Each case sits on a tie, where the decimal module's default (ROUND_HALF_EVEN, 28
digits) would give another answer: the amount at half a minor unit, the unit amount
at half of the 12th decimal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from rating.late import late_usage_lines
from rating.model import Aggregation, Metric, Period, UsageCharge

D = Decimal
AUGUST = Period(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC))
REQUESTS = Metric("requests", "Requests", Aggregation.SUM)
PER_TENTH_OF_A_CENT = ("per_unit", {"unitAmount": "0.0005"})
# Two tiers whose difference over 2 units is 1.000000000001: 0.5000000000005 per unit.
TINY_SECOND_TIER = (
    "graduated",
    {
        "tiers": [
            {"upTo": "1", "unitAmount": "1", "flatAmount": "0"},
            {"upTo": None, "unitAmount": "0.000000000001"},
        ]
    },
)


def _late(
    model: tuple[str, dict[str, Any]], billed: str, known: str, currency: str = "USD"
) -> tuple[str, str, str]:
    charge = UsageCharge(id="ch", metric=REQUESTS, model=model[0], properties=model[1])
    [line] = late_usage_lines(
        (charge,),
        AUGUST,
        "inv_aug",
        {("ch", ()): D(billed)},
        {("ch", ()): D(known)},
        currency,
    )
    return str(line.quantity), str(line.amount), str(line.unit_amount)


@pytest.mark.parametrize(
    ("model", "billed", "known", "currency", "expected"),
    [
        # 90 × 0.0005 = 0.045 → 0.05 (half-even: 0.04)
        (PER_TENTH_OF_A_CENT, "10", "100", "USD", ("90", "0.05", "0.000500000000")),
        # usage known now below what was billed: −0.045 → −0.05, away from zero
        (PER_TENTH_OF_A_CENT, "100", "10", "USD", ("-90", "-0.05", "0.000500000000")),
        # 5000 × 0.0005 = 2.5 yen → 3 (half-even: 2)
        (PER_TENTH_OF_A_CENT, "0", "5000", "JPY", ("5000", "3", "0.000500000000")),
        # 1.000000000001 / 2 = 0.5000000000005 → 0.500000000001 (half-even: …000)
        (TINY_SECOND_TIER, "0", "2", "USD", ("2", "1.00", "0.500000000001")),
    ],
    ids=["amount-tie", "negative-amount-tie", "jpy-tie", "unit-amount-tie"],
)
def test_late_line_rounds_half_up(
    model: tuple[str, dict[str, Any]],
    billed: str,
    known: str,
    currency: str,
    expected: tuple[str, str, str],
) -> None:
    assert _late(model, billed, known, currency) == expected
