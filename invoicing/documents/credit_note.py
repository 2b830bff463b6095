"""The document of a credit note: what it gives back, split like the invoice it corrects.

A credit note carries one amount, tax included. Its document shows one line per tax
rate of the invoice, each that rate's share of the invoice's total (docs/documents.md):
net and tax of a share are rounded to the minor unit and the last rate takes what
rounding left, so the lines add up to the note's amount exactly.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from sqlalchemy.orm import Session

from core.errors import Conflict
from invoicing.credit_notes import get
from invoicing.documents.build import buyer_party, invoice_document
from invoicing.documents.model import (
    Document,
    DocumentLine,
    DocumentReference,
    PaymentInstructions,
    Totals,
)
from invoicing.documents.taxes import tax_breakdown
from rating.money import ZERO, round_money

HOW = {
    "offset": "Deducted from the amount due on invoice {number}.",
    "credit": "Added to your credit balance: it pays your next invoices.",
    "refund": "Refunded to the payment method used for invoice {number}.",
}


def credit_note_document(session: Session, tenant_id: str, note_id: str) -> Document:
    """The document of a tenant's credit note (NotFound; Conflict for a DRAFT)."""
    note = get(session, tenant_id, note_id)
    if note.status == "DRAFT" or note.issued_at is None:
        raise Conflict(
            "draft credit notes have no document yet: issue the credit note first",
            code="credit_note_draft",
            details={"status": note.status},
        )
    invoice = invoice_document(session, tenant_id, note.invoice_id)
    lines = _lines(note.amount, note.currency, invoice, f"Credit for invoice {invoice.number}")
    exempt = note.customer.tax_exempt
    taxes = tax_breakdown(lines, ZERO, exempt=exempt)
    net = sum((ln.amount for ln in lines), ZERO)
    tax = sum((ln.tax_amount for ln in lines), ZERO)
    notes = [f"Reason: {note.reason.replace('_', ' ').lower()}."]
    if note.description:
        notes.append(note.description)
    notes.append(HOW[note.type].format(number=invoice.number))
    if note.status == "VOID":
        notes.append("This credit note was voided.")
    return Document(
        kind="credit_note",
        number=note.number,
        issue_date=note.issued_at.date(),
        currency=note.currency,
        seller=invoice.seller,  # the seller of the invoice it corrects
        buyer=buyer_party(note.customer),
        lines=lines,
        taxes=taxes,
        totals=Totals(
            subtotal=net,
            discount=ZERO,
            tax=tax,
            total=note.amount,
            credit=ZERO,
            amount_paid=ZERO,
            amount_due=note.amount,
        ),
        period=invoice.period,
        payment=PaymentInstructions(),
        notes=tuple(notes),
        refers_to=DocumentReference(number=invoice.number, issue_date=invoice.issue_date),
    )


def _lines(
    amount: Decimal, currency: str, invoice: Document, description: str
) -> tuple[DocumentLine, ...]:
    """`amount` split over the invoice's tax rates in proportion to each rate's gross."""
    rates = [t for t in invoice.taxes if t.taxable_amount + t.tax_amount > 0]
    gross_total = sum((t.taxable_amount + t.tax_amount for t in rates), ZERO)
    if not rates or gross_total <= 0:
        return (_line(description, amount, ZERO, ZERO),)
    out: list[DocumentLine] = []
    left = amount
    with localcontext() as ctx:
        ctx.prec = 60  # the ratios are inexact; each share is rounded to the minor unit
        for index, rate in enumerate(rates):
            gross = rate.taxable_amount + rate.tax_amount
            last = index == len(rates) - 1
            share = left if last else round_money(amount * gross / gross_total, currency)
            tax = round_money(share * rate.rate / (100 + rate.rate), currency)
            label = description if len(rates) == 1 else f"{description} ({rate.rate:f} % tax)"
            out.append(_line(label, share - tax, tax, rate.rate))
            left -= share
    return tuple(out)


def _line(description: str, net: Decimal, tax: Decimal, rate: Decimal) -> DocumentLine:
    return DocumentLine(
        kind="CREDIT_NOTE",
        description=description,
        quantity=Decimal(1),
        unit_amount=net,
        amount=net,
        tax_amount=tax,
        tax_rate=rate,
    )
