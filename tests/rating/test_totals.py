"""rating.totals: the one definition of an invoice's totals, for rated lines and stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.model import InvoiceLine, LineType
from rating.money import ZERO
from rating.totals import totals

D = Decimal


@dataclass
class Row:
    """A line as the ledger stores it: the type is a plain string."""

    type: str
    amount: Decimal
    tax_amount: Decimal = ZERO


@pytest.mark.parametrize(
    ("lines", "credits", "paid", "expected"),
    [
        pytest.param([], "0", "0", ("0", "0", "0", "0", "0", "0"), id="empty"),
        pytest.param(
            [Row("CHARGE", D("49.00"), D("9.80"))],
            "0",
            "0",
            ("49.00", "0", "9.80", "58.80", "0", "58.80"),
            id="one-line",
        ),
        pytest.param(
            [
                Row("CHARGE", D("49.00"), D("8.82")),
                Row("USAGE_FEE", D("33.00"), D("5.94")),
                Row("DISCOUNT", D("-8.20")),
                Row("TAX_ADJUSTMENT", D("0"), D("0.24")),
            ],
            "50.00",
            "10.00",
            ("82.00", "8.20", "15.00", "88.80", "50.00", "28.80"),
            id="discount-tax-override-credit-payment",
        ),
        pytest.param(
            [Row("CHARGE", D("10.00")), Row("CREDIT", D("-4.00"))],
            "0",
            "0",
            ("10.00", "0", "0", "10.00", "0", "10.00"),
            id="credit-lines-are-not-in-the-total",
        ),
        pytest.param(
            [Row("CHARGE", D("10.00"), D("2.00")), Row("TAX_ADJUSTMENT", D("0"), D("-2.00"))],
            "12.00",
            "0",
            ("10.00", "0", "0.00", "10.00", "10.00", "0.00"),
            id="credits-capped-at-a-lowered-total",
        ),
        pytest.param(
            [Row("CHARGE", D("10.00")), Row("DISCOUNT", D("-10.00"))],
            "5.00",
            "0",
            ("10.00", "10.00", "0", "0.00", "0", "0.00"),
            id="no-credit-on-a-zero-total",
        ),
    ],
)
def test_totals_of_stored_rows(
    lines: list[Row], credits: str, paid: str, expected: tuple[str, ...]
) -> None:
    result = totals(lines, credits=D(credits), paid=D(paid))
    got = (
        result.subtotal,
        result.discount_total,
        result.tax_total,
        result.total,
        result.credit_total,
        result.amount_due,
    )
    assert got == tuple(D(v) for v in expected)
    assert result.amount_paid == D(paid)


def test_rated_lines_and_stored_rows_give_the_same_totals() -> None:
    rated = [
        InvoiceLine(LineType.CHARGE, "Base", D("49.00"), tax_amount=D("9.80")),
        InvoiceLine(LineType.USAGE_FEE, "Calls", D("12.35"), tax_amount=D("2.47")),
        InvoiceLine(LineType.DISCOUNT, "Coupon", D("-5.00")),
    ]
    stored = [Row(str(ln.type), ln.amount, ln.tax_amount) for ln in rated]
    assert totals(rated, credits=D(20)) == totals(stored, credits=D(20))


# --- properties -------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n).scaleb(-2))
charge_types = st.sampled_from(["CHARGE", "USAGE_FEE", "SETUP_FEE", "PRORATION"])
rows = st.one_of(
    st.builds(Row, charge_types, cents, cents),
    st.builds(Row, st.just("DISCOUNT"), cents.map(lambda c: -c)),
    st.builds(Row, st.just("TAX_ADJUSTMENT"), st.just(D(0)), cents.map(lambda c: -c) | cents),
    st.builds(Row, st.just("CREDIT"), cents.map(lambda c: -c)),
)


@given(st.lists(rows, max_size=12), cents, cents)
def test_identities(lines: list[Row], credits: Decimal, paid: Decimal) -> None:
    result = totals(lines, credits=credits, paid=paid)
    billed = [ln for ln in lines if ln.type != "CREDIT"]
    assert result.total == sum((ln.amount for ln in billed), D(0)) + sum(
        (ln.tax_amount for ln in lines), D(0)
    )
    assert result.total == result.subtotal - result.discount_total + result.tax_total
    assert result.discount_total >= 0
    assert 0 <= result.credit_total <= max(result.total, D(0))
    assert result.credit_total == min(credits, max(result.total, D(0)))
    assert result.amount_due == result.total - result.credit_total - paid
    # sums of whole cents are whole cents: nothing is rounded on the way
    assert result.total == result.total.quantize(D("0.01"))


@given(st.lists(rows, max_size=12))
def test_totals_do_not_depend_on_line_order(lines: list[Row]) -> None:
    assert totals(lines) == totals(list(reversed(lines)))
