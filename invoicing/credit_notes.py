"""Credit notes: what an issued invoice gives back.

    DRAFT → ISSUED → APPLIED
      ↘       ↘ VOID

A credit note lowers what an invoice bills by its `amount`; its `type` says where that
value goes when the note is applied:

- `offset`: against what the invoice still owes. A CREDIT line with the negative
  amount shows it, `creditTotal` grows by it, and 0 left due makes the invoice PAID.
- `credit`: to the customer's balance. The next invoices of the same customer and
  currency use it at finalize (oldest note first), each use a CREDIT line; voiding such
  an invoice gives the balance back.
- `refund`: back to the payer, through the payment provider that collected the payment
  (`refundStatus` pending → succeeded | failed), or recorded as made by hand.

The creditable remainder, `total − Σ amounts of the invoice's notes that are not VOID`,
is never exceeded, nor the amount due by pending offsets, nor the amount paid by
refunds: every check runs under the invoice's row lock (SQLite serializes writers), so
concurrent requests cannot pass it together. Numbers (`CN-000001`) come at creation
from the tenant's sequence, locked the same way; a void note keeps its number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, DomainError, NotFound, ValidationFailed
from invoicing import events, invoices
from invoicing.models import (
    CreditNoteRow,
    CreditNoteSequence,
    CreditUseRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    PaymentRow,
    new_id,
)
from invoicing.pages import Page, keyset_page
from invoicing.payments import providers
from invoicing.payments.base import Outcome, RefundRequest
from invoicing.payments.providers import GatewayFactory
from rating.money import ZERO, format_money, round_money, to_decimal

log = logging.getLogger(__name__)

REASONS = (
    "DUPLICATE",
    "FRAUDULENT",
    "ORDER_CHANGE",
    "PRORATION",
    "PRODUCT_UNSATISFACTORY",
    "OTHER",
)
TYPES = ("offset", "credit", "refund")
STATUSES = ("DRAFT", "ISSUED", "APPLIED", "VOID")
CREDITABLE_STATES = ("OPEN", "OVERDUE", "PAID")


@dataclass(frozen=True)
class CreditNoteSpec:
    invoice_id: str
    amount: object
    reason: str
    type: str = "offset"
    description: str | None = None


@dataclass(frozen=True)
class Estimate:
    invoice_id: str
    currency: str
    creditable: Decimal
    refundable: Decimal


def estimate(session: Session, tenant_id: str, invoice_id: str) -> Estimate:
    """What can still be credited and refunded on an invoice."""
    invoice = invoices.get_invoice(session, tenant_id, invoice_id)
    return _estimate(session, invoice)


def _estimate(session: Session, invoice: InvoiceRow) -> Estimate:
    noted = _sum_notes(session, invoice.id)
    refunded = _sum_notes(session, invoice.id, type_="refund")
    return Estimate(
        invoice_id=invoice.id,
        currency=invoice.currency,
        creditable=max(invoice.total - noted, ZERO),
        refundable=max(invoice.amount_paid - refunded, ZERO),
    )


def _sum_notes(
    session: Session, invoice_id: str, *, type_: str | None = None, pending: bool = False
) -> Decimal:
    """Σ amounts of the invoice's notes that are not VOID (of one type; only those not
    yet applied)."""
    query = select(CreditNoteRow.amount).where(
        CreditNoteRow.invoice_id == invoice_id, CreditNoteRow.status != "VOID"
    )
    if type_ is not None:
        query = query.where(CreditNoteRow.type == type_)
    if pending:
        query = query.where(CreditNoteRow.status.in_(("DRAFT", "ISSUED")))
    # Summed here, not in SQL: SQLite stores money as exact text.
    return sum(session.execute(query).scalars(), ZERO)


def create(session: Session, tenant_id: str, spec: CreditNoteSpec, now: datetime) -> CreditNoteRow:
    """A DRAFT credit note of an OPEN, OVERDUE or PAID invoice, within what is creditable."""
    if spec.type not in TYPES:
        raise ValidationFailed(f"type must be one of {', '.join(TYPES)}")
    if spec.reason not in REASONS:
        raise ValidationFailed(f"reason must be one of {', '.join(REASONS)}")
    invoice = invoices.get_invoice(session, tenant_id, spec.invoice_id, lock=True)
    if invoice.status not in CREDITABLE_STATES:
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; credit notes need an OPEN, OVERDUE "
            "or PAID invoice",
            code="illegal_transition",
            details={"status": invoice.status},
        )
    amount = _amount(spec.amount, invoice.currency)
    room = _estimate(session, invoice)
    if amount > room.creditable:
        raise ValidationFailed(
            f"amount {amount} exceeds the creditable amount {room.creditable}",
            code="exceeds_creditable",
            details={"creditableAmount": format_money(room.creditable, invoice.currency)},
        )
    if spec.type == "offset":
        open_due = invoice.amount_due - _sum_notes(
            session, invoice.id, type_="offset", pending=True
        )
        if amount > open_due:
            raise ValidationFailed(
                f"an offset of {amount} exceeds what is still due ({max(open_due, ZERO)}); "
                "credit the customer's balance or refund instead",
                code="exceeds_amount_due",
            )
    if spec.type == "refund" and amount > room.refundable:
        raise ValidationFailed(
            f"a refund of {amount} exceeds what was paid and not refunded ({room.refundable})",
            code="exceeds_refundable",
        )
    note = CreditNoteRow(
        id=new_id("cn"),
        tenant_id=tenant_id,
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        number=_next_number(session, tenant_id),
        status="DRAFT",
        type=spec.type,
        amount=amount,
        currency=invoice.currency,
        reason=spec.reason,
        description=spec.description,
        balance=ZERO,
        created_at=now,
    )
    session.add(note)
    session.flush()
    _record(session, note, "credit_note.created", now)
    return note


def issue(session: Session, tenant_id: str, note_id: str, now: datetime) -> CreditNoteRow:
    """DRAFT → ISSUED: the note is final and sent; apply makes it take effect."""
    note = get(session, tenant_id, note_id, lock=True)
    _check(note, "ISSUED", ("DRAFT",))
    note.status = "ISSUED"
    note.issued_at = now
    _record(session, note, "credit_note.issued", now)
    return note


def apply(session: Session, tenant_id: str, note_id: str, now: datetime) -> CreditNoteRow:
    """ISSUED → APPLIED: the offset lowers what is due, the credit becomes balance, the
    refund is recorded (and sent through the provider by `send_refund`)."""
    note = get(session, tenant_id, note_id, lock=True)
    _check(note, "APPLIED", ("ISSUED",))
    invoice = invoices.get_invoice(session, tenant_id, note.invoice_id, lock=True)
    if note.type == "offset":
        if invoice.status not in ("OPEN", "OVERDUE") or note.amount > invoice.amount_due:
            raise Conflict(
                f"invoice {invoice.id} is {invoice.status} with {invoice.amount_due} due; "
                f"an offset of {note.amount} no longer fits (void the note and credit or "
                "refund instead)",
                code="exceeds_amount_due",
            )
        _credit_line(invoice, -note.amount, f"Credit note {note.number}")
        invoice.credit_total = invoice.credit_total + note.amount
        invoices.recompute_totals(invoice)
    elif note.type == "credit":
        note.balance = note.amount
    else:
        paid_by_provider = _provider_payment(session, invoice, note.amount) is not None
        note.refund_status = "pending" if paid_by_provider else "recorded"
    note.status = "APPLIED"
    note.applied_at = now
    _record(session, note, "credit_note.applied", now)
    if note.type == "offset":
        invoices.settle_if_covered(session, tenant_id, invoice, now)
    return note


def void(session: Session, tenant_id: str, note_id: str, now: datetime) -> CreditNoteRow:
    """DRAFT or ISSUED → VOID: the note never takes effect (its number stays used)."""
    note = get(session, tenant_id, note_id, lock=True)
    _check(note, "VOID", ("DRAFT", "ISSUED"))
    note.status = "VOID"
    note.voided_at = now
    _record(session, note, "credit_note.voided", now)
    return note


def void_invoice(
    session: Session,
    tenant_id: str,
    invoice_id: str,
    now: datetime,
    note_type: str | None = None,
    amount: object | None = None,
) -> tuple[InvoiceRow, CreditNoteRow | None]:
    """OPEN or OVERDUE → VOID, with an optional credit note applied at once: what was
    paid goes back (`refund`) or to the customer's balance (`credit`); `amount`
    defaults to the amount paid."""
    note = None
    if note_type is not None:
        if note_type not in ("credit", "refund"):
            raise ValidationFailed(
                "creditNote.type must be credit or refund: an offset cannot outlive a "
                "voided invoice"
            )
        invoice = invoices.get_invoice(session, tenant_id, invoice_id, lock=True)
        if invoice.status not in ("OPEN", "OVERDUE"):
            # The invoice's own 409, before anything is written.
            invoices.void(session, tenant_id, invoice_id, now)
        if amount is None:
            if invoice.amount_paid <= ZERO:
                raise ValidationFailed(
                    "nothing was paid on this invoice: give creditNote.amount",
                    code="amount_required",
                )
            amount = invoice.amount_paid
        spec = CreditNoteSpec(invoice_id, amount, "OTHER", note_type, "Invoice voided")
        note = create(session, tenant_id, spec, now)
        issue(session, tenant_id, note.id, now)
        apply(session, tenant_id, note.id, now)
    return invoices.void(session, tenant_id, invoice_id, now), note


# -- balances -------------------------------------------------------------------------


def use_balance(session: Session, tenant_id: str, invoice: InvoiceRow, now: datetime) -> None:
    """Let a just-finalized invoice use its customer's credit balance (oldest note
    first, at most what it owes), each use a CREDIT line."""
    if invoice.amount_due <= ZERO:
        return
    notes = (
        session.execute(
            select(CreditNoteRow)
            .where(
                CreditNoteRow.tenant_id == tenant_id,
                CreditNoteRow.customer_id == invoice.customer_id,
                CreditNoteRow.currency == invoice.currency,
                CreditNoteRow.type == "credit",
                CreditNoteRow.status == "APPLIED",
                CreditNoteRow.invoice_id != invoice.id,
            )
            .order_by(CreditNoteRow.applied_at, CreditNoteRow.id)
            .with_for_update(of=CreditNoteRow)
        )
        .unique()
        .scalars()
        .all()
    )
    for note in notes:
        if invoice.amount_due <= ZERO:
            break
        if note.balance <= ZERO:
            continue
        used = min(note.balance, invoice.amount_due)
        note.balance = note.balance - used
        session.add(
            CreditUseRow(
                id=new_id("cnu"),
                tenant_id=tenant_id,
                credit_note_id=note.id,
                invoice_id=invoice.id,
                amount=used,
                created_at=now,
            )
        )
        _credit_line(invoice, -used, f"Credit balance from {note.number}")
        invoice.credit_total = invoice.credit_total + used
        invoices.recompute_totals(invoice)


def give_back_balance(session: Session, tenant_id: str, invoice_id: str) -> None:
    """A voided invoice's uses of credit balances go back to their notes."""
    uses = session.execute(
        select(CreditUseRow).where(
            CreditUseRow.tenant_id == tenant_id, CreditUseRow.invoice_id == invoice_id
        )
    ).scalars()
    for use in uses:
        session.execute(
            update(CreditNoteRow)
            .where(CreditNoteRow.id == use.credit_note_id)
            .values(balance=CreditNoteRow.balance + use.amount)
        )
        session.delete(use)


