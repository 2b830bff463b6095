"""The local rate table: which rates apply, sums, exemption, rounding, and agreement
with the pure tax stage of the rating pipeline (whose rule it uses)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.tax import LocalRatesProvider, TaxableLine, TaxRate, TaxRequest
from rating.model import Customer
from rating.stages.tax import applicable_rate

TABLE = (
    TaxRate("GLOBAL", "Digital services levy", Decimal("1")),
    TaxRate("US", "US federal", Decimal("5"), country="US"),
    TaxRate("US-CA", "California", Decimal("2.25"), country="US", region="CA"),
    TaxRate("DE", "Umsatzsteuer", Decimal("19"), country="DE"),
    TaxRate("ANY-CA", "Region without a country", Decimal("0.5"), region="CA"),
)


def request(
    country: str | None, region: str | None, *lines: TaxableLine, **extra: object
) -> TaxRequest:
    fields: dict[str, object] = {
        "tenant_id": "ten_1",
        "customer_id": "cust-1",
        "country": country,
        "region": region,
        "currency": "USD",
        "invoice_date": date(2025, 1, 31),
        "lines": lines or (TaxableLine("0", Decimal("100.00"), "CHARGE"),),
        **extra,
    }
    return TaxRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("country", "region", "rate", "codes"),
    [
        ("US", "CA", Decimal("7.25"), ["US", "US-CA"]),  # country and region add up
        ("us", " ca", Decimal("7.25"), ["US", "US-CA"]),  # codes compare case-blind
        ("US", "NY", Decimal("5"), ["US"]),
        ("US", None, Decimal("5"), ["US"]),
        ("DE", None, Decimal("19"), ["DE"]),
        ("FR", "CA", Decimal("1"), ["GLOBAL"]),  # no rate of its own: the default
        (None, None, Decimal("1"), ["GLOBAL"]),
    ],
)
def test_matching_rates_add_up(
    country: str | None, region: str | None, rate: Decimal, codes: list[str]
) -> None:
    provider = LocalRatesProvider(TABLE)

    quote = provider.rates_for(request(country, region))

    line = quote.line("0")
    assert quote.provider == "local"
    assert line.rate == rate
    assert line.amount == rate.quantize(Decimal("0.01"))  # 100.00 x rate %
    assert line.amount.as_tuple().exponent == -2
    assert [c.jurisdiction for c in line.components] == codes


def test_exempt_customer_pays_nothing() -> None:
    quote = LocalRatesProvider(TABLE).rates_for(request("US", "CA", tax_exempt=True))
    assert [(line.rate, line.amount, line.components) for line in quote.lines] == [
        (Decimal(0), Decimal(0), ())
    ]


def test_each_line_is_rounded_once_half_up_in_its_currency() -> None:
    lines = (
        TaxableLine("a", Decimal("33.33"), "USAGE_FEE"),  # x 7.25 % = 2.416425
        TaxableLine("b", Decimal("2.00"), "USAGE_FEE"),  # x 7.25 % = 0.145, half up
        TaxableLine("c", Decimal("0"), "CHARGE"),
    )
    quote = LocalRatesProvider(TABLE).rates_for(request("US", "CA", *lines))
    assert [line.amount for line in quote.lines] == [
        Decimal("2.42"),
        Decimal("0.15"),
        Decimal("0.00"),
    ]
    assert quote.total == Decimal("2.57")


@pytest.mark.parametrize(
    ("currency", "amount", "tax"),
    [("JPY", Decimal("1234"), Decimal("247")), ("BHD", Decimal("10.005"), Decimal("2.001"))],
)
def test_minor_units_follow_the_currency(currency: str, amount: Decimal, tax: Decimal) -> None:
    provider = LocalRatesProvider([TaxRate("VAT", "VAT", Decimal("20"))])
    quote = provider.rates_for(
        request(None, None, TaxableLine("0", amount, "CHARGE"), currency=currency)
    )
    assert quote.line("0").amount == tax
    assert quote.line("0").amount.as_tuple().exponent == tax.as_tuple().exponent


def test_empty_table_taxes_nothing() -> None:
    quote = LocalRatesProvider([]).rates_for(request("US", "CA"))
    assert (quote.line("0").rate, quote.line("0").amount) == (Decimal(0), Decimal("0.00"))


countries = st.sampled_from([None, "US", "us", "DE", "FR"])
regions = st.sampled_from([None, "CA", "ca", "NY", "BY"])
table_rows = st.builds(
    TaxRate,
    code=st.text(min_size=1, max_size=5),
    name=st.just("rate"),
    rate=st.decimals(min_value=0, max_value=30, places=3),
    country=countries,
    region=regions,
)


@given(
    rows=st.lists(table_rows, max_size=6),
    country=countries,
    region=regions,
    exempt=st.booleans(),
)
def test_agrees_with_the_pure_tax_stage(
    rows: list[TaxRate], country: str | None, region: str | None, exempt: bool
) -> None:
    customer = Customer("c", "C", "USD", country=country, region=region, tax_exempt=exempt)
    quote = LocalRatesProvider(rows).rates_for(request(country, region, tax_exempt=exempt))
    assert quote.line("0").rate == applicable_rate(customer, tuple(rows))
