"""Ledger tests (SQLite always, PostgreSQL when METERLINE_TEST_POSTGRES_URL is set).

Small builders shared by the ledger test modules: a session factory on a migrated
ledger, a tenant with a customer, and DRAFT invoices with one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from invoicing import catalog
from invoicing.db import make_engine, make_sessionmaker, transaction
from invoicing.models import InvoiceLineRow, InvoiceRow, new_id
from invoicing.specs import CustomerSpec
from invoicing.tenants import create_tenant

PERIOD_START = datetime(2026, 10, 1, tzinfo=UTC)


@contextmanager
def session_factory(url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def new_tenant(
    factory: sessionmaker[Session], name: str = "t", currency: str = "USD"
) -> tuple[str, str]:
    """A tenant (with its invoice sequence) and one customer; returns (tenant id, customer id)."""
    with transaction(factory) as session:
        tenant_id = create_tenant(session, name).tenant_id
        customer = catalog.create_customer(
            session, tenant_id, CustomerSpec(external_id="acme", name="Acme", currency=currency)
        )
        return tenant_id, customer.id


def add_draft(
    session: Session,
    tenant_id: str,
    customer_id: str,
    total: Decimal | str = "100.00",
    *,
    currency: str = "USD",
    index: int = 0,
) -> InvoiceRow:
    """A DRAFT invoice with one CHARGE line of `total` (periods differ by `index`)."""
    amount = Decimal(total)
    start = PERIOD_START + timedelta(days=index)
    invoice = InvoiceRow(
        id=new_id("inv"),
        tenant_id=tenant_id,
        customer_id=customer_id,
        status="DRAFT",
        currency=currency,
        period_start=start,
        period_end=start + timedelta(days=1),
        subtotal=amount,
        total=amount,
        amount_due=amount,
    )
    invoice.lines.append(
        InvoiceLineRow(
            id=new_id("ln"),
            position=0,
            type="CHARGE",
            description="Base fee",
            quantity=Decimal(1),
            unit_amount=amount,
            amount=amount,
        )
    )
    session.add(invoice)
    session.flush()
    return invoice


def drafts(
    factory: sessionmaker[Session], tenant_id: str, customer_id: str, count: int, **kwargs: object
) -> list[str]:
    """`count` DRAFT invoices committed in one transaction; returns their ids."""
    with transaction(factory) as session:
        return [
            add_draft(session, tenant_id, customer_id, index=i, **kwargs).id  # type: ignore[arg-type]
            for i in range(count)
        ]
