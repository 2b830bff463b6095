"""The ledger rows of rated invoices: one mapping, written with bulk Core inserts.

A bill run writes tens of thousands of invoices: the ORM's unit of work would cost ten
times the inserts themselves, and these rows need none of its features.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.orm import Session

from invoicing.models import InvoiceLineRow, InvoiceRow, new_id
from rating.model import RatedInvoice
from rating.money import ZERO


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


INVOICES = _table(InvoiceRow)
INVOICE_LINES = _table(InvoiceLineRow)


def line_values(
    invoice_id: str, invoice: RatedInvoice, late_through: datetime | None
) -> list[dict[str, Any]]:
    """The invoice_lines rows of a rated invoice; prior-period lines record the late
    usage cutoff they bill through."""
    return [
        {
            "id": new_id("il"),
            "invoice_id": invoice_id,
            "position": i,
            "type": line.type.value,
            "description": line.description,
            "metric": line.metric,
            "group_values": dict(line.group),
            "charge_id": line.charge_id,
            "quantity": line.quantity,
            "unit_amount": line.unit_amount,
            "amount": line.amount,
            "discount_amount": line.discount_amount,
            "tax_rate": line.tax_rate,
            "tax_amount": line.tax_amount,
            "period_start": line.period_start,
            "period_end": line.period_end,
            "prior_invoice_id": line.prior_invoice_id,
            "late_through": late_through if line.prior_invoice_id else None,
        }
        for i, line in enumerate(invoice.lines)
    ]


def invoice_values(
    tenant_id: str,
    bill_run_id: str | None,
    customer_row_id: str,
    invoice: RatedInvoice,
    now: datetime,
    *,
    late_through: datetime | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The invoices row (DRAFT, unnumbered: numbers come at finalize) and its lines."""
    invoice_id = new_id("inv")
    row = {
        "id": invoice_id,
        "tenant_id": tenant_id,
        "customer_id": customer_row_id,
        "subscription_id": invoice.subscription_id,
        "bill_run_id": bill_run_id,
        "number": None,
        "status": "DRAFT",
        "currency": invoice.currency,
        "period_start": invoice.period.start,
        "period_end": invoice.period.end,
        "issued_at": None,
        "due_at": None,
        "subtotal": invoice.subtotal,
        "discount_total": invoice.discount_total,
        "tax_total": invoice.tax_total,
        "credit_total": invoice.credit_total,
        "total": invoice.total,
        "amount_paid": ZERO,
        "amount_due": invoice.amount_due,
        "created_at": now,
        "updated_at": now,
        "finalized_at": None,
    }
    return row, line_values(invoice_id, invoice, late_through)


def insert_invoices(
    session: Session, invoices: Sequence[dict[str, Any]], lines: Sequence[dict[str, Any]]
) -> None:
    """Insert invoice rows and their lines in the session's transaction."""
    connection = session.connection()
    if invoices:
        connection.execute(insert(INVOICES), list(invoices))
    if lines:
        connection.execute(insert(INVOICE_LINES), list(lines))


def replace_lines(
    session: Session, invoice: InvoiceRow, rated: RatedInvoice, late_through: datetime | None
) -> None:
    """Give a DRAFT the lines and totals of a new rating (its payments stay)."""
    session.execute(delete(INVOICE_LINES).where(INVOICE_LINES.c.invoice_id == invoice.id))
    insert_invoices(session, (), line_values(invoice.id, rated, late_through))
    invoice.subtotal = rated.subtotal
    invoice.discount_total = rated.discount_total
    invoice.tax_total = rated.tax_total
    invoice.credit_total = rated.credit_total
    invoice.total = rated.total
    invoice.amount_due = rated.amount_due - invoice.amount_paid
    session.flush()
    session.expire(invoice, ["lines"])
