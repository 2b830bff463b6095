"""Stage 10, Settle: totals are sums of rounded lines; amount due = total − credits."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rating.context import BillingContext, RatingState, WalletDebit
from rating.model import (
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    Plan,
    Subscription,
)
from rating.stages.settle import InconsistentInvoice, settle
from tests.helpers.dates import OCTOBER


def line(kind: LineType, amount: str, discount: str = "0", tax: str = "0") -> InvoiceLine:
    return InvoiceLine(kind, kind.value, D(amount), discount_amount=D(discount), tax_amount=D(tax))


def run(lines: list[InvoiceLine], debits: tuple[str, ...] = ()) -> RatingState:
    plan = Plan("pro", "Pro", "EUR", Interval.MONTHLY)
    subscription = Subscription("sub_1", Customer("acme", "Acme", "EUR"), plan, OCTOBER.start)
    return RatingState(
        context=BillingContext(subscription, OCTOBER),
        lines=tuple(lines),
        wallet_debits=tuple(WalletDebit(f"w{i}", D(a)) for i, a in enumerate(debits)),
    )


@pytest.mark.parametrize(
    ("lines", "debits", "totals"),
    [
        pytest.param([], [], ("0", "0", "0", "0", "0", "0"), id="empty"),
        pytest.param(
            [line(LineType.CHARGE, "49.00", tax="9.80")],
            [],
            ("49.00", "0", "9.80", "58.80", "0", "58.80"),
            id="one-line",
        ),
        pytest.param(
            [
                line(LineType.CHARGE, "49.00", "4.90", "8.82"),
                line(LineType.USAGE_FEE, "33.00", "3.30", "5.94"),
                line(LineType.DISCOUNT, "-8.20"),
            ],
            ["50.00"],
            ("82.00", "8.20", "14.76", "88.56", "50.00", "38.56"),
            id="discount-tax-credit",
        ),
        pytest.param(
            [
                line(LineType.USAGE_FEE, "150.00", "50.00", "20.00"),
                line(LineType.SETUP_FEE, "10.00", tax="2.00"),
                line(LineType.PRORATION, "5.55", tax="1.11"),
                line(LineType.DISCOUNT, "-50.00"),
            ],
            ["10.00", "78.66"],
            ("165.55", "50.00", "23.11", "138.66", "88.66", "50.00"),
            id="max-spend-adjustment-and-two-wallets",
        ),
        pytest.param(
            [line(LineType.CHARGE, "10.00", "10.00"), line(LineType.DISCOUNT, "-10.00")],
            [],
            ("10.00", "10.00", "0", "0", "0", "0"),
            id="fully-discounted",
        ),
    ],
)
def test_totals(lines: list[InvoiceLine], debits: list[str], totals: tuple[str, ...]) -> None:
    invoice = settle(run(lines, tuple(debits)))
    assert (
        invoice.subtotal,
        invoice.discount_total,
        invoice.tax_total,
        invoice.total,
        invoice.credit_total,
        invoice.amount_due,
    ) == tuple(D(t) for t in totals)
    # total = Σ line amounts (DISCOUNT lines negative) + Σ line taxes
    assert invoice.total == sum((ln.amount + ln.tax_amount for ln in lines), D(0))
    assert (invoice.subscription_id, invoice.customer_id, invoice.currency) == (
        "sub_1",
        "acme",
        "EUR",
    )
    assert invoice.period == OCTOBER
    assert invoice.lines == tuple(lines)


def test_discount_not_allocated_to_lines_is_refused() -> None:
    with pytest.raises(InconsistentInvoice, match="allocated"):
        settle(run([line(LineType.CHARGE, "10.00"), line(LineType.DISCOUNT, "-2.00")]))


def test_credits_beyond_the_total_are_refused() -> None:
    with pytest.raises(InconsistentInvoice, match="exceed"):
        settle(run([line(LineType.CHARGE, "10.00")], ("10.01",)))
