"""The email queue in the ledger: what is to be sent, to whom, and what each attempt
gave.

An email is queued by its domain event (`fanout`: `invoice.finalized` → the invoice,
`credit_note.issued` → the credit note, `payment.succeeded` → a receipt, to the
customer's address when it has one) or by a request to send it again with other
recipients (`request`). `deliver_due` sends what is due: it claims rows (a lease, so
two deliverers never send one row at once and a crash mid-send retries it), builds
each message from the ledger as it is now, sends it, and records the outcome. A
deferred failure is retried with backoff (1, 2, 4, 8, 16 minutes, ±20 %), six attempts
in all; a permanent one (5xx) fails at once.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing import credit_notes, invoices
from invoicing.billing_entities import invoice_entity
from invoicing.deliveries.retry import Backoff, Jitter
from invoicing.documents.build import invoice_document, seller_party
from invoicing.documents.credit_note import credit_note_document
from invoicing.documents.pdf import render_pdf
from invoicing.email.messages import Envelope, Receipt, document_message, receipt_message
from invoicing.email.smtp import Deferred, Rejected, SmtpConfig, send
from invoicing.models import CustomerRow, DomainEventRow, EmailDeliveryRow, Tenant, new_id
from rating.money import format_money

log = logging.getLogger(__name__)

KINDS = ("invoice", "credit_note", "receipt")
AUTOMATIC = {
    "invoice.finalized": "invoice",
    "credit_note.issued": "credit_note",
    "payment.succeeded": "receipt",
}
BACKOFF = Backoff(base=timedelta(minutes=1), cap=timedelta(hours=1), max_attempts=6)
LEASE = timedelta(minutes=5)  # a claimed row is free again after this (a crashed sender)
MAX_RECIPIENTS = 20  # per field
_ADDRESS = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+$")


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed


def fanout(session: Session, event: DomainEventRow, now: datetime) -> None:
    """Queue the email an outbox event asks for (none when the customer has no address)."""
    kind = AUTOMATIC.get(event.type)
    if kind is None:
        return
    customer = _customer(session, event.tenant_id, kind, event.object_id)
    if not customer.email:
        return
    queued = select(EmailDeliveryRow.id).where(EmailDeliveryRow.event_id == event.id)
    if session.execute(queued).first() is not None:  # dispatched before, then rolled back
        return
    try:
        to = _addresses([customer.email], "email")
    except ValidationFailed:
        log.warning("customer %s: %r is not an address, no email", customer.id, customer.email)
        return
    _queue(session, event.tenant_id, kind, event.object_id, to, [], [], now, event.id)


def request(
    session: Session,
    tenant_id: str,
    kind: str,
    object_id: str,
    now: datetime,
    *,
    to: Sequence[str] | None = None,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
) -> EmailDeliveryRow:
    """Queue (re)sending an invoice, a credit note or a receipt; `to` defaults to the
    customer's address."""
    customer = _customer(session, tenant_id, kind, object_id)
    if to is None or not to:
        if not customer.email:
            raise ValidationFailed(
                f"customer {customer.external_id!r} has no email address: give `to`",
                code="no_recipient",
            )
        to = [customer.email]
    return _queue(session, tenant_id, kind, object_id, to, cc, bcc, now, None)


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> EmailDeliveryRow:
    row = session.get(EmailDeliveryRow, delivery_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"email delivery {delivery_id!r} not found")
    return row


