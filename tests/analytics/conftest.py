"""`api`: a fresh tenant's client over a fresh ledger on each backend, and `invoice`, a
builder of DRAFT invoices with the lines an analytics test needs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path

import pytest

from invoicing import catalog
from invoicing.db import transaction
from invoicing.models import InvoiceLineRow, InvoiceRow, new_id
from tests.helpers.ledger_api import ApiClient, ledger_api

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
_PERIODS = count()


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=NOW) as client:
        yield client


def draft(
    api: ApiClient,
    customer: str,
    lines: list[tuple[str, str | None, str]],
    *,
    type_: str = "subscription",
) -> str:
    """A DRAFT invoice of `customer` (external id) with `lines` of (line type, metric,
    amount), no tax, written as a bill run would; returns its id."""
    amounts = [Decimal(a) for _, _, a in lines]
    total = sum(amounts, Decimal(0))
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=next(_PERIODS))
    with transaction(api.runtime.sessions) as session:
        row = catalog.get_customer(session, api.tenant_id, customer)
        invoice = InvoiceRow(
            id=new_id("inv"),
            tenant_id=api.tenant_id,
            customer_id=row.id,
            status="DRAFT",
            type=type_,
            currency=row.currency,
            period_start=start,
            period_end=start + timedelta(days=1),
            subtotal=total,
            total=total,
            amount_due=total,
        )
        for position, ((kind, metric, _), amount) in enumerate(zip(lines, amounts, strict=True)):
            invoice.lines.append(
                InvoiceLineRow(
                    id=new_id("ln"),
                    position=position,
                    type=kind,
                    description=metric or kind,
                    metric=metric,
                    quantity=Decimal(1),
                    unit_amount=amount,
                    amount=amount,
                )
            )
        session.add(invoice)
        return invoice.id


def issue(
    api: ApiClient,
    at: datetime,
    customer: str,
    lines: list[tuple[str, str | None, str]],
    *,
    type_: str = "subscription",
) -> str:
    """A DRAFT finalized through the API at `at` (the clock is moved there)."""
    api.clock.set(at)
    invoice_id = draft(api, customer, lines, type_=type_)
    api.ok("POST", f"/invoices/{invoice_id}/finalize")
    return invoice_id
