"""split_fee: a fee cut at any instant of its span, used part + unused part = the fee,
exactly, each part within [0, fee]; the used part is the day-prorated line amount."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rating.model import Period
from rating.proration import split_fee

OCTOBER = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def test_split_by_started_days() -> None:
    # Oct 11 00:00: 10 of 31 days used; 30 × 10/31 = 9.677… → 9.68, the rest 20.32.
    split = split_fee(Decimal("30"), OCTOBER, datetime(2026, 10, 11, tzinfo=UTC), "USD")
    assert (split.used, split.unused, split.used_days, split.total_days) == (
        Decimal("9.68"),
        Decimal("20.32"),
        Decimal(10),
        Decimal(31),
    )
    # A started day counts as used: Oct 11 00:00:01 uses 11 days.
    mid = split_fee(Decimal("31"), OCTOBER, datetime(2026, 10, 11, 0, 0, 1, tzinfo=UTC), "USD")
    assert (mid.used, mid.unused) == (Decimal("11.00"), Decimal("20.00"))
    # At or before the start nothing is used; at or after the end, all of it.
    assert split_fee(Decimal("31"), OCTOBER, OCTOBER.start, "USD").unused == Decimal("31.00")
    assert split_fee(Decimal("31"), OCTOBER, OCTOBER.end, "USD").used == Decimal("31.00")
    assert split_fee(Decimal("100"), OCTOBER, datetime(2026, 10, 2, tzinfo=UTC), "JPY").used == (
        Decimal("3")
    )


@given(
    cents=st.integers(min_value=0, max_value=10**12),
    currency=st.sampled_from(["USD", "JPY", "BHD"]),
    offset=st.integers(min_value=-86_400, max_value=32 * 86_400),
    days=st.integers(min_value=1, max_value=366),
)
def test_parts_sum_to_the_fee(cents: int, currency: str, offset: int, days: int) -> None:
    span = Period(OCTOBER.start, OCTOBER.start + timedelta(days=days))
    fee = Decimal(cents).scaleb(-3)  # any amount; it is rounded once to the minor unit
    split = split_fee(fee, span, span.start + timedelta(seconds=offset), currency)
    whole = split_fee(fee, span, span.end, currency).used
    assert split.used + split.unused == whole
    assert Decimal(0) <= split.used <= whole and Decimal(0) <= split.unused <= whole
