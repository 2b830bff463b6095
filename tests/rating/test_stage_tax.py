"""Stage 8, Tax: rates by country and region, exemption, per line after discounts."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from rating.context import BillingContext, QuotedTax, RatingState, TaxRate
from rating.model import (
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    Plan,
    Subscription,
)
from rating.stages.tax import (
    InvalidLineTaxes,
    applicable_rate,
    applicable_rates,
    tax,
    tax_from_provider,
    taxable_positions,
)
from tests.helpers.dates import OCTOBER

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


# ------------------------------------------------------------ per-line provider results


def run_quoted(
    who: Customer,
    lines: list[InvoiceLine],
    quoted: dict[int, tuple[str, str]],
    currency: str = "USD",
    rates: tuple[TaxRate, ...] = RATES,
) -> RatingState:
    plan = Plan("pro", "Pro", currency, Interval.MONTHLY)
    subscription = Subscription("sub", who, plan, OCTOBER.start)
    ctx = BillingContext(subscription, OCTOBER, tax_rates=rates)
    line_taxes = {i: QuotedTax(D(rate), D(amount)) for i, (rate, amount) in quoted.items()}
    return tax_from_provider(RatingState(context=ctx, lines=tuple(lines)), line_taxes)


@pytest.mark.parametrize(
    ("who", "lines", "quoted", "expected"),
    [
        # AvaTax rounds per jurisdiction: 2.00 + 0.08 + 0.33 = 2.41 on 33.33 at 7.25 %,
        # where 7.25 % of the whole line is 2.416… → 2.42. The provider's amount is kept.
        pytest.param(
            customer("US", "CA"),
            [line(LineType.CHARGE, "33.33")],
            {0: ("7.25", "2.41")},
            [("7.25", "2.41")],
            id="provider-amount-not-rate-times-net",
        ),
        pytest.param(
            customer("US", "CA"),
            [line(LineType.USAGE_FEE, "100.00"), line(LineType.CHARGE, "33.33")],
            {0: ("7.25", "7.25"), 1: ("7.25", "2.41")},
            [("7.25", "7.25"), ("7.25", "2.41")],
            id="several-lines",
        ),
        pytest.param(
            customer("US", "PA"),
            [line(LineType.USAGE_FEE, "50.00"), line(LineType.SETUP_FEE, "20.00")],
            {0: ("0", "0.00"), 1: ("6", "1.20")},
            [("0", "0.00"), ("6", "1.20")],
            id="rate-per-line",
        ),
        pytest.param(
            customer("US", "CA"),
            [line(LineType.CHARGE, "49.00", "4.90"), line(LineType.DISCOUNT, "-4.90")],
            {0: ("7.25", "3.20")},
            [("7.25", "3.20"), ("0", "0")],
            id="discount-lines-untaxed",
        ),
        pytest.param(
            customer("US", "CA"),
            [
                line(LineType.PRORATION, "10.00"),
                line(LineType.CREDIT, "-1.00"),
                line(LineType.TAX_ADJUSTMENT, "0"),
            ],
            {0: ("7.25", "0.73")},
            [("7.25", "0.73"), ("0", "0"), ("0", "0")],
            id="credit-and-adjustment-untaxed",
        ),
        # The local table in the context (FR 20 %) is not consulted on this path.
        pytest.param(
            customer("FR"),
            [line(LineType.CHARGE, "49.00")],
            {0: ("19", "9.31")},
            [("19", "9.31")],
            id="table-ignored",
        ),
        pytest.param(
            customer("US", "CA", exempt=True),
            [line(LineType.CHARGE, "33.33"), line(LineType.USAGE_FEE, "100.00")],
            {0: ("7.25", "2.41"), 1: ("7.25", "7.25")},
            [("0", "0"), ("0", "0")],
            id="exempt-pays-none",
        ),
        pytest.param(
            customer("US", "CA"),
            [line(LineType.DISCOUNT, "0")],
            {},
            [("0", "0")],
            id="nothing-taxable",
        ),
    ],
)
def test_tax_from_provider_per_line(
    who: Customer,
    lines: list[InvoiceLine],
    quoted: dict[int, tuple[str, str]],
    expected: list[tuple[str, str]],
) -> None:
    state = run_quoted(who, lines, quoted)
    assert [(ln.tax_rate, ln.tax_amount) for ln in state.lines] == [
        (D(rate), D(amount)) for rate, amount in expected
    ]
    assert [ln.amount for ln in state.lines] == [ln.amount for ln in lines]
    assert state.tax_rates_applied == ()


def test_tax_from_provider_zero_decimal_currency() -> None:
    state = run_quoted(
        customer("JP"), [line(LineType.CHARGE, "1000")], {0: ("10", "100")}, currency="JPY"
    )
    assert state.lines[0].tax_amount == D(100)


def test_taxable_positions_are_the_keys_of_provider_results() -> None:
    lines = [
        line(LineType.CHARGE, "10.00"),
        line(LineType.DISCOUNT, "-1.00"),
        line(LineType.USAGE_FEE, "5.00"),
        line(LineType.CREDIT, "-1.00"),
        line(LineType.SETUP_FEE, "1.00"),
    ]
    state = RatingState(
        context=BillingContext(
            Subscription(
                "sub", customer("FR"), Plan("p", "P", "USD", Interval.MONTHLY), OCTOBER.start
            ),
            OCTOBER,
        ),
        lines=tuple(lines),
    )
    assert taxable_positions(state) == (0, 2, 4)


@pytest.mark.parametrize(
    ("lines", "quoted", "currency", "message"),
    [
        pytest.param(
            [line(LineType.CHARGE, "10.00"), line(LineType.USAGE_FEE, "5.00")],
            {0: ("10", "1.00")},
            "USD",
            r"no tax result for taxable lines \[1\]",
            id="missing-line",
        ),
        pytest.param(
            [line(LineType.CHARGE, "10.00"), line(LineType.DISCOUNT, "-1.00")],
            {0: ("10", "1.00"), 1: ("10", "-0.10")},
            "USD",
            r"not taxable: \[1\]",
            id="discount-line-keyed",
        ),
        pytest.param(
            [line(LineType.CHARGE, "10.00")],
            {0: ("10", "1.00"), 1: ("10", "1.00")},
            "USD",
            r"not taxable: \[1\]",
            id="position-out-of-range",
        ),
        # 1-based numbers (AvaTax's) instead of positions are caught, not mis-assigned.
        pytest.param(
            [line(LineType.CHARGE, "10.00"), line(LineType.USAGE_FEE, "5.00")],
            {1: ("10", "1.00"), 2: ("10", "0.50")},
            "USD",
            r"not taxable: \[2\]",
            id="one-based-keys",
        ),
        pytest.param(
            [line(LineType.CHARGE, "33.33")],
            {0: ("7.25", "2.4164")},
            "USD",
            r"line 0: tax 2.4164 is not in USD's minor unit",
            id="unrounded-amount",
        ),
        pytest.param(
            [line(LineType.CHARGE, "1000")],
            {0: ("10", "100.5")},
            "JPY",
            r"not in JPY's minor unit",
            id="unrounded-zero-decimal",
        ),
        pytest.param(
            [line(LineType.CHARGE, "10.00")],
            {0: ("NaN", "1.00")},
            "USD",
            r"must be finite",
            id="not-finite",
        ),
    ],
)
def test_tax_from_provider_refuses_results_that_do_not_fit(
    lines: list[InvoiceLine], quoted: dict[int, tuple[str, str]], currency: str, message: str
) -> None:
    with pytest.raises(InvalidLineTaxes, match=message):
        run_quoted(customer("US", "CA"), lines, quoted, currency=currency)
