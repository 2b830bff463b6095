"""Stage 8, Tax: rates by country and region, exemption, per line after discounts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from rating.context import BillingContext, RatingState, TaxRate
from rating.model import (
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    Period,
    Plan,
    Subscription,
)
from rating.stages.tax import applicable_rate, applicable_rates, tax

OCTOBER = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))

FR = TaxRate("fr_vat", "TVA", D(20), country="FR")
CA_GST = TaxRate("ca_gst", "GST", D(5), country="CA")
CA_QC = TaxRate("ca_qst", "QST", D("9.975"), country="CA", region="QC")
CA_ON = TaxRate("ca_hst_on", "HST", D(8), country="CA", region="ON")
DEFAULT = TaxRate("default", "Default", D(10))
RATES = (FR, CA_GST, CA_QC, CA_ON, DEFAULT)


def customer(
    country: str | None = None, region: str | None = None, exempt: bool = False
) -> Customer:
    return Customer("acme", "Acme", "USD", country=country, region=region, tax_exempt=exempt)


@pytest.mark.parametrize(
    ("who", "expected", "rate"),
    [
        pytest.param(customer("FR"), (FR,), "20", id="country"),
        pytest.param(customer("fr"), (FR,), "20", id="country-case-insensitive"),
        pytest.param(
            customer("CA", "QC"), (CA_GST, CA_QC), "14.975", id="country-and-region-stack"
        ),
        pytest.param(customer("CA", "BC"), (CA_GST,), "5", id="other-region-country-only"),
        pytest.param(customer("CA"), (CA_GST,), "5", id="no-region"),
        pytest.param(customer("DE"), (DEFAULT,), "10", id="default-when-nothing-local"),
        pytest.param(customer(), (DEFAULT,), "10", id="no-country-default"),
        pytest.param(customer("FR", exempt=True), (), "0", id="exempt"),
    ],
)
def test_applicable_rates(who: Customer, expected: tuple[TaxRate, ...], rate: str) -> None:
    assert applicable_rates(who, RATES) == expected
    assert applicable_rate(who, RATES) == D(rate)


def test_no_rates_no_tax() -> None:
    assert applicable_rates(customer("FR"), ()) == ()


def run(who: Customer, lines: list[InvoiceLine], rates: tuple[TaxRate, ...] = RATES) -> RatingState:
    plan = Plan("pro", "Pro", "USD", Interval.MONTHLY)
    subscription = Subscription("sub", who, plan, OCTOBER.start)
    ctx = BillingContext(subscription, OCTOBER, tax_rates=rates)
    return tax(RatingState(context=ctx, lines=tuple(lines)))


def line(kind: LineType, amount: str, discount: str = "0") -> InvoiceLine:
    return InvoiceLine(kind, kind.value, D(amount), discount_amount=D(discount))


@pytest.mark.parametrize(
    ("who", "lines", "taxes"),
    [
        pytest.param(customer("FR"), [line(LineType.CHARGE, "49.00")], ["9.80"], id="plain"),
        pytest.param(
            customer("FR"), [line(LineType.CHARGE, "49.00", "4.90")], ["8.82"], id="after-discount"
        ),
        pytest.param(
            customer("FR"),
            [line(LineType.USAGE_FEE, "100.00", "100.00")],
            ["0.00"],
            id="fully-discounted",
        ),
        # 14.975 % of 0.10 = 0.014975 → 0.01; of 12.35 = 1.8494… → 1.85: rounded per line
        pytest.param(
            customer("CA", "QC"),
            [line(LineType.USAGE_FEE, "0.10"), line(LineType.USAGE_FEE, "12.35")],
            ["0.01", "1.85"],
            id="rounded-per-line",
        ),
        # 10 % of 0.05 = 0.005 → 0.01 (ROUND_HALF_UP; half-even would give 0.00)
        pytest.param(
            customer("DE"),
            [line(LineType.SETUP_FEE, "0.05"), line(LineType.PRORATION, "0.04")],
            ["0.01", "0.00"],
            id="half-up",
        ),
        pytest.param(
            customer("FR"),
            [line(LineType.CHARGE, "49.00"), line(LineType.DISCOUNT, "-4.90")],
            ["9.80", "0"],
            id="discount-lines-untaxed",
        ),
        pytest.param(
            customer("FR", exempt=True), [line(LineType.CHARGE, "49.00")], ["0"], id="exempt"
        ),
    ],
)
def test_tax_per_line(who: Customer, lines: list[InvoiceLine], taxes: list[str]) -> None:
    state = run(who, lines)
    assert [ln.tax_amount for ln in state.lines] == [D(t) for t in taxes]
    rate = applicable_rate(who, RATES)
    assert [ln.tax_rate for ln in state.lines] == [
        D(0) if ln.type == LineType.DISCOUNT else rate for ln in lines
    ]


def test_applied_rates_are_reported_for_the_tax_breakdown() -> None:
    state = run(customer("CA", "ON"), [line(LineType.CHARGE, "10.00")])
    assert state.tax_rates_applied == (CA_GST, CA_ON)
    assert state.lines[0].tax_amount == D("1.30")
