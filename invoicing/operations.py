"""What an operator looks at across a tenant's ledger (the dashboard's reads): whether
the key a person signed in with still stands, the customers who were invoiced most,
recent bill runs, quota blocks and alert triggers. Every read is scoped by tenant."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session

from invoicing.analytics import ISSUED, PREPAID_TYPE, UNPAID
from invoicing.ledger_sql import sum_columns, sum_value, sum_width
from invoicing.models import (
    AlertRow,
    AlertTriggerRow,
    ApiKey,
    BillRunRow,
    CustomerRow,
    InvoiceRow,
    QuotaCrossingRow,
)


def key_active(session: Session, tenant_id: str, key_id: str) -> bool:
    """Whether the key `key_id` of `tenant_id` still exists and is not revoked."""
    row = session.get(ApiKey, key_id)
    return row is not None and row.tenant_id == tenant_id and row.revoked_at is None


# -- top customers ---------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerTotal:
    external_id: str
    name: str | None
    currency: str
    invoiced: Decimal  # totals of the issued invoices that stand (not drafts, not void)
    invoices: int
    outstanding: Decimal  # still due on the OPEN and OVERDUE ones


def invoiced_currencies(session: Session, tenant_id: str) -> list[str]:
    """The currencies the tenant has issued invoices in, most invoices first."""
    count = func.count()
    rows = session.execute(
        select(InvoiceRow.currency, count)
        .where(InvoiceRow.tenant_id == tenant_id, InvoiceRow.status.in_(ISSUED))
        .group_by(InvoiceRow.currency)
        .order_by(count.desc(), InvoiceRow.currency)
    ).all()
    return [str(r[0]) for r in rows]


def top_customers(
    session: Session, tenant_id: str, currency: str, limit: int = 10
) -> list[CustomerTotal]:
    """The `limit` customers with the most invoiced in `currency`, largest first (ties by
    external id). Wallet top-ups are prepaid money, not counted (as in analytics)."""
    dialect = session.get_bind().dialect.name
    width = sum_width(dialect)
    # PostgreSQL orders by its exact NUMERIC sum; SQLite by a float sum (its exact one
    # is three columns), so a few more rows are read and put in exact order below.
    order = func.sum(InvoiceRow.total if dialect != "sqlite" else cast(InvoiceRow.total, Float))
    zero: str | int = "0" if dialect == "sqlite" else 0  # SQLite keeps money as text
    unpaid = case((InvoiceRow.status.in_(UNPAID), InvoiceRow.amount_due), else_=zero)
    query = (
        select(CustomerRow.external_id, CustomerRow.name)
        .join(InvoiceRow, InvoiceRow.customer_id == CustomerRow.id)
        .where(
            InvoiceRow.tenant_id == tenant_id,
            InvoiceRow.currency == currency,
            InvoiceRow.status.in_(ISSUED),
            InvoiceRow.type != PREPAID_TYPE,
        )
        .group_by(CustomerRow.external_id, CustomerRow.name)
        .add_columns(
            *sum_columns(InvoiceRow.total, dialect),
            *sum_columns(unpaid, dialect),
            func.count(),
        )
        .order_by(order.desc(), CustomerRow.external_id)
        .limit(limit + (10 if dialect == "sqlite" else 0))
    )
    found = [
        CustomerTotal(
            external_id=row[0],
            name=row[1],
            currency=currency,
            invoiced=sum_value(row[2 : 2 + width]),
            outstanding=sum_value(row[2 + width : 2 + 2 * width]),
            invoices=int(row[2 + 2 * width]),
        )
        for row in session.execute(query).all()
    ]
    found.sort(key=lambda c: (-c.invoiced, c.external_id))
    return found[:limit]


# -- bill runs, quota blocks, alert triggers -------------------------------------------


def recent_bill_runs(session: Session, tenant_id: str, limit: int = 20) -> list[BillRunRow]:
    """The tenant's latest bill runs, newest first."""
    query = (
        select(BillRunRow)
        .where(BillRunRow.tenant_id == tenant_id)
        .order_by(BillRunRow.created_at.desc(), BillRunRow.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def quota_blocks(session: Session, tenant_id: str, limit: int = 50) -> list[QuotaCrossingRow]:
    """Hard caps reached (the customer's events of that metric are refused until the
    period ends), latest first."""
    query = (
        select(QuotaCrossingRow)
        .where(QuotaCrossingRow.tenant_id == tenant_id)
        .order_by(QuotaCrossingRow.crossed_at.desc(), QuotaCrossingRow.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def recent_triggers(
    session: Session, tenant_id: str, limit: int = 50
) -> list[tuple[AlertTriggerRow, AlertRow]]:
    """Alert thresholds reached, latest first, each with its alert."""
    query = (
        select(AlertTriggerRow, AlertRow)
        .join(AlertRow, AlertRow.id == AlertTriggerRow.alert_id)
        .where(AlertTriggerRow.tenant_id == tenant_id, AlertRow.tenant_id == tenant_id)
        .order_by(AlertTriggerRow.triggered_at.desc(), AlertTriggerRow.id.desc())
        .limit(limit)
    )
    return [(t, a) for t, a in session.execute(query).all()]
