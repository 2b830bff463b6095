"""The ledger rows of rated invoices: one mapping, written in bulk.

A bill run writes tens of thousands of invoices and several lines each. Rows are plain
tuples in table column order, converted once per column to what the driver stores
(the same conversions as the column types: exact decimal text on SQLite, JSON text)
and handed to the driver directly: `executemany` on SQLite, `COPY` on PostgreSQL. The
ORM's unit of work, or even Core's per-row parameter processing, would cost several
times the inserts themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Dialect, Table, delete
from sqlalchemy.orm import Session

from core.ids import new_ids
from invoicing.db import Money, UTCDateTime, json_dumps
from invoicing.models import InvoiceLineRow, InvoiceRow
from rating.model import RatedInvoice
from rating.money import ZERO


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


INVOICES = _table(InvoiceRow)
INVOICE_LINES = _table(InvoiceLineRow)

Row = tuple[Any, ...]


def line_rows(invoice_id: str, invoice: RatedInvoice, late_through: datetime | None) -> list[Row]:
    """The invoice_lines rows of a rated invoice (INVOICE_LINES column order);
    prior-period lines record the late-usage cutoff they bill through."""
    ids = new_ids("il", len(invoice.lines))
    return [
        (
            ids[i],
            invoice_id,
            i,
            line.type.value,
            line.description,
            line.metric,
            dict(line.group),
            line.charge_id,
            line.quantity,
            line.unit_amount,
            line.amount,
            line.discount_amount,
            line.tax_rate,
            line.tax_amount,
            line.period_start,
            line.period_end,
            line.prior_invoice_id,
            late_through if line.prior_invoice_id else None,
        )
        for i, line in enumerate(invoice.lines)
    ]


def invoice_row(
    invoice_id: str,
    tenant_id: str,
    bill_run_id: str | None,
    customer_row_id: str,
    invoice: RatedInvoice,
    now: datetime,
) -> Row:
    """The invoices row of a rated invoice (INVOICES column order): a DRAFT, unnumbered
    (numbers come at finalize)."""
    return (
        invoice_id,
        tenant_id,
        customer_row_id,
        invoice.subscription_id,
        bill_run_id,
        None,  # number
        "DRAFT",
        invoice.currency,
        invoice.period.start,
        invoice.period.end,
        None,  # issued_at
        None,  # due_at
        invoice.subtotal,
        invoice.discount_total,
        invoice.tax_total,
        invoice.credit_total,
        invoice.total,
        ZERO,  # amount_paid
        invoice.amount_due,
        now,  # created_at
        now,  # updated_at
        None,  # finalized_at
        "subscription",  # type
        None,  # paid_at
        None,  # overdue_at
        None,  # uncollectible_at
        None,  # voided_at
        0,  # revision
        None,  # regenerated_from
        None,  # billing_entity_id: a draft follows its customer's, fixed at finalize
    )


_Convert = Callable[[Any], Any] | None


def _converters(table: Table, dialect: Dialect) -> list[_Convert]:
    """Per column, what turns a Python value into the value the driver stores."""
    out: list[_Convert] = []
    for column in table.columns:
        if isinstance(column.type, Money):
            # Exact text on SQLite (see Money); the driver's own Decimal elsewhere.
            out.append(_decimal_text if dialect.name == "sqlite" else None)
        elif isinstance(column.type, JSON):
            out.append(_json_text)
        elif isinstance(column.type, UTCDateTime) and dialect.name == "sqlite":
            out.append(_sqlite_timestamp)
        else:
            out.append(column.type._cached_bind_processor(dialect))
    return out


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _json_text(value: Any) -> str:
    return "{}" if value == {} else json_dumps(value)


_TIMESTAMPS: dict[datetime, str] = {}


def _sqlite_timestamp(value: datetime) -> str:
    """UTC in SQLAlchemy's SQLite storage format (what UTCDateTime writes there); the
    few distinct instants of a run (period bounds, its clock) are formatted once."""
    text = _TIMESTAMPS.get(value)
    if text is None:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if len(_TIMESTAMPS) >= 10_000:
            _TIMESTAMPS.clear()
        t = value.astimezone(UTC)
        text = _TIMESTAMPS[value] = (
            f"{t.year:04d}-{t.month:02d}-{t.day:02d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"
        )
    return text


_CONVERTERS: dict[tuple[str, str], list[_Convert]] = {}


def _stored(table: Table, dialect: Dialect, rows: Sequence[Row]) -> list[Row]:
    key = (table.name, dialect.name)
    converters = _CONVERTERS.get(key)
    if converters is None:
        converters = _CONVERTERS[key] = _converters(table, dialect)
    active = [(i, convert) for i, convert in enumerate(converters) if convert is not None]
    out = []
    for row in rows:
        values = list(row)
        for i, convert in active:
            value = values[i]
            if value is not None:
                values[i] = convert(value)
        out.append(tuple(values))
    return out


def bulk_insert(session: Session, table: Table, rows: Sequence[Row]) -> None:
    """Insert rows (tuples in the table's column order) in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    stored = _stored(table, dialect, rows)
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    if dialect.name == "postgresql":
        cursor = connection.connection.cursor()
        try:
            with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                for row in stored:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    marks = ", ".join("?" if dialect.paramstyle == "qmark" else "%s" for _ in table.columns)
    connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', stored)


def insert_invoices(session: Session, invoices: Sequence[Row], lines: Sequence[Row]) -> None:
    """Insert invoice rows and their lines in the session's transaction."""
    bulk_insert(session, INVOICES, invoices)
    bulk_insert(session, INVOICE_LINES, lines)


def replace_lines(
    session: Session, invoice: InvoiceRow, rated: RatedInvoice, late_through: datetime | None
) -> None:
    """Give a DRAFT the lines and totals of a new rating (its payments stay)."""
    session.execute(delete(INVOICE_LINES).where(INVOICE_LINES.c.invoice_id == invoice.id))
    bulk_insert(session, INVOICE_LINES, line_rows(invoice.id, rated, late_through))
    invoice.subtotal = rated.subtotal
    invoice.discount_total = rated.discount_total
    invoice.tax_total = rated.tax_total
    invoice.credit_total = rated.credit_total
    invoice.total = rated.total
    invoice.amount_due = rated.amount_due - invoice.amount_paid
    session.flush()
    session.expire(invoice, ["lines"])


_INVOICE_COLUMNS = (
    "id", "tenant_id", "customer_id", "subscription_id", "bill_run_id", "number", "status",
    "currency", "period_start", "period_end", "issued_at", "due_at", "subtotal",
    "discount_total", "tax_total", "credit_total", "total", "amount_paid", "amount_due",
    "created_at", "updated_at", "finalized_at", "type", "paid_at", "overdue_at",
    "uncollectible_at", "voided_at", "revision", "regenerated_from", "billing_entity_id",
)  # fmt: skip
_LINE_COLUMNS = (
    "id", "invoice_id", "position", "type", "description", "metric", "group_values",
    "charge_id", "quantity", "unit_amount", "amount", "discount_amount", "tax_rate",
    "tax_amount", "period_start", "period_end", "prior_invoice_id", "late_through",
)  # fmt: skip
# The tuples above follow the tables: a migration that adds a column must add it here.
assert tuple(c.name for c in INVOICES.columns) == _INVOICE_COLUMNS
assert tuple(c.name for c in INVOICE_LINES.columns) == _LINE_COLUMNS
