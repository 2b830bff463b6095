"""One-off invoices: charges outside any subscription (`POST /api/v1/invoices`).

A one-off invoice is created DRAFT, `type = "one_off"`, without a subscription, and
follows the lifecycle of every invoice (finalize, pay, void). Its lines are CHARGE
lines, each `quantity × unitAmount` rounded once HALF_UP to the currency (BILLING.md).

- A line names an add-on (`addOnCode`: its name and amount, `unitAmount` overriding
  the amount when given) or describes itself (`description` and `unitAmount`).
- Taxes: a line of an add-on that names taxes is taxed at those rates; every other line
  gets what a bill-run invoice of the customer gets, from the process's tax provider
  (the tenant's local table by default: country and region rates, else the defaults).
  An exempt customer pays none.
- The period is the instant of creation (`periodStart = periodEnd = now`): a one-off
  charge bills no interval. The invoice waits for an explicit finalize: the scheduler's
  finalize of drafts past grace skips it (`invoices.finalize_all`), bill runs and late
  usage never select it (they work per subscription), and a refresh refuses it (it has
  no usage to re-rate).
- No wallet credits are routed to it (prepaid credits pay subscription invoices, at
  the Route stage of the bill run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from invoicing import events
from invoicing.addons import MAX_AMOUNT, add_on_taxes, get_add_on, unit_price
from invoicing.billing_entities import customer_tax_rates
from invoicing.catalog import currency_code, get_customer
from invoicing.custom_sections import copy_onto
from invoicing.models import CustomerRow, InvoiceLineRow, InvoiceRow, new_id
from invoicing.tax.base import TaxableLine, TaxQuote, TaxRequest
from invoicing.tax.local import LocalRatesProvider
from invoicing.tax.service import TaxService
from invoicing.taxes import tax_rates
from rating.context import TaxRate
from rating.model import LineType
from rating.money import EXACT, MAX_UNIT_PRICE_DECIMALS, ZERO, percent, round_money, to_decimal
from rating.totals import totals

ONE_OFF = "one_off"
MAX_LINES = 500


@dataclass(frozen=True)
class OneOffLineSpec:
    quantity: object
    add_on_code: str | None = None
    description: str | None = None
    unit_amount: object = None


@dataclass(frozen=True)
class OneOffSpec:
    customer_id: str  # the customer's externalId
    currency: str
    lines: tuple[OneOffLineSpec, ...]


@dataclass(frozen=True)
class PricedLine:
    """A one-off line before tax: what it bills, and the add-on taxes it takes if any."""

    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    own_taxes: tuple[TaxRate, ...] = ()


def line_amount(quantity: Decimal, unit_amount: Decimal, currency: str) -> Decimal:
    """quantity × unitAmount, exact, then rounded once HALF_UP to the currency."""
    with localcontext(EXACT):
        exact = quantity * unit_amount
    return round_money(exact, currency)


def positive_quantity(value: object, what: str) -> Decimal:
    """A quantity above 0, below 10^12, with at most 12 decimals."""
    number = to_decimal(value, what=what)
    if number <= 0:
        raise ValidationFailed(f"{what} must be greater than 0")
    if number >= MAX_AMOUNT:
        raise ValidationFailed(f"{what} must be below {MAX_AMOUNT:f}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_UNIT_PRICE_DECIMALS:
        raise ValidationFailed(f"{what} has more than {MAX_UNIT_PRICE_DECIMALS} decimals")
    return number


def _priced(
    session: Session, tenant_id: str, currency: str, index: int, spec: OneOffLineSpec
) -> PricedLine:
    where = f"lines[{index}]"
    if (spec.add_on_code is None) == (spec.description is None):
        raise ValidationFailed(f"{where}: give exactly one of addOnCode and description")
    quantity = positive_quantity(spec.quantity, f"{where}.quantity")
    if spec.add_on_code is not None:
        try:
            add_on = get_add_on(session, tenant_id, spec.add_on_code)
        except NotFound as exc:
            raise ValidationFailed(f"{where}.addOnCode: {exc.message}") from None
        if add_on.currency != currency:
            raise ValidationFailed(
                f"{where}.addOnCode: add-on {add_on.code!r} is priced in {add_on.currency}, "
                f"the invoice is in {currency}"
            )
        unit = (
            add_on.amount
            if spec.unit_amount is None
            else unit_price(spec.unit_amount, f"{where}.unitAmount")
        )
        return PricedLine(
            description=add_on.name,
            quantity=quantity,
            unit_amount=unit,
            amount=line_amount(quantity, unit, currency),
            own_taxes=add_on_taxes(session, tenant_id, add_on),
        )
    description = (spec.description or "").strip()
    if not description:
        raise ValidationFailed(f"{where}.description must not be empty")
    if spec.unit_amount is None:
        raise ValidationFailed(f"{where}: a description line needs its unitAmount")
    unit = unit_price(spec.unit_amount, f"{where}.unitAmount")
    return PricedLine(description, quantity, unit, line_amount(quantity, unit, currency))


def _quote(
    tax: TaxService,
    session: Session,
    tenant_id: str,
    customer: CustomerRow,
    currency: str,
    lines: Sequence[tuple[int, PricedLine]],
    now: datetime,
) -> TaxQuote | None:
    """The customer's taxes of these lines from the process's provider (keys: positions);
    None when nothing can be due (exempt customer, empty local table, no lines)."""
    if customer.tax_exempt or not lines:
        return None
    request = TaxRequest(
        tenant_id=tenant_id,
        customer_id=customer.external_id,
        country=customer.country,
        region=customer.region,
        currency=currency,
        invoice_date=now.date(),  # issued now: nothing waits for a period to end
        lines=tuple(
            TaxableLine(
                key=str(position),
                amount=line.amount,
                fee_type=LineType.CHARGE.value,
                description=line.description,
            )
            for position, line in lines
        ),
        tax_exempt=customer.tax_exempt,
    )
    if tax.provider is None:  # the tenant's local table (a cached provider may be falsy)
        # The billing entity's taxes stand in for the tenant's defaults.
        rates = customer_tax_rates(session, tenant_id, customer.id, tax_rates(session, tenant_id))
        return LocalRatesProvider(rates).rates_for(request) if rates else None
    return tax.provider.rates_for(request)


def create_one_off(
    session: Session, tenant_id: str, spec: OneOffSpec, tax: TaxService, now: datetime
) -> InvoiceRow:
    """A DRAFT one-off invoice of the customer, taxed and totalled, with its
    `invoice.created` event, in the caller's transaction."""
    customer = get_customer(session, tenant_id, spec.customer_id)
    currency = currency_code(spec.currency)
    if currency != customer.currency:
        raise ValidationFailed(
            f"currency {currency} is not the currency of customer {customer.external_id!r} "
            f"({customer.currency})"
        )
    if not spec.lines:
        raise ValidationFailed("lines must name at least one line")
    if len(spec.lines) > MAX_LINES:
        raise ValidationFailed(f"an invoice takes at most {MAX_LINES} lines")
    priced = [_priced(session, tenant_id, currency, i, line) for i, line in enumerate(spec.lines)]
    quote = _quote(
        tax,
        session,
        tenant_id,
        customer,
        currency,
        [(i, line) for i, line in enumerate(priced) if not line.own_taxes],
        now,
    )
    invoice = InvoiceRow(
        id=new_id("inv"),
        tenant_id=tenant_id,
        customer_id=customer.id,
        subscription_id=None,
        bill_run_id=None,
        number=None,
        status="DRAFT",
        type=ONE_OFF,
        currency=currency,
        period_start=now,
        period_end=now,
        amount_paid=ZERO,
        credit_total=ZERO,
        created_at=now,
        updated_at=now,
    )
    invoice.customer = customer
    for position, line in enumerate(priced):
        rate, tax_amount = ZERO, ZERO
        if customer.tax_exempt:
            pass
        elif line.own_taxes:
            rate = sum((r.rate for r in line.own_taxes), ZERO)
            tax_amount = round_money(percent(line.amount, rate), currency)
        elif quote is not None:
            quoted = quote.line(str(position))
            rate, tax_amount = quoted.rate, quoted.amount
        invoice.lines.append(
            InvoiceLineRow(
                id=new_id("il"),
                position=position,
                type=LineType.CHARGE.value,
                description=line.description,
                metric=None,
                group={},
                charge_id=None,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
                discount_amount=ZERO,
                tax_rate=rate,
                tax_amount=tax_amount,
                period_start=now,
                period_end=now,
            )
        )
    result = totals(invoice.lines)
    invoice.subtotal = result.subtotal
    invoice.discount_total = result.discount_total
    invoice.tax_total = result.tax_total
    invoice.total = result.total
    invoice.amount_due = result.amount_due
    session.add(invoice)
    copy_onto(session, invoice)
    session.flush()
    events.record(
        session, tenant_id, "invoice.created", invoice.id, events.invoice_data(invoice), now
    )
    return invoice