def customer_balance(session: Session, tenant_id: str, customer_id: str) -> dict[str, Decimal]:
    """The customer's unused credit balance, per currency."""
    rows = session.execute(
        select(CreditNoteRow.currency, CreditNoteRow.balance).where(
            CreditNoteRow.tenant_id == tenant_id,
            CreditNoteRow.customer_id == customer_id,
            CreditNoteRow.type == "credit",
            CreditNoteRow.status == "APPLIED",
        )
    )
    out: dict[str, Decimal] = {}
    for currency, balance in rows:
        out[currency] = out.get(currency, ZERO) + balance
    return out


# -- refunds through the provider -----------------------------------------------------


def send_refund(
    sessions: sessionmaker[Session],
    tenant_id: str,
    note_id: str,
    now: datetime,
    gateways: GatewayFactory,
) -> str | None:
    """Send an applied refund note's money back through the provider that collected
    the payment (idempotency key `<note id>/refund`, so a repeat refunds once); the
    refund status it ends in, None when there is nothing to send."""
    with sessions() as session, session.begin():
        note = get(session, tenant_id, note_id, lock=True)
        if note.type != "refund" or note.refund_status != "pending":
            return None
        invoice = invoices.get_invoice(session, tenant_id, note.invoice_id)
        payment = _provider_payment(session, invoice, note.amount)
        connection = None
        if payment is not None and payment.provider and payment.reference:
            connection = providers.find(session, tenant_id, payment.provider)
        if payment is None or connection is None or not payment.reference:
            note.refund_status = "recorded"
            return note.refund_status
        provider, config = connection.provider, dict(connection.config)
        request = RefundRequest(payment.reference, note.amount, note.currency, f"{note.id}/refund")
    gateway = None
    try:
        gateway = gateways(provider, config)
        outcome = gateway.refund(request)
    except DomainError as exc:
        outcome = Outcome(False, error=exc.message)
    except Exception as exc:  # an adapter bug must not lose the refund's state
        log.exception("refund of credit note %s failed unexpectedly", note_id)
        outcome = Outcome(False, error=f"unexpected error: {exc!r}")
    finally:
        if gateway is not None:
            gateway.close()
    with sessions() as session, session.begin():
        note = get(session, tenant_id, note_id, lock=True)
        note.refund_status = "succeeded" if outcome.succeeded else "failed"
        note.refund_reference = outcome.reference or outcome.error
        return note.refund_status


