"""Fee adjustments: units and unit price overrides of a DRAFT invoice's line.

    POST   /invoices/{id}/lines/{lineId}/adjustment  {quantity?, unitAmount?, preview?}
    DELETE /invoices/{id}/lines/{lineId}/adjustment

The line's amount becomes quantity × unitAmount, rounded once HALF_UP; a value the
adjustment does not override (never sent) keeps the rating's value, and follows the
rating when a refresh changes it (an adjusted unit price with refreshed usage, say);
its tax is recomputed at the line's tax rate on the amount after the discount
allocated to it; the invoice totals are recomputed from the
lines (`invoices.recompute_totals`). The values the rating computed are stored with
the adjustment, and a DELETE puts them back.

Rules (docs/one-off-invoices.md):
- Only a DRAFT (409 naming its state), only a charge line: CHARGE, USAGE_FEE,
  SETUP_FEE, PRORATION (DISCOUNT, CREDIT and TAX_ADJUSTMENT are a 422).
- A line's coupon discount (`discount_amount`) stays as it was allocated; an adjustment
  that would bring the line below it is a 422 (the coupon's remainder was already
  taken from it).
- Wallet credits already on the draft never exceed the new total: when the total falls
  below them, the excess goes back to the wallets (`wallets.refund_excess`); when it
  rises, no further credits are taken (routing happens at rating: refresh the draft).
- A refresh re-rates the draft, then each adjustment wins again on the new line of the
  same charge, metric, group and period (Lago's adjusted fees), with the new rating's
  values stored as the computed ones; an adjustment whose line the new rating no longer
  has is dropped.
- `preview` computes the same invoice and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing.addons import MAX_AMOUNT, unit_price
from invoicing.invoices import get_invoice, recompute_totals
from invoicing.models import InvoiceLineRow, InvoiceRow, LineAdjustmentRow, new_id
from invoicing.one_off import line_amount
from rating.model import LineType
from rating.money import MAX_UNIT_PRICE_DECIMALS, ZERO, percent, round_money, to_decimal
from rating.totals import Totals, totals

NOT_ADJUSTABLE = frozenset({LineType.DISCOUNT, LineType.CREDIT, LineType.TAX_ADJUSTMENT})


@dataclass(frozen=True)
class AdjustmentSpec:
    quantity: object = None
    unit_amount: object = None


@dataclass(frozen=True)
class AdjustedLine:
    """The values an adjustment gives a line, and what it overrides (None: the rating's)."""

    line_id: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    tax_amount: Decimal
    quantity_override: Decimal | None
    unit_amount_override: Decimal | None


@dataclass(frozen=True)
class AdjustmentPreview:
    """The invoice as an adjustment would make it: one changed line and the totals."""

    invoice: InvoiceRow  # unchanged
    line: AdjustedLine
    totals: Totals


@dataclass(frozen=True)
class _Amounts:
    type: str
    amount: Decimal
    tax_amount: Decimal


def line_key(line: InvoiceLineRow) -> str:
    """What identifies a line across re-ratings of its draft: type, charge, metric,
    group, prior invoice and period (and the description of lines of no charge)."""
    parts = [
        line.type,
        line.charge_id or "",
        line.metric or "",
        json.dumps(line.group or {}, sort_keys=True, default=str),
        line.prior_invoice_id or "",
        line.period_start.isoformat() if line.period_start else "",
        line.period_end.isoformat() if line.period_end else "",
    ]
    if line.charge_id is None:
        parts.append(line.description)
    return "|".join(parts)[:1000]


def line_tax(amount: Decimal, discount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The tax of a line at its rate on the amount after its discount (never below 0),
    rounded once HALF_UP, as the Tax stage computes it."""
    if rate == 0:
        return round_money(ZERO, currency)
    taxable = max(amount - discount, ZERO)
    return round_money(percent(taxable, rate), currency)


def _quantity(value: object) -> Decimal:
    number = to_decimal(value, what="quantity")
    if number < 0:
        raise ValidationFailed("quantity must not be negative")
    if number >= MAX_AMOUNT:
        raise ValidationFailed(f"quantity must be below {MAX_AMOUNT:f}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_UNIT_PRICE_DECIMALS:
        raise ValidationFailed(f"quantity has more than {MAX_UNIT_PRICE_DECIMALS} decimals")
    return number


def _draft_line(invoice: InvoiceRow, line_id: str) -> InvoiceLineRow:
    """The adjustable line of a DRAFT: 409 for another state, 404 for an unknown line,
    422 for a line that is not a charge (in that order: the state comes first)."""
    if invoice.status != "DRAFT":
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; fees can be adjusted only on a DRAFT",
            code="illegal_transition",
        )
    line = next((ln for ln in invoice.lines if ln.id == line_id), None)
    if line is None:
        raise NotFound(f"line {line_id!r} not found on invoice {invoice.id}")
    if line.type in NOT_ADJUSTABLE:
        raise ValidationFailed(
            f"line {line.id} is a {line.type} line; only charges (CHARGE, USAGE_FEE, "
            "SETUP_FEE, PRORATION) can be adjusted"
        )
    return line


def _adjusted(
    invoice: InvoiceRow,
    line: InvoiceLineRow,
    existing: LineAdjustmentRow | None,
    spec: AdjustmentSpec,
) -> AdjustedLine:
    """The line under the overrides of `existing` merged with those of `spec`, applied to
    the values the rating computed."""
    if spec.quantity is None and spec.unit_amount is None:
        raise ValidationFailed("give quantity, unitAmount or both")
    quantity_override = None if existing is None else existing.quantity
    unit_override = None if existing is None else existing.unit_amount
    if spec.quantity is not None:
        quantity_override = _quantity(spec.quantity)
    if spec.unit_amount is not None:
        unit_override = unit_price(spec.unit_amount, "unitAmount")
    computed_quantity = line.quantity if existing is None else existing.computed_quantity
    computed_unit = line.unit_amount if existing is None else existing.computed_unit_amount
    return _apply(
        invoice.currency,
        line,
        quantity_override,
        unit_override,
        computed_quantity,
        computed_unit,
        strict=True,
    )


def _apply(
    currency: str,
    line: InvoiceLineRow,
    quantity_override: Decimal | None,
    unit_override: Decimal | None,
    computed_quantity: Decimal,
    computed_unit: Decimal,
    *,
    strict: bool,
) -> AdjustedLine:
    quantity = computed_quantity if quantity_override is None else quantity_override
    unit = computed_unit if unit_override is None else unit_override
    amount = line_amount(quantity, unit, currency)
    if strict and amount < line.discount_amount:
        raise ValidationFailed(
            f"the line carries a discount of {line.discount_amount:f}; an adjusted amount of "
            f"{amount:f} would be below it"
        )
    tax = line_tax(amount, line.discount_amount, line.tax_rate, currency)
    return AdjustedLine(line.id, quantity, unit, amount, tax, quantity_override, unit_override)


def preview_adjustment(
    session: Session, tenant_id: str, invoice_id: str, line_id: str, spec: AdjustmentSpec
) -> AdjustmentPreview:
    """The invoice as the adjustment would make it; nothing is written."""
    invoice = get_invoice(session, tenant_id, invoice_id)
    line = _draft_line(invoice, line_id)
    changed = _adjusted(invoice, line, _adjustment_of(session, line.id), spec)
    amounts = [
        _Amounts(ln.type, changed.amount, changed.tax_amount)
        if ln.id == line.id
        else _Amounts(ln.type, ln.amount, ln.tax_amount)
        for ln in invoice.lines
    ]
    result = totals(amounts, credits=invoice.credit_total, paid=invoice.amount_paid)
    return AdjustmentPreview(invoice, changed, result)


def _adjustment_of(session: Session, line_id: str) -> LineAdjustmentRow | None:
    return session.execute(
        select(LineAdjustmentRow).where(LineAdjustmentRow.line_id == line_id)
    ).scalar_one_or_none()


def _settle_totals(session: Session, tenant_id: str, invoice: InvoiceRow) -> None:
    """Totals from the lines; wallet credits above the new total go back to the wallets."""
    paid_by_wallets = invoice.credit_total
    recompute_totals(invoice)
    if invoice.credit_total < paid_by_wallets:
        from invoicing.wallets import refund_excess

        refund_excess(session, tenant_id, invoice.id, paid_by_wallets - invoice.credit_total)


def _set(
    line: InvoiceLineRow, quantity: Decimal, unit: Decimal, amount: Decimal, tax: Decimal
) -> None:
    line.quantity, line.unit_amount, line.amount, line.tax_amount = quantity, unit, amount, tax


def _reload_adjustments(session: Session, lines: Sequence[InvoiceLineRow]) -> None:
    session.flush()
    for line in lines:
        session.expire(line, ["adjustment"])


def adjust_line(
    session: Session,
    tenant_id: str,
    invoice_id: str,
    line_id: str,
    spec: AdjustmentSpec,
    now: datetime,
) -> InvoiceRow:
    """Adjust a DRAFT's line (again, if it already is): its units and/or unit price win
    over the rating until the adjustment is deleted."""
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    line = _draft_line(invoice, line_id)
    adjustment = _adjustment_of(session, line.id)
    changed = _adjusted(invoice, line, adjustment, spec)
    if adjustment is None:
        adjustment = LineAdjustmentRow(
            id=new_id("adj"),
            tenant_id=tenant_id,
            invoice_id=invoice.id,
            line_id=line.id,
            line_key=line_key(line),
            computed_quantity=line.quantity,
            computed_unit_amount=line.unit_amount,
            computed_amount=line.amount,
            computed_tax_amount=line.tax_amount,
            created_at=now,
        )
        session.add(adjustment)
    adjustment.quantity = changed.quantity_override
    adjustment.unit_amount = changed.unit_amount_override
    adjustment.updated_at = now
    _set(line, changed.quantity, changed.unit_amount, changed.amount, changed.tax_amount)
    _settle_totals(session, tenant_id, invoice)
    invoice.updated_at = now
    _reload_adjustments(session, [line])
    return invoice


def restore_line(
    session: Session, tenant_id: str, invoice_id: str, line_id: str, now: datetime
) -> InvoiceRow:
    """Delete a line's adjustment: the line gets back the values the rating computed."""
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    line = _draft_line(invoice, line_id)
    adjustment = _adjustment_of(session, line.id)
    if adjustment is None:
        raise NotFound(f"line {line.id} of invoice {invoice.id} has no adjustment")
    _set(
        line,
        adjustment.computed_quantity,
        adjustment.computed_unit_amount,
        adjustment.computed_amount,
        adjustment.computed_tax_amount,
    )
    session.delete(adjustment)
    _settle_totals(session, tenant_id, invoice)
    invoice.updated_at = now
    _reload_adjustments(session, [line])
    return invoice


def reapply_adjustments(session: Session, tenant_id: str, invoice: InvoiceRow) -> None:
    """After a refresh re-rated the draft's lines: each adjustment wins again on the new
    line of its key, whose rated values become the computed ones it restores."""
    adjustments = list(
        session.execute(
            select(LineAdjustmentRow)
            .where(LineAdjustmentRow.invoice_id == invoice.id)
            .order_by(LineAdjustmentRow.created_at, LineAdjustmentRow.id)
        ).scalars()
    )
    if not adjustments:
        return
    candidates: dict[str, list[InvoiceLineRow]] = {}
    for line in invoice.lines:
        if line.type not in NOT_ADJUSTABLE:
            candidates.setdefault(line_key(line), []).append(line)
    for adjustment in adjustments:
        matching = candidates.get(adjustment.line_key)
        if not matching:
            session.delete(adjustment)  # the charge is no longer on the draft
            continue
        line = matching.pop(0)
        adjustment.line_id = line.id
        adjustment.computed_quantity = line.quantity
        adjustment.computed_unit_amount = line.unit_amount
        adjustment.computed_amount = line.amount
        adjustment.computed_tax_amount = line.tax_amount
        # The new rating's discount stands; the tax is on what is left above it.
        changed = _apply(
            invoice.currency,
            line,
            adjustment.quantity,
            adjustment.unit_amount,
            line.quantity,
            line.unit_amount,
            strict=False,
        )
        _set(line, changed.quantity, changed.unit_amount, changed.amount, changed.tax_amount)
    _settle_totals(session, tenant_id, invoice)
    _reload_adjustments(session, invoice.lines)
