"""The invoice state machine at the service level (invoicing.invoices), both backends.

DRAFT → OPEN → PAID,  OPEN → VOID;  anything else is a Conflict (409).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, NotFound, ValidationFailed
from invoicing import invoices
from invoicing.db import transaction
from invoicing.models import InvoiceRow, InvoiceSequence, PaymentRow
from tests.ledger import drafts, new_tenant

pytestmark = pytest.mark.ledger

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def _finalize(factory: sessionmaker[Session], tenant: str, invoice_id: str) -> InvoiceRow:
    with transaction(factory) as session:
        return invoices.finalize(session, tenant, invoice_id, due_days=30, now=NOW)


def _pay(
    factory: sessionmaker[Session], tenant: str, invoice_id: str, amount: object
) -> InvoiceRow:
    """Record a payment; returns the invoice as it is afterwards."""
    with transaction(factory) as session:
        invoices.record_payment(session, tenant, invoice_id, amount, "ref", NOW)
        return invoices.get_invoice(session, tenant, invoice_id)


def _void(factory: sessionmaker[Session], tenant: str, invoice_id: str) -> InvoiceRow:
    with transaction(factory) as session:
        return invoices.void(session, tenant, invoice_id, NOW)


def _load(factory: sessionmaker[Session], tenant: str, invoice_id: str) -> InvoiceRow:
    with factory() as session:
        return invoices.get_invoice(session, tenant, invoice_id)


def _payments(factory: sessionmaker[Session], invoice_id: str) -> list[Decimal]:
    with factory() as session:
        return list(
            session.execute(
                select(PaymentRow.amount).where(PaymentRow.invoice_id == invoice_id)
            ).scalars()
        )


def test_a_draft_has_no_number_or_dates(factory: sessionmaker[Session]) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1)
    row = _load(factory, tenant, invoice_id)
    assert (row.status, row.number, row.issued_at, row.due_at) == ("DRAFT", None, None, None)
    assert [ln.amount for ln in row.lines] == [Decimal("100.00")]
    assert row.customer.external_id == "acme"


def test_finalize_numbers_in_order_and_sets_dates(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    first, second = drafts(factory, tenant, customer, 2)

    _finalize(factory, tenant, first)
    _finalize(factory, tenant, second)

    one, two = _load(factory, tenant, first), _load(factory, tenant, second)
    assert (one.number, two.number) == ("INV-000001", "INV-000002")
    for row in (one, two):
        assert row.status == "OPEN"
        assert row.issued_at == NOW and row.issued_at.utcoffset() == timedelta(0)
        assert row.due_at == NOW + timedelta(days=30)
        assert row.amount_due == Decimal("100.00")


def test_finalize_twice_is_a_conflict_and_takes_no_number(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    first, second = drafts(factory, tenant, customer, 2)
    _finalize(factory, tenant, first)

    with pytest.raises(Conflict) as caught:
        _finalize(factory, tenant, first)
    assert caught.value.code == "illegal_transition"
    assert "OPEN" in caught.value.message

    assert _load(factory, tenant, first).number == "INV-000001"
    assert _finalize(factory, tenant, second).number == "INV-000002"


def test_paying_a_draft_is_a_conflict(factory: sessionmaker[Session], locking: None) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1)
    with pytest.raises(Conflict) as caught:
        _pay(factory, tenant, invoice_id, "10.00")
    assert caught.value.code == "illegal_transition"
    assert _load(factory, tenant, invoice_id).amount_due == Decimal("100.00")
    assert _payments(factory, invoice_id) == []


def test_voiding_a_draft_is_a_conflict(factory: sessionmaker[Session], locking: None) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1)
    with pytest.raises(Conflict):
        _void(factory, tenant, invoice_id)
    assert _load(factory, tenant, invoice_id).status == "DRAFT"


def test_payments_reduce_amount_due_and_exact_full_payment_marks_paid(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1, total="100.00")
    _finalize(factory, tenant, invoice_id)

    row = _pay(factory, tenant, invoice_id, "30.25")
    assert (row.status, row.amount_paid, row.amount_due) == (
        "OPEN",
        Decimal("30.25"),
        Decimal("69.75"),
    )
    row = _pay(factory, tenant, invoice_id, 19.75)  # a JSON number is accepted too
    assert (row.status, row.amount_due) == ("OPEN", Decimal("50.00"))

    row = _pay(factory, tenant, invoice_id, "50.00")
    assert (row.status, row.amount_paid, row.amount_due) == ("PAID", Decimal("100"), Decimal(0))

    stored = _load(factory, tenant, invoice_id)
    assert (stored.status, stored.amount_due) == ("PAID", Decimal(0))
    assert sorted(_payments(factory, invoice_id)) == [
        Decimal("19.75"),
        Decimal("30.25"),
        Decimal("50.00"),
    ]
    with pytest.raises(Conflict):
        _pay(factory, tenant, invoice_id, "1.00")


def test_payment_above_amount_due_is_refused(factory: sessionmaker[Session], locking: None) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1, total="100.00")
    _finalize(factory, tenant, invoice_id)
    _pay(factory, tenant, invoice_id, "60.00")

    with pytest.raises(ValidationFailed, match="exceeds the amount due"):
        _pay(factory, tenant, invoice_id, "40.01")

    row = _load(factory, tenant, invoice_id)
    assert (row.status, row.amount_due, row.amount_paid) == (
        "OPEN",
        Decimal("40.00"),
        Decimal("60.00"),
    )
    assert _payments(factory, invoice_id) == [Decimal("60.00")]


def test_payment_with_more_decimals_than_the_currency_is_refused(
    factory: sessionmaker[Session], locking: None
) -> None:
    for currency, total, amount in [
        ("USD", "100.00", "10.001"),
        ("JPY", "1000", "1.5"),
        ("BHD", "5.000", "0.0005"),
    ]:
        tenant, customer = new_tenant(factory, currency=currency)
        [invoice_id] = drafts(factory, tenant, customer, 1, total=total, currency=currency)
        _finalize(factory, tenant, invoice_id)
        with pytest.raises(ValidationFailed, match=f"more decimals than {currency}"):
            _pay(factory, tenant, invoice_id, amount)
        assert _payments(factory, invoice_id) == []
        assert _load(factory, tenant, invoice_id).amount_due == Decimal(total)


def test_non_positive_or_malformed_payment_is_refused(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1)
    _finalize(factory, tenant, invoice_id)
    for amount in ["0", "-5.00", "abc", "NaN", "Infinity", True, None, [1]]:
        with pytest.raises(ValidationFailed):
            _pay(factory, tenant, invoice_id, amount)
    assert _payments(factory, invoice_id) == []
    assert _load(factory, tenant, invoice_id).amount_due == Decimal("100.00")


def test_void_from_open_and_nothing_after(factory: sessionmaker[Session], locking: None) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1)
    _finalize(factory, tenant, invoice_id)

    assert _void(factory, tenant, invoice_id).status == "VOID"
    row = _load(factory, tenant, invoice_id)
    assert (row.status, row.number) == ("VOID", "INV-000001")  # the number stays used

    for action in (_void, _finalize):
        with pytest.raises(Conflict):
            action(factory, tenant, invoice_id)
    with pytest.raises(Conflict):
        _pay(factory, tenant, invoice_id, "1.00")


def test_voiding_a_paid_invoice_is_a_conflict(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1, total="12.50")
    _finalize(factory, tenant, invoice_id)
    _pay(factory, tenant, invoice_id, "12.50")

    with pytest.raises(Conflict) as caught:
        _void(factory, tenant, invoice_id)
    assert caught.value.code == "illegal_transition"
    assert "PAID" in caught.value.message
    assert _load(factory, tenant, invoice_id).status == "PAID"


def test_zero_total_invoice_is_paid_on_finalize(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1, total="0")
    row = _finalize(factory, tenant, invoice_id)
    assert (row.status, row.number) == ("PAID", "INV-000001")


def test_another_tenants_invoice_is_not_found(
    factory: sessionmaker[Session], locking: None
) -> None:
    owner, customer = new_tenant(factory, "owner")
    intruder, _ = new_tenant(factory, "intruder")
    [invoice_id] = drafts(factory, owner, customer, 1)

    with pytest.raises(NotFound):
        _load(factory, intruder, invoice_id)
    for action in (_finalize, _void):
        with pytest.raises(NotFound):
            action(factory, intruder, invoice_id)
    with pytest.raises(NotFound):
        _pay(factory, intruder, invoice_id, "1.00")

    assert _load(factory, owner, invoice_id).status == "DRAFT"
    with factory() as session:
        sequences = dict(
            session.execute(select(InvoiceSequence.tenant_id, InvoiceSequence.next_value)).all()
        )
        assert sequences == {owner: 1, intruder: 1}
        assert session.scalar(select(func.count()).select_from(PaymentRow)) == 0
    # The owner's sequence is untouched: its first number is still INV-000001.
    assert _finalize(factory, owner, invoice_id).number == "INV-000001"
