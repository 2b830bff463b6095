"""The document of a finalized invoice, from the ledger: its row and lines, its
customer (the buyer) and the tenant's billing entity (the seller).

A DRAFT has no document: its number, issue date and lines are not final yet
(docs/documents.md). A credit note's builder makes the same `Document` with
kind "credit_note" and `refers_to`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy.orm import Session

from core.errors import Conflict
from invoicing.billing_entities import invoice_entity, seller_name
from invoicing.documents.model import (
    Document,
    DocumentLine,
    DocumentSection,
    Party,
    PaymentInstructions,
    Period,
    Totals,
    long_date,
)
from invoicing.documents.taxes import tax_breakdown
from invoicing.invoices import get_invoice
from invoicing.models import BillingEntityRow, CustomerRow, InvoiceLineRow, InvoiceRow, Tenant
from rating.periods import local_date, zone_of

UNTAXED = frozenset({"DISCOUNT", "CREDIT", "TAX_ADJUSTMENT"})


def invoice_document(session: Session, tenant_id: str, invoice_id: str) -> Document:
    """The document of a tenant's invoice (NotFound when unknown; Conflict for a DRAFT)."""
    invoice = get_invoice(session, tenant_id, invoice_id)
    if invoice.status == "DRAFT" or invoice.number is None or invoice.issued_at is None:
        raise Conflict(
            "draft invoices have no document yet: finalize the invoice first",
            code="invoice_draft",
            details={"status": invoice.status},
        )
    tenant = session.get(Tenant, tenant_id)
    entity = invoice_entity(session, invoice)  # the seller recorded at finalize
    seller = seller_party(entity, tenant.name if tenant else "")
    return build_invoice_document(invoice, seller, iban=entity.iban if entity else None)


def build_invoice_document(
    invoice: InvoiceRow, seller: Party, *, iban: str | None = None
) -> Document:
    """The document of a finalized invoice row (its lines and customer loaded)."""
    if invoice.number is None or invoice.issued_at is None:
        raise ValueError(f"invoice {invoice.id} is not finalized")
    customer = invoice.customer
    # Dates as the customer reads them: a Paris customer's March starts on 1 March, not
    # on the 28 February 23:00 UTC instant (docs/customer-timezones.md).
    zone = zone_of(customer.timezone)
    lines = tuple(document_line(row, zone) for row in invoice.lines)
    issue = local_date(invoice.issued_at, zone)
    due = local_date(invoice.due_at, zone) if invoice.due_at is not None else None
    return Document(
        kind="invoice",
        number=invoice.number,
        issue_date=issue,
        due_date=due,
        period=period(invoice.period_start, invoice.period_end, zone),
        currency=invoice.currency,
        seller=seller,
        buyer=buyer_party(customer),
        lines=lines,
        taxes=tax_breakdown(lines, invoice.discount_total, exempt=customer.tax_exempt),
        totals=Totals(
            subtotal=invoice.subtotal,
            discount=invoice.discount_total,
            tax=invoice.tax_total,
            total=invoice.total,
            credit=invoice.credit_total,
            amount_paid=invoice.amount_paid,
            amount_due=invoice.amount_due,
        ),
        payment=PaymentInstructions(iban=iban, terms=payment_terms(issue, due)),
        notes=_notes(invoice),
        sections=tuple(
            DocumentSection(heading=s.display_name, text=s.details) for s in invoice.custom_sections
        ),
    )


def seller_party(entity: BillingEntityRow | None, tenant_name: str) -> Party:
    """The seller: the billing entity, or the tenant's name alone when it has none."""
    if entity is None:
        return Party(name=tenant_name)
    return Party(
        name=seller_name(entity),
        address_lines=_present(entity.address_line1, entity.address_line2),
        city=entity.city,
        postal_code=entity.postal_code,
        country=entity.country,
        tax_id=entity.tax_id,
        email=entity.email,
    )


def buyer_party(customer: CustomerRow) -> Party:
    return Party(
        name=customer.name,
        address_lines=_present(customer.address_line1, customer.address_line2),
        city=customer.city,
        postal_code=customer.postal_code,
        country=customer.country,
        tax_id=customer.tax_id,
        email=customer.email,
        customer_id=customer.external_id,
    )


def document_line(row: InvoiceLineRow, zone: tzinfo = UTC) -> DocumentLine:
    line_period = None
    if row.period_start is not None and row.period_end is not None:
        line_period = period(row.period_start, row.period_end, zone)
    return DocumentLine(
        kind=row.type,
        description=row.description,
        metric=row.metric,
        quantity=row.quantity,
        unit_amount=row.unit_amount,
        amount=row.amount,
        discount_amount=row.discount_amount,
        tax_amount=row.tax_amount,
        tax_rate=None if row.type in UNTAXED else row.tax_rate,
        period=line_period,
    )


def period(start: datetime, end: datetime, zone: tzinfo = UTC) -> Period:
    """Service dates of [start, end) in `zone`: the end instant is exclusive, its dates
    are not."""
    last = end - timedelta(microseconds=1) if end > start else end
    return Period(start=local_date(start, zone), end=local_date(last, zone))


def payment_terms(issue: date, due: date | None) -> str | None:
    """The terms in words: "Net 30 days, due 1 December 2026"."""
    if due is None:
        return None
    days = (due - issue).days
    when = long_date(due)
    return f"Due on receipt ({when})" if days <= 0 else f"Net {days} days, due {when}"


def _notes(invoice: InvoiceRow) -> tuple[str, ...]:
    notes: list[str] = []
    if invoice.status == "PAID":
        notes.append("Paid in full. Thank you.")
    elif invoice.status == "VOID" and invoice.voided_at is not None:
        notes.append(f"This invoice was voided on {long_date(invoice.voided_at.date())}.")
    elif invoice.status == "UNCOLLECTIBLE":
        notes.append("This invoice is overdue and has been marked uncollectible.")
    if invoice.customer.tax_exempt:
        notes.append("The customer is exempt from tax.")
    return tuple(notes)


def _present(*parts: str | None) -> tuple[str, ...]:
    return tuple(part for part in parts if part)
