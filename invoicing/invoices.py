"""Invoices and their lifecycle.

    DRAFT → OPEN → PAID
             ↘ OVERDUE → UNCOLLECTIBLE
             ↘ VOID

Numbers are assigned at finalize from the tenant's sequence row, locked for update,
so concurrent finalizations can neither skip nor repeat a number.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from invoicing.models import CustomerRow, InvoiceRow, InvoiceSequence, PaymentRow, new_id, utcnow
from meterline.errors import Conflict, NotFound, ValidationFailed
from rating.money import InvalidAmount, round_money, to_decimal

TRANSITIONS: dict[str, set[str]] = {
    "DRAFT": {"OPEN"},
    "OPEN": {"PAID", "OVERDUE", "VOID"},
    "OVERDUE": {"PAID", "UNCOLLECTIBLE", "VOID"},
    "PAID": set(),
    "VOID": set(),
    "UNCOLLECTIBLE": set(),
}


def _transition(invoice: InvoiceRow, target: str) -> None:
    if target not in TRANSITIONS[invoice.status]:
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; it cannot become {target}",
            code="illegal_transition",
        )
    invoice.status = target


def get_invoice(
    session: Session, tenant_id: str, invoice_id: str, *, lock: bool = False
) -> InvoiceRow:
    query = select(InvoiceRow).where(InvoiceRow.id == invoice_id, InvoiceRow.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).unique().scalar_one_or_none()
    if row is None:
        raise NotFound(f"invoice {invoice_id!r} not found")
    return row


def list_invoices(
    session: Session,
    tenant_id: str,
    *,
    customer_external_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: tuple[datetime, str] | None = None,
) -> list[InvoiceRow]:
    query = select(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id)
    if customer_external_id is not None:
        query = query.join(CustomerRow, CustomerRow.id == InvoiceRow.customer_id).where(
            CustomerRow.external_id == customer_external_id
        )
    if status is not None:
        query = query.where(InvoiceRow.status == status.upper())
    if before is not None:
        created, ident = before
        query = query.where(
            (InvoiceRow.created_at < created)
            | ((InvoiceRow.created_at == created) & (InvoiceRow.id < ident))
        )
    query = query.order_by(InvoiceRow.created_at.desc(), InvoiceRow.id.desc()).limit(limit)
    return list(session.execute(query).unique().scalars())


def next_number(session: Session, tenant_id: str) -> str:
    """Take the next number of the tenant's sequence (row-locked on PostgreSQL;
    SQLite serializes writers with BEGIN IMMEDIATE)."""
    result = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.tenant_id == tenant_id)
        .values(next_value=InvoiceSequence.next_value + 1)
        .returning(InvoiceSequence.next_value)
    ).first()
    if result is None:
        session.add(InvoiceSequence(tenant_id=tenant_id, next_value=2))
        value = 1
    else:
        value = int(result[0]) - 1
    return f"INV-{value:06d}"


def finalize(
    session: Session, tenant_id: str, invoice_id: str, due_days: int, now: datetime | None = None
) -> InvoiceRow:
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    _transition(invoice, "OPEN")
    now = now or utcnow()
    invoice.number = next_number(session, tenant_id)
    invoice.issued_at = now
    invoice.finalized_at = now
    invoice.due_at = now + timedelta(days=due_days)
    _settle_if_covered(invoice)
    return invoice


def void(session: Session, tenant_id: str, invoice_id: str) -> InvoiceRow:
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    _transition(invoice, "VOID")
    return invoice


def record_payment(
    session: Session, tenant_id: str, invoice_id: str, amount: Any, reference: str | None
) -> InvoiceRow:
    invoice = get_invoice(session, tenant_id, invoice_id, lock=True)
    if invoice.status not in ("OPEN", "OVERDUE"):
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; payments need an OPEN or OVERDUE invoice",
            code="illegal_transition",
        )
    try:
        value = to_decimal(amount, what="amount")
    except InvalidAmount as exc:
        raise ValidationFailed(str(exc)) from None
    if value <= 0:
        raise ValidationFailed("amount must be positive")
    if value != round_money(value, invoice.currency):
        raise ValidationFailed(f"amount has more decimals than {invoice.currency} allows")
    if value > invoice.amount_due:
        raise ValidationFailed(f"amount {value} exceeds the amount due {invoice.amount_due}")
    session.add(
        PaymentRow(
            id=new_id("pay"),
            tenant_id=tenant_id,
            invoice_id=invoice.id,
            amount=value,
            reference=reference,
        )
    )
    invoice.amount_paid = invoice.amount_paid + value
    invoice.amount_due = invoice.amount_due - value
    _settle_if_covered(invoice)
    return invoice


def _settle_if_covered(invoice: InvoiceRow) -> None:
    if invoice.status in ("OPEN", "OVERDUE") and invoice.amount_due <= Decimal(0):
        _transition(invoice, "PAID")
