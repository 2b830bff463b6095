"""Objects as the API shows them, for what sends them elsewhere (webhook bodies, ERP
documents): rendered with the API's own response models, so the two never differ."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.schemas.billing import InvoicePublic
from api.schemas.credit_notes import CreditNotePublic
from api.schemas.customers import CustomerPublic
from invoicing import credit_notes, invoices
from invoicing.erp.base import Document, Kind
from invoicing.models import CustomerRow


def invoice(session: Session, tenant_id: str, invoice_id: str) -> dict[str, Any]:
    row = invoices.get_invoice(session, tenant_id, invoice_id)
    return InvoicePublic.from_row(row).model_dump(mode="json", by_alias=True)


def credit_note(session: Session, tenant_id: str, note_id: str) -> dict[str, Any]:
    note = credit_notes.get(session, tenant_id, note_id)
    return CreditNotePublic.from_row(note).model_dump(mode="json", by_alias=True)


def customer(row: CustomerRow) -> dict[str, Any]:
    return CustomerPublic.from_row(row).model_dump(mode="json", by_alias=True)


def document(session: Session, tenant_id: str, kind: Kind, document_id: str) -> Document:
    """An invoice or credit note for an ERP, with its customer (and credited invoice)."""
    if kind == "invoice":
        row = invoices.get_invoice(session, tenant_id, document_id)
        body = InvoicePublic.from_row(row).model_dump(mode="json", by_alias=True)
        return Document(kind, row.id, tenant_id, body, customer(row.customer))
    note = credit_notes.get(session, tenant_id, document_id)
    return Document(
        kind,
        note.id,
        tenant_id,
        CreditNotePublic.from_row(note).model_dump(mode="json", by_alias=True),
        customer(note.customer),
        invoice(session, tenant_id, note.invoice_id),
    )
