"""Exact money and aware UTC times in the ledger, on SQLite and PostgreSQL.

invoicing.db.Money is NUMERIC(38, 12) on PostgreSQL and canonical text on SQLite: it
promises exact Decimals with up to 26 integer digits and 12 decimals.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import StatementError

from invoicing.db import Money, UTCDateTime, make_engine, make_sessionmaker, transaction
from invoicing.models import InvoiceLineRow, InvoiceRow, PaymentRow, Tenant, new_id
from tests.ledger import add_draft, new_tenant

pytestmark = pytest.mark.ledger

probe_md = sa.MetaData()
probe = sa.Table(
    "money_probe",
    probe_md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", Money(), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=True),
)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = make_engine(ledger_url)
    probe_md.create_all(eng)
    yield eng
    eng.dispose()


def _roundtrip(engine: Engine, column: str, value: object) -> object:
    with engine.begin() as conn:
        conn.execute(probe.delete())
        conn.execute(probe.insert().values(id=1, **{column: value}))
    with engine.connect() as conn:
        return conn.execute(select(probe.c[column]).where(probe.c.id == 1)).scalar_one()


EXACT_VALUES = [
    "0",
    "1",
    "-1",
    "12.50",
    "0.000000000001",
    "-0.000000000001",
    "0.123456789012",
    "-987.654321098765",
    "1234567890123456.123456789012",  # 28 significant digits
    "-1234567890123456.123456789012",
    "12345678901234567890123456",  # 26 integer digits
    "-99999999999999999999999999",
    "1E+3",
]

# The full NUMERIC(38, 12) range: 26 integer digits and 12 decimals at once.
WIDE_VALUES = [
    "12345678901234567890123456.123456789012",
    "-99999999999999999999999999.999999999999",
    "12345678901234567.123456789012",  # 29 significant digits is enough to lose
]


def _mismatches(engine: Engine, values: list[str]) -> list[tuple[str, object]]:
    wrong = []
    for text_value in values:
        value = Decimal(text_value)
        got = _roundtrip(engine, "amount", value)
        if not isinstance(got, Decimal) or got != value:
            wrong.append((text_value, got))
    return wrong


def test_money_roundtrips_exactly(engine: Engine) -> None:
    assert _mismatches(engine, EXACT_VALUES) == []
    assert _roundtrip(engine, "amount", None) is None


def test_money_keeps_26_integer_digits_with_12_decimals(engine: Engine) -> None:
    assert _mismatches(engine, WIDE_VALUES) == []


def test_money_is_not_stored_as_a_float(engine: Engine, ledger_backend: str) -> None:
    _roundtrip(engine, "amount", Decimal("0.1"))
    with engine.connect() as conn:
        if ledger_backend == "sqlite":
            kind = conn.execute(text("SELECT typeof(amount) FROM money_probe")).scalar_one()
            assert kind == "text"
        else:
            [column] = [
                c for c in inspect(conn).get_columns("invoice_lines") if c["name"] == "amount"
            ]
            assert isinstance(column["type"], sa.Numeric)
            assert (column["type"].precision, column["type"].scale) == (38, 12)


def test_money_through_the_models(ledger_url: str) -> None:
    """The migrated columns (not just the type) keep 12 decimals and negatives exact."""
    engine = make_engine(ledger_url)
    factory = make_sessionmaker(engine)
    try:
        tenant_id, customer_id = new_tenant(factory)
        with transaction(factory) as session:
            invoice = add_draft(session, tenant_id, customer_id, "0")
            invoice.lines.append(
                InvoiceLineRow(
                    id=new_id("ln"),
                    position=1,
                    type="USAGE_FEE",
                    description="API calls",
                    quantity=Decimal("1234567.000000000001"),
                    unit_amount=Decimal("0.000000123456"),
                    amount=Decimal("0.15"),
                )
            )
            invoice.lines.append(
                InvoiceLineRow(
                    id=new_id("ln"),
                    position=2,
                    type="DISCOUNT",
                    description="Coupon",
                    quantity=Decimal(1),
                    unit_amount=Decimal("-0.15"),
                    amount=Decimal("-0.15"),
                )
            )
            session.add(
                PaymentRow(
                    id=new_id("pay"),
                    tenant_id=tenant_id,
                    invoice_id=invoice.id,
                    amount=Decimal("99999999999999.99"),
                )
            )
            invoice_id = invoice.id
        with factory() as session:
            row = session.get(InvoiceRow, invoice_id)
            assert row is not None
            lines = {ln.position: ln for ln in row.lines}
            assert lines[1].quantity == Decimal("1234567.000000000001")
            assert lines[1].unit_amount == Decimal("0.000000123456")
            assert lines[2].amount == Decimal("-0.15")
            assert row.total == Decimal(0) and isinstance(row.total, Decimal)
            payment = session.execute(
                select(PaymentRow).where(PaymentRow.invoice_id == invoice_id)
            ).scalar_one()
            assert payment.amount == Decimal("99999999999999.99")
    finally:
        engine.dispose()


def test_utc_datetime_roundtrips_aware_utc(engine: Engine) -> None:
    value = datetime(2026, 10, 31, 23, 59, 59, 123456, tzinfo=UTC)
    got = _roundtrip(engine, "at", value)
    assert isinstance(got, datetime)
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got == value and got.microsecond == 123456


def test_utc_datetime_converts_other_zones_to_utc(engine: Engine) -> None:
    value = datetime(2026, 11, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    got = _roundtrip(engine, "at", value)
    assert isinstance(got, datetime)
    assert got == value
    assert got.utcoffset() == timedelta(0)
    assert (got.year, got.month, got.day, got.hour, got.minute) == (2026, 11, 1, 0, 0)
    # A query with a bound non-UTC instant finds the same row.
    with engine.connect() as conn:
        found = conn.execute(select(probe.c.id).where(probe.c.at == value)).scalar_one_or_none()
    assert found == 1


def test_utc_datetime_refuses_naive(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(probe.insert().values(id=2, at=datetime(2026, 10, 1)))


def test_model_timestamps_come_back_aware_utc(ledger_url: str) -> None:
    engine = make_engine(ledger_url)
    factory = make_sessionmaker(engine)
    try:
        with transaction(factory) as session:
            session.add(Tenant(id="ten_clock", name="clock"))
        with factory() as session:
            tenant = session.get(Tenant, "ten_clock")
            assert tenant is not None
            created = tenant.created_at
        assert created.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)
    finally:
        engine.dispose()