def list_deliveries(
    session: Session,
    tenant_id: str,
    *,
    object_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[EmailDeliveryRow]:
    """Newest first."""
    query = select(EmailDeliveryRow).where(EmailDeliveryRow.tenant_id == tenant_id)
    if object_id is not None:
        query = query.where(EmailDeliveryRow.object_id == object_id)
    if status is not None:
        query = query.where(EmailDeliveryRow.status == status)
    query = query.order_by(EmailDeliveryRow.created_at.desc(), EmailDeliveryRow.id.desc())
    return list(session.execute(query.limit(limit)).scalars())


def deliver_due(
    sessions: sessionmaker[Session],
    config: SmtpConfig,
    now: datetime,
    *,
    limit: int = 50,
    draw: Jitter = random.random,
) -> DeliveryReport:
    """Send the emails due by `now` (at most `limit`) and record each outcome."""
    report = DeliveryReport()
    for delivery_id in _claim(sessions, now, limit):
        outcome = _attempt(sessions, config, delivery_id, now)
        with sessions() as session, session.begin():
            row = session.get(EmailDeliveryRow, delivery_id)
            assert row is not None
            _record(row, outcome, now, draw)
            if row.status == "sent":
                report.sent += 1
            elif row.status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
    return report


def _claim(sessions: sessionmaker[Session], now: datetime, limit: int) -> list[str]:
    with sessions() as session, session.begin():
        rows = session.execute(
            select(EmailDeliveryRow)
            .where(EmailDeliveryRow.status == "pending", EmailDeliveryRow.next_attempt_at <= now)
            .order_by(EmailDeliveryRow.next_attempt_at, EmailDeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
        claimed = []
        for row in rows:
            row.attempts += 1
            row.last_attempt_at = now
            row.next_attempt_at = now + LEASE
            claimed.append(row.id)
        return claimed


@dataclass(frozen=True)
class Outcome:
    result: str  # sent | rejected | deferred
    error: str | None = None
    subject: str | None = None
    message_id: str | None = None


def _attempt(
    sessions: sessionmaker[Session], config: SmtpConfig, delivery_id: str, now: datetime
) -> Outcome:
    try:
        with sessions() as session:
            row = session.get(EmailDeliveryRow, delivery_id)
            assert row is not None
            envelope = Envelope(row.id, tuple(row.to), tuple(row.cc), tuple(row.bcc), now)
            message = _build(session, config, row, envelope)
    except Exception as error:  # a message that cannot be written now: logged, retried
        log.exception("building email %s failed", delivery_id)
        return Outcome("deferred", f"could not build the message: {error}")
    subject, message_id = str(message["Subject"]), str(message["Message-ID"])
    try:
        refused = send(config, message, envelope.recipients)
    except Rejected as error:
        return Outcome("rejected", str(error), subject)
    except Deferred as error:
        return Outcome("deferred", str(error), subject)
    partial = "; ".join(f"{a}: {reply}" for a, reply in refused.items())
    return Outcome("sent", f"refused: {partial}" if partial else None, subject, message_id)


def _record(row: EmailDeliveryRow, outcome: Outcome, now: datetime, draw: Jitter) -> None:
    row.last_error = outcome.error
    row.subject = outcome.subject or row.subject
    if outcome.result == "sent":
        row.status, row.sent_at, row.message_id = "sent", now, outcome.message_id
        return
    later = None if outcome.result == "rejected" else BACKOFF.next_attempt(row.attempts, now, draw)
    if later is None:
        row.status = "failed"
    else:
        row.next_attempt_at = later


def _build(
    session: Session, config: SmtpConfig, row: EmailDeliveryRow, envelope: Envelope
) -> EmailMessage:
    if row.kind == "invoice":
        document = invoice_document(session, row.tenant_id, row.object_id)
        return document_message(config, envelope, document, render_pdf(document))
    if row.kind == "credit_note":
        document = credit_note_document(session, row.tenant_id, row.object_id)
        return document_message(config, envelope, document, render_pdf(document))
    return receipt_message(config, envelope, _receipt(session, row.tenant_id, row.object_id))


def _receipt(session: Session, tenant_id: str, payment_id: str) -> Receipt:
    payment = invoices.get_payment(session, tenant_id, payment_id)
    invoice = invoices.get_invoice(session, tenant_id, payment.invoice_id)
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    seller = seller_party(invoice_entity(session, invoice), tenant.name)
    currency = payment.currency or invoice.currency
    return Receipt(
        seller=seller.name,
        seller_email=seller.email,
        buyer=invoice.customer.name,
        amount=format_money(payment.amount, currency),
        currency=currency,
        paid_at=payment.created_at,
        invoice_number=invoice.number,
        reference=payment.reference,
        amount_due=format_money(invoice.amount_due, invoice.currency),
    )


def _customer(session: Session, tenant_id: str, kind: str, object_id: str) -> CustomerRow:
    """The customer an email of `kind` about `object_id` goes to; it must have a document."""
    if kind == "invoice":
        invoice = invoices.get_invoice(session, tenant_id, object_id)
        if invoice.status == "DRAFT":
            raise Conflict(
                f"invoice {object_id!r} is a DRAFT: finalize it before sending it",
                code="invoice_not_finalized",
            )
        return invoice.customer
    if kind == "credit_note":
        note = credit_notes.get(session, tenant_id, object_id)
        if note.status == "DRAFT":
            raise Conflict(
                f"credit note {object_id!r} is a DRAFT: issue it before sending it",
                code="credit_note_not_issued",
            )
        return note.customer
    if kind == "receipt":
        payment = invoices.get_payment(session, tenant_id, object_id)
        return invoices.get_invoice(session, tenant_id, payment.invoice_id).customer
    raise ValueError(f"unknown email kind {kind!r}")


def _queue(
    session: Session,
    tenant_id: str,
    kind: str,
    object_id: str,
    to: Sequence[str],
    cc: Sequence[str],
    bcc: Sequence[str],
    now: datetime,
    event_id: str | None,
) -> EmailDeliveryRow:
    row = EmailDeliveryRow(
        id=new_id("eml"),
        tenant_id=tenant_id,
        kind=kind,
        object_id=object_id,
        event_id=event_id,
        to=_addresses(to, "to"),
        cc=_addresses(cc, "cc"),
        bcc=_addresses(bcc, "bcc"),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _addresses(values: Sequence[str], field: str) -> list[str]:
    if len(values) > MAX_RECIPIENTS:
        raise ValidationFailed(f"{field}: at most {MAX_RECIPIENTS} addresses")
    out: list[str] = []
    for index, value in enumerate(values):
        address = value.strip()
        if len(address) > 254 or not _ADDRESS.match(address):
            raise ValidationFailed(f"{field}[{index}]: {value!r} is not an email address")
        if address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out
