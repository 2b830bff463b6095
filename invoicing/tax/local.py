"""The default provider: the tenant's own tax-rate table (`POST /api/v1/taxes`).

Which rates apply to a customer is decided by the pure tax stage's own rule,
`rating.stages.tax.applicable_rates` (called here, not re-implemented, so the provider
and the stage can never disagree): rates of the customer's country, plus those of its
region, add up; rates with neither country nor region are the default when none of
those apply; an exempt customer pays none. Each line is taxed on its amount after discounts, rounded
once HALF_UP to the currency's minor unit, as the stage does.
"""

from __future__ import annotations

from collections.abc import Iterable

from invoicing.tax.base import LineTax, TaxComponent, TaxQuote, TaxRequest, empty_quote
from rating.context import TaxRate
from rating.model import Customer
from rating.money import ZERO, percent, round_money
from rating.stages.tax import applicable_rates


class LocalRatesProvider:
    """Taxes from the tenant's rate table; no I/O, so it is never worth caching."""

    name = "local"
    customer_specific = False

    def __init__(self, rates: Iterable[TaxRate]) -> None:
        self.rates = tuple(rates)

    def matching(self, request: TaxRequest) -> tuple[TaxRate, ...]:
        """The table rates that apply to the request's customer, in table order."""
        customer = Customer(
            external_id=request.customer_id,
            name=request.customer_id,
            currency=request.currency,
            country=request.country,
            region=request.region,
            tax_exempt=request.tax_exempt,
        )
        return applicable_rates(customer, self.rates)

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        """Sum of the applicable rates on every line; zero for an exempt customer."""
        matching = self.matching(request)
        if not matching:
            return empty_quote(self.name, request)
        total_rate = sum((rate.rate for rate in matching), ZERO)
        components = tuple(
            TaxComponent(name=rate.name, rate=rate.rate, jurisdiction=rate.code)
            for rate in matching
        )
        lines = tuple(
            LineTax(
                key=line.key,
                rate=total_rate,
                amount=round_money(percent(line.amount, total_rate), request.currency),
                components=components,
            )
            for line in request.lines
        )
        return TaxQuote(self.name, request.currency, lines)
