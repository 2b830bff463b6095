"""CSV exports of the ledger, streamed: constant memory whatever their size.

An export reads the ledger in keyset pages (each page its own short read, so no
transaction stays open while a slow client downloads) and turns each page into CSV
bytes (RFC 4180: `csv` quoting, CRLF line ends, no BOM) before it reads the next.

    invoice_id,invoice_number,customer_id,status,currency,issued_at,due_at,line_type,
    description,metric,quantity,unit_amount,amount,tax_amount,invoice_total

One row per invoice line; money as the API shows it (rounded to the currency's minor
unit), quantities and unit prices without trailing zeros, times RFC 3339 in UTC. DRAFTs
have no `issuedAt` and are never exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ValidationFailed
from invoicing.models import CreditNoteRow, CustomerRow, InvoiceLineRow, InvoiceRow
from rating.money import format_decimal, format_money

INVOICE_HEADER = (
    "invoice_id", "invoice_number", "customer_id", "status", "currency", "issued_at",
    "due_at", "line_type", "description", "metric", "quantity", "unit_amount", "amount",
    "tax_amount", "invoice_total",
)  # fmt: skip
CREDIT_NOTE_HEADER = (
    "credit_note_id", "credit_note_number", "invoice_id", "invoice_number", "customer_id",
    "status", "type", "reason", "currency", "amount", "balance", "refund_status",
    "created_at", "issued_at", "applied_at", "voided_at", "description",
)  # fmt: skip
EXPORTED_STATES = ("OPEN", "PAID", "OVERDUE", "UNCOLLECTIBLE", "VOID")
NOTE_STATES = ("DRAFT", "ISSUED", "APPLIED", "VOID")
PAGE = 500  # invoices (or notes) per ledger read
FLUSH_ROWS = 1000  # CSV rows per chunk sent


@dataclass(frozen=True)
class ExportFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    status: str | None = None


def check_filter(spec: ExportFilter, states: Sequence[str]) -> ExportFilter:
    """The filter with its status upper-cased; a 422 for a status no export holds or an
    empty window."""
    status = spec.status.upper() if spec.status else None
    if status is not None and status not in states:
        raise ValidationFailed(f"status must be one of {', '.join(states)}")
    if spec.start is not None and spec.end is not None and spec.end <= spec.start:
        raise ValidationFailed("to must be after from")
    return ExportFilter(spec.start, spec.end, status)


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """RFC 4180 CSV, in chunks of FLUSH_ROWS rows: the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % FLUSH_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def invoice_rows(
    sessions: sessionmaker[Session], tenant_id: str, spec: ExportFilter
) -> Iterator[list[str]]:
    """The export's rows, invoice by invoice in issue order (then id), lines in order."""
    after: tuple[datetime | None, str] | None = None
    while True:
        with sessions() as session:
            query = (
                select(
                    InvoiceRow.id,
                    InvoiceRow.number,
                    CustomerRow.external_id,
                    InvoiceRow.status,
                    InvoiceRow.currency,
                    InvoiceRow.issued_at,
                    InvoiceRow.due_at,
                    InvoiceRow.total,
                )
                .join(CustomerRow, CustomerRow.id == InvoiceRow.customer_id)
                .where(InvoiceRow.tenant_id == tenant_id, InvoiceRow.issued_at.is_not(None))
            )
            if spec.start is not None:
                query = query.where(InvoiceRow.issued_at >= spec.start)
            if spec.end is not None:
                query = query.where(InvoiceRow.issued_at < spec.end)
            if spec.status is not None:
                query = query.where(InvoiceRow.status == spec.status)
            if after is not None:
                query = query.where(tuple_(InvoiceRow.issued_at, InvoiceRow.id) > after)
            page = session.execute(
                query.order_by(InvoiceRow.issued_at, InvoiceRow.id).limit(PAGE)
            ).all()
            if not page:
                return
            lines: dict[str, list[tuple[object, ...]]] = {row[0]: [] for row in page}
            for line in session.execute(
                select(
                    InvoiceLineRow.invoice_id,
                    InvoiceLineRow.type,
                    InvoiceLineRow.description,
                    InvoiceLineRow.metric,
                    InvoiceLineRow.quantity,
                    InvoiceLineRow.unit_amount,
                    InvoiceLineRow.amount,
                    InvoiceLineRow.tax_amount,
                )
                .where(InvoiceLineRow.invoice_id.in_(list(lines)))
                .order_by(InvoiceLineRow.invoice_id, InvoiceLineRow.position)
            ):
                lines[line[0]].append(tuple(line))
        for inv_id, number, customer, status, cur, issued, due, total in page:
            head = [inv_id, number or "", customer, status, cur, _ts(issued), _ts(due)]
            shown_total = format_money(total, cur)
            for _, type_, description, metric, quantity, unit, amount, tax in lines[inv_id]:
                yield [
                    *head, str(type_), str(description), str(metric or ""),
                    format_decimal(quantity), format_decimal(unit),  # type: ignore[arg-type]
                    format_money(amount, cur), format_money(tax, cur),  # type: ignore[arg-type]
                    shown_total,
                ]  # fmt: skip
        last = page[-1]
        after = (last[5], last[0])  # issued_at is never None here (filtered)


def credit_note_rows(
    sessions: sessionmaker[Session], tenant_id: str, spec: ExportFilter
) -> Iterator[list[str]]:
    """One row per credit note, in creation order; `from`/`to` filter on createdAt."""
    after: tuple[datetime, str] | None = None
    while True:
        with sessions() as session:
            query = (
                select(CreditNoteRow, InvoiceRow.number, CustomerRow.external_id)
                .join(InvoiceRow, InvoiceRow.id == CreditNoteRow.invoice_id)
                .join(CustomerRow, CustomerRow.id == CreditNoteRow.customer_id)
                .where(CreditNoteRow.tenant_id == tenant_id)
            )
            if spec.start is not None:
                query = query.where(CreditNoteRow.created_at >= spec.start)
            if spec.end is not None:
                query = query.where(CreditNoteRow.created_at < spec.end)
            if spec.status is not None:
                query = query.where(CreditNoteRow.status == spec.status)
            if after is not None:
                query = query.where(tuple_(CreditNoteRow.created_at, CreditNoteRow.id) > after)
            page = session.execute(
                query.order_by(CreditNoteRow.created_at, CreditNoteRow.id).limit(PAGE)
            ).all()
            if not page:
                return
            rows = [
                [
                    n.id,
                    n.number,
                    n.invoice_id,
                    inv_number or "",
                    customer,
                    n.status,
                    n.type,
                    n.reason,
                    n.currency,
                    format_money(n.amount, n.currency),
                    format_money(n.balance, n.currency),
                    n.refund_status or "",
                    _ts(n.created_at),
                    _ts(n.issued_at),
                    _ts(n.applied_at),
                    _ts(n.voided_at),
                    n.description or "",
                ]
                for n, inv_number, customer in page
            ]
            after = (page[-1][0].created_at, page[-1][0].id)
        yield from rows


def _ts(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
