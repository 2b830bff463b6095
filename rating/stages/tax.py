"""Stage 8, Tax: per line, on the amount after discounts, by the customer's location.

The rates come from the tax provider (a local rates table by default); this stage
picks those that apply to the customer and taxes every taxable line:
tax = round(net × Σ applicable rates / 100), net = amount − discount_amount, rounded
once per line (ROUND_HALF_UP). DISCOUNT lines are not taxed: their amounts are already
allocated to the lines they reduce.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from rating.context import RatingState, TaxRate
from rating.model import ZERO, Customer, LineType
from rating.money import round_money
from rating.pricing.base import percent_of

UNTAXED = {LineType.DISCOUNT, LineType.CREDIT, LineType.TAX_ADJUSTMENT}


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().upper() == b.strip().upper()


def applicable_rates(customer: Customer, rates: tuple[TaxRate, ...]) -> tuple[TaxRate, ...]:
    """The rates that apply to a customer.

    Rates of the customer's country (region unset) and of its region (country and region
    both match) add up, as federal and state taxes do. A rate without a country is a
    default: it applies only when no country or region rate does (Lago's organization
    taxes, which customer-specific taxes replace). Exempt customers pay none.
    """
    if customer.tax_exempt:
        return ()
    local = tuple(
        rate
        for rate in rates
        if rate.country is not None
        and _same(rate.country, customer.country)
        and (rate.region is None or _same(rate.region, customer.region))
    )
    if local:
        return local  # country and region rates stack; the defaults do not add to them
    return tuple(rate for rate in rates if rate.country is None and rate.region is None)


def applicable_rate(customer: Customer, rates: tuple[TaxRate, ...]) -> Decimal:
    """The customer's total tax rate in percent (0 when exempt or when nothing applies)."""
    return sum((rate.rate for rate in applicable_rates(customer, rates)), ZERO)


def tax(state: RatingState) -> RatingState:
    ctx = state.context
    applied = applicable_rates(ctx.subscription.customer, ctx.tax_rates)
    rate = sum((r.rate for r in applied), ZERO)
    if rate == 0:
        return state.evolve(tax_rates_applied=applied)
    lines = []
    for line in state.lines:
        if line.type in UNTAXED:
            lines.append(line)
            continue
        taxable = line.amount - line.discount_amount
        amount = round_money(percent_of(taxable, rate), ctx.currency)
        lines.append(replace(line, tax_rate=rate, tax_amount=amount))
    return state.evolve(lines=tuple(lines), tax_rates_applied=applied)
