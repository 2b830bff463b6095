"""The sums are exact on both databases: SQLite keeps money as text and its own SUM would
go through a float, so `invoicing.ledger_sql` sums it as integers. A property over
random amounts of up to twelve decimals, below the API's rounding (the domain queries
themselves), and the months of a range adding up to the range."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from invoicing import analytics
from invoicing.db import transaction
from invoicing.models import CreditNoteRow, InvoiceRow, new_id
from tests.ledger import new_tenant, session_factory

pytestmark = pytest.mark.ledger

NOW = datetime(2027, 1, 15, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)

amounts = st.decimals(
    min_value=Decimal("-1000000000"),
    max_value=Decimal("1000000000"),
    places=12,
    allow_nan=False,
    allow_infinity=False,
)
# (day offset from October 1st within Oct–Dec, amount)
entries = st.lists(st.tuples(st.integers(0, 91), amounts), max_size=25)


@pytest.fixture
def factory(ledger_url: str) -> Iterator[sessionmaker[Session]]:
    with session_factory(ledger_url) as f:
        yield f


def _write(
    factory: sessionmaker[Session],
    invoices: list[tuple[int, Decimal]],
    notes: list[tuple[int, Decimal]],
) -> str:
    tenant_id, customer_id = new_tenant(factory)
    with transaction(factory) as session:
        rows = []
        for i, (day, total) in enumerate(invoices):
            issued = OCTOBER + timedelta(days=day, hours=i % 24)
            rows.append(
                InvoiceRow(
                    id=new_id("inv"), tenant_id=tenant_id, customer_id=customer_id,
                    status="OPEN", currency="USD", period_start=issued - timedelta(days=1),
                    period_end=issued, issued_at=issued, total=total, amount_due=total,
                )
            )  # fmt: skip
        session.add_all(rows)
        session.flush()
        for i, (day, amount) in enumerate(notes):
            if not rows:
                break
            at = OCTOBER + timedelta(days=day)
            session.add(
                CreditNoteRow(
                    id=new_id("cn"), tenant_id=tenant_id, invoice_id=rows[i % len(rows)].id,
                    customer_id=customer_id, number=f"CN-{i}", status="ISSUED", type="offset",
                    amount=abs(amount), currency="USD", reason="OTHER", created_at=at,
                    issued_at=at,
                )
            )  # fmt: skip
    return tenant_id


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(invoices=entries, notes=entries)
def test_gross_revenue_is_the_exact_sum_and_months_add_up(
    factory: sessionmaker[Session],
    invoices: list[tuple[int, Decimal]],
    notes: list[tuple[int, Decimal]],
) -> None:
    tenant_id = _write(factory, invoices, notes)
    scope = analytics.Scope(tenant_id, currency="USD")
    quarter = analytics.window(analytics.Month(2026, 10), analytics.Month(2026, 12), NOW)
    expected: dict[str, Decimal] = {str(m): Decimal(0) for m in quarter.months}
    for day, total in invoices:
        expected[str(analytics.Month.of(OCTOBER + timedelta(days=day)))] += total
    if invoices:
        for day, amount in notes:
            expected[str(analytics.Month.of(OCTOBER + timedelta(days=day)))] -= abs(amount)
    with factory() as session:
        figures = analytics.gross_revenue(session, scope, quarter)
        assert {f.month: f.amount for f in figures} == expected
        # Each month alone gives what the quarter gives for it.
        for month in quarter.months:
            (alone,) = analytics.gross_revenue(session, scope, analytics.Window(month, month))
            assert alone.amount == expected[str(month)]
    assert sum((f.amount for f in figures), Decimal(0)) == sum(expected.values(), Decimal(0))
