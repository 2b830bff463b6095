"""Stage 8, Tax: per line, on the amount after discounts, by the customer's location."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from rating.context import RatingState, TaxRate
from rating.model import ZERO, Customer, LineType
from rating.money import round_money

UNTAXED = {LineType.DISCOUNT, LineType.CREDIT, LineType.TAX_ADJUSTMENT}


def applicable_rate(customer: Customer, rates: tuple[TaxRate, ...]) -> Decimal:
    """Sum of the rates that apply: a rate without country applies to every customer;
    one with a country to customers there; one with a region only in that region."""
    if customer.tax_exempt:
        return ZERO
    total = ZERO
    for rate in rates:
        if rate.country is not None and rate.country != customer.country:
            continue
        if rate.region is not None and rate.region != customer.region:
            continue
        total += rate.rate
    return total


def tax(state: RatingState) -> RatingState:
    ctx = state.context
    rate = applicable_rate(ctx.subscription.customer, ctx.tax_rates)
    if rate == 0:
        return state
    lines = []
    for line in state.lines:
        if line.type in UNTAXED:
            lines.append(line)
            continue
        taxable = line.amount - line.discount_amount
        amount = round_money(taxable * rate / Decimal(100), ctx.currency)
        lines.append(replace(line, tax_rate=rate, tax_amount=amount))
    return state.evolve(lines=tuple(lines))