def _provider_payment(session: Session, invoice: InvoiceRow, amount: Decimal) -> PaymentRow | None:
    """The latest payment a provider collected for the invoice that covers `amount`."""
    payments = session.execute(
        select(PaymentRow)
        .where(PaymentRow.invoice_id == invoice.id, PaymentRow.provider.is_not(None))
        .order_by(PaymentRow.created_at.desc(), PaymentRow.id.desc())
    ).scalars()
    # Compared here, not in SQL: SQLite stores money as exact text.
    return next((p for p in payments if p.amount >= amount), None)


# -- reading --------------------------------------------------------------------------


def get(session: Session, tenant_id: str, note_id: str, *, lock: bool = False) -> CreditNoteRow:
    query = select(CreditNoteRow).where(
        CreditNoteRow.id == note_id, CreditNoteRow.tenant_id == tenant_id
    )
    if lock:
        query = query.with_for_update(of=CreditNoteRow)
    row = session.execute(query).unique().scalar_one_or_none()
    if row is None:
        raise NotFound(f"credit note {note_id!r} not found")
    return row


def list_notes(
    session: Session,
    tenant_id: str,
    *,
    invoice_id: str | None = None,
    customer_external_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[CreditNoteRow]:
    """The tenant's credit notes (of one invoice, customer or status), newest first."""
    query = select(CreditNoteRow).where(CreditNoteRow.tenant_id == tenant_id)
    if invoice_id is not None:
        query = query.where(CreditNoteRow.invoice_id == invoice_id)
    if customer_external_id is not None:
        query = query.join(CustomerRow, CustomerRow.id == CreditNoteRow.customer_id).where(
            CustomerRow.external_id == customer_external_id
        )
    if status is not None:
        if status.upper() not in STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}")
        query = query.where(CreditNoteRow.status == status.upper())
    return keyset_page(session, query, CreditNoteRow, limit, cursor)


