"""Payments through the API: 201 with the payment, partial and full, never above what is
due, listed; the invoice's states and their domain events; dueAt from the customer's
net payment terms."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from invoicing.models import DomainEventRow
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger


def _events(api: ApiClient, object_id: str | None = None) -> list[str]:
    with api.runtime.sessions() as session:
        query = select(DomainEventRow).where(DomainEventRow.tenant_id == api.tenant_id)
        if object_id:
            query = query.where(DomainEventRow.object_id == object_id)
        rows = session.execute(query.order_by(DomainEventRow.created_at)).scalars()
        return [r.type for r in rows]


def test_partial_then_full_payment_settles_the_invoice(api: ApiClient) -> None:
    api.customer("acme", netPaymentTermDays=15)
    invoice = api.open_invoice(total="100.00")
    assert invoice["dueAt"] == (DEFAULT_NOW + timedelta(days=15)).isoformat().replace("+00:00", "Z")
    response = api.post(
        f"/invoices/{invoice['id']}/payments", json={"amount": "30.25", "reference": "wire-1"}
    )
    assert response.status_code == 201
    first = response.json()
    assert {k: first[k] for k in ("invoiceId", "amount", "currency", "reference", "provider")} == {
        "invoiceId": invoice["id"], "amount": "30.25", "currency": "USD", "reference": "wire-1",
        "provider": None,
    }  # fmt: skip
    assert first["id"].startswith("pay") and first["createdAt"] == "2026-11-01T09:00:00Z"
    after = api.ok("GET", f"/invoices/{invoice['id']}")
    assert (after["status"], after["amountPaid"], after["amountDue"]) == ("OPEN", "30.25", "69.75")

    over = api.error("POST", f"/invoices/{invoice['id']}/payments", 422, json={"amount": "69.76"})
    assert over["code"] == "exceeds_amount_due"
    api.error("POST", f"/invoices/{invoice['id']}/payments", 422, json={"amount": "0"})
    api.error("POST", f"/invoices/{invoice['id']}/payments", 422, json={"amount": "1.001"})
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": 69.75})
    paid = api.ok("GET", f"/invoices/{invoice['id']}")
    assert (paid["status"], paid["amountPaid"], paid["amountDue"]) == ("PAID", "100.00", "0.00")
    late = api.error("POST", f"/invoices/{invoice['id']}/payments", 409, json={"amount": "1"})
    assert "PAID" in late["message"]

    listed = api.ok("GET", f"/payments?invoiceId={invoice['id']}")["data"]
    # Both at the same frozen instant: the order between them is by id, either way.
    assert sorted(p["amount"] for p in listed) == ["30.25", "69.75"]
    assert len(listed) == 2 and {p["amount"] for p in listed} == {"30.25", "69.75"}
    assert api.ok("GET", f"/payments/{first['id']}")["amount"] == "30.25"
    assert _events(api, invoice["id"]) == ["invoice.finalized", "invoice.paid"]
    assert _events(api).count("payment.succeeded") == 2


def test_payments_filter_by_customer_and_paginate(api: ApiClient) -> None:
    api.customer("acme")
    api.customer("globex")
    a = api.open_invoice("acme", "10.00")
    b = api.open_invoice("globex", "20.00")
    for amount in ("1.00", "2.00", "3.00"):
        api.clock.advance(timedelta(seconds=1))
        api.ok("POST", f"/invoices/{a['id']}/payments", json={"amount": amount})
    api.ok("POST", f"/invoices/{b['id']}/payments", json={"amount": "5.00"})
    page = api.ok("GET", "/payments?customerId=acme&limit=2")
    assert [p["amount"] for p in page["data"]] == ["3.00", "2.00"]
    rest = api.ok("GET", f"/payments?customerId=acme&limit=2&cursor={page['nextCursor']}")
    assert [p["amount"] for p in rest["data"]] == ["1.00"] and rest["nextCursor"] is None
    assert [p["amount"] for p in api.ok("GET", "/payments?customerId=globex")["data"]] == ["5.00"]
    api.error("GET", "/payments/pay_missing", 404)


def test_illegal_transitions_name_the_states(api: ApiClient) -> None:
    api.customer("acme")
    draft = api.draft()
    error = api.error("POST", f"/invoices/{draft}/payments", 409, json={"amount": "1"})
    assert "DRAFT" in error["message"] and error["code"] == "illegal_transition"
    api.error("POST", f"/invoices/{draft}/void", 409)
    api.ok("POST", f"/invoices/{draft}/finalize")
    again = api.error("POST", f"/invoices/{draft}/finalize", 409)
    assert "OPEN" in again["message"]
    assert api.ok("POST", f"/invoices/{draft}/void")["status"] == "VOID"
    void = api.error("POST", f"/invoices/{draft}/void", 409)
    assert "VOID" in void["message"]
    assert _events(api, draft) == ["invoice.finalized", "invoice.voided"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cents=st.lists(st.integers(min_value=1, max_value=6_000), min_size=1, max_size=6))
def test_any_payments_keep_amount_due_exact(api: ApiClient, cents: list[int]) -> None:
    if not any(
        c.get("externalId") == "prop" for c in api.ok("GET", "/customers?limit=500")["data"]
    ):
        api.customer("prop")
    invoice = api.open_invoice(
        "prop", "100.00", index=len(api.ok("GET", "/invoices?limit=500")["data"])
    )
    paid = Decimal(0)
    for c in cents:
        amount = Decimal(c) / 100
        due = Decimal("100.00") - paid
        status = api.post(
            f"/invoices/{invoice['id']}/payments", json={"amount": str(amount)}
        ).status_code
        if paid == Decimal("100.00"):
            assert status == 409
        elif amount > due:
            assert status == 422
        else:
            assert status == 201
            paid += amount
        now = api.ok("GET", f"/invoices/{invoice['id']}")
        assert Decimal(now["amountDue"]) == Decimal("100.00") - paid >= 0
        assert now["status"] == ("PAID" if paid == Decimal("100.00") else "OPEN")
