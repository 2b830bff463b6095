"""Stage 8, Tax: per line, on the amount after discounts, by the customer's location.

Two inputs, one rule for what is taxed (every line but DISCOUNT, CREDIT and
TAX_ADJUSTMENT; DISCOUNT amounts are already allocated to the lines they reduce):

- `tax(state)`: the local rates table in `BillingContext.tax_rates` (the default
  provider). The stage picks the rates that apply to the customer and taxes each line:
  tax = round(net × Σ applicable rates / 100), net = amount − discount_amount, rounded
  once per line (ROUND_HALF_UP).
- `tax_from_provider(state, line_taxes)`: per-line results of an external provider
  (AvaTax, Vertex), asked by the invoicing layer between Discount and Tax (rating does
  no I/O). Each taxable line takes the provider's rate and exact amount as given, never
  rate × net (providers round per jurisdiction).

Exempt customers pay no tax either way. A fixed charge that bills a catalog add-on with
taxes of its own (`BillingContext.charge_tax_rates`) is taxed at those rates instead of
the location rates, as a one-off line of that add-on is (docs/one-off-invoices.md).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from rating.context import LineTaxes, QuotedTax, RatingState, TaxRate
from rating.model import Customer, LineType
from rating.money import ZERO, percent, round_money

UNTAXED = {LineType.DISCOUNT, LineType.CREDIT, LineType.TAX_ADJUSTMENT}


class InvalidLineTaxes(ValueError):
    """Provider results that do not fit the invoice (a caller bug, never invoiced)."""


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
    customer = ctx.subscription.customer
    applied = applicable_rates(customer, ctx.tax_rates)
    rate = sum((r.rate for r in applied), ZERO)
    own = {} if customer.tax_exempt else dict(ctx.charge_tax_rates)
    if rate == 0 and not own:
        return state.evolve(tax_rates_applied=applied)
    lines = []
    for line in state.lines:
        rates = own.get(line.charge_id or "")
        line_rate = rate if rates is None else sum((r.rate for r in rates), ZERO)
        if line.type in UNTAXED or line_rate == 0:
            lines.append(line)
            continue
        taxable = line.amount - line.discount_amount
        amount = round_money(percent(taxable, line_rate), ctx.currency)
        lines.append(replace(line, tax_rate=line_rate, tax_amount=amount))
        if rates is not None:
            applied += tuple(r for r in rates if r not in applied)
    return state.evolve(lines=tuple(lines), tax_rates_applied=applied)


def own_line_taxes(state: RatingState) -> dict[int, QuotedTax]:
    """The taxes of the lines whose fixed charge bills an add-on with taxes of its own,
    at those rates, by position (what `tax` computes for them; a tax provider is not
    asked about them). None for an exempt customer."""
    ctx = state.context
    if ctx.subscription.customer.tax_exempt or not ctx.charge_tax_rates:
        return {}
    out: dict[int, QuotedTax] = {}
    for i, line in enumerate(state.lines):
        rates = ctx.charge_tax_rates.get(line.charge_id or "")
        if rates is None or line.type in UNTAXED:
            continue
        rate = sum((r.rate for r in rates), ZERO)
        amount = round_money(percent(line.amount - line.discount_amount, rate), ctx.currency)
        out[i] = QuotedTax(rate=rate, amount=amount)
    return out


def taxable_positions(state: RatingState) -> tuple[int, ...]:
    """Positions of the lines that carry tax, the keys `tax_from_provider` expects."""
    return tuple(i for i, line in enumerate(state.lines) if line.type not in UNTAXED)


def tax_from_provider(state: RatingState, line_taxes: LineTaxes) -> RatingState:
    """Stage 8 with a provider's per-line results, keyed by line position.

    Every taxable line must have a result and only taxable lines may have one; each
    amount must already be in the currency's minor unit (providers round, the stage
    does not round again). An exempt customer pays none, whatever the results say.
    """
    ctx = state.context
    if ctx.subscription.customer.tax_exempt:
        return state.evolve(tax_rates_applied=())
    positions = taxable_positions(state)
    unexpected = sorted(set(line_taxes) - set(positions))
    if unexpected:
        raise InvalidLineTaxes(f"tax results for lines that are not taxable: {unexpected}")
    missing = [i for i in positions if i not in line_taxes]
    if missing:
        raise InvalidLineTaxes(f"no tax result for taxable lines {missing}")
    lines = list(state.lines)
    for i in positions:
        quoted = line_taxes[i]
        if not quoted.amount.is_finite() or not quoted.rate.is_finite():
            raise InvalidLineTaxes(f"line {i}: tax rate and amount must be finite")
        if quoted.amount != round_money(quoted.amount, ctx.currency):
            raise InvalidLineTaxes(
                f"line {i}: tax {quoted.amount} is not in {ctx.currency}'s minor unit"
            )
        lines[i] = replace(lines[i], tax_rate=quoted.rate, tax_amount=quoted.amount)
    return state.evolve(lines=tuple(lines), tax_rates_applied=())