def note_data(note: CreditNoteRow) -> dict[str, Any]:
    """A credit note as `GET /credit-notes/{id}` shows it (the `data` of its events)."""
    cur = note.currency

    def ts(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": note.id,
        "number": note.number,
        "invoiceId": note.invoice_id,
        "customerId": note.customer.external_id,
        "status": note.status,
        "type": note.type,
        "amount": format_money(note.amount, cur),
        "currency": cur,
        "reason": note.reason,
        "description": note.description,
        "balance": format_money(note.balance, cur),
        "refundStatus": note.refund_status,
        "createdAt": ts(note.created_at),
        "issuedAt": ts(note.issued_at),
        "appliedAt": ts(note.applied_at),
        "voidedAt": ts(note.voided_at),
    }


# -- helpers --------------------------------------------------------------------------


def _amount(value: object, currency: str) -> Decimal:
    amount = to_decimal(value, what="amount")
    if amount <= 0:
        raise ValidationFailed("amount must be positive")
    if amount != round_money(amount, currency):
        raise ValidationFailed(f"amount has more decimals than {currency} allows")
    return amount


def _check(note: CreditNoteRow, target: str, allowed_from: tuple[str, ...]) -> None:
    if note.status not in allowed_from:
        raise Conflict(
            f"credit note {note.id} is {note.status}; it cannot become {target} "
            f"(only from {' or '.join(allowed_from)})",
            code="illegal_transition",
            details={"status": note.status, "target": target},
        )


def _next_number(session: Session, tenant_id: str) -> str:
    result = session.execute(
        update(CreditNoteSequence)
        .where(CreditNoteSequence.tenant_id == tenant_id)
        .values(next_value=CreditNoteSequence.next_value + 1)
        .returning(CreditNoteSequence.next_value)
    ).first()
    if result is None:
        session.add(CreditNoteSequence(tenant_id=tenant_id, next_value=2))
        session.flush()
        value = 1
    else:
        value = int(result[0]) - 1
    return f"CN-{value:06d}"


def _credit_line(invoice: InvoiceRow, amount: Decimal, description: str) -> None:
    position = 1 + max((ln.position for ln in invoice.lines), default=-1)
    invoice.lines.append(
        InvoiceLineRow(
            id=new_id("il"),
            position=position,
            type="CREDIT",
            description=description,
            quantity=Decimal(1),
            unit_amount=amount,
            amount=amount,
            discount_amount=ZERO,
            tax_rate=ZERO,
            tax_amount=ZERO,
            group={},
        )
    )


def _record(session: Session, note: CreditNoteRow, type_: str, now: datetime) -> None:
    events.record(session, note.tenant_id, type_, note.id, note_data(note), now)
