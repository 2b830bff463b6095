"""Credit notes through the API, on SQLite and PostgreSQL: the three types and what each
does to the invoice, the estimate, every refusal, sequential numbers, ten concurrent
requests against one creditable remainder, refunds through Stripe, voiding an invoice
with a credit note, and a property over payments and offsets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from invoicing.models import DomainEventRow
from tests.helpers.ledger_api import ApiClient
from tests.helpers.stripe_server import SECRET, fake_stripe

pytestmark = pytest.mark.ledger


def _events(api: ApiClient, object_id: str) -> list[str]:
    with api.runtime.sessions() as session:
        rows = session.execute(
            select(DomainEventRow.type)
            .where(DomainEventRow.tenant_id == api.tenant_id, DomainEventRow.object_id == object_id)
            .order_by(DomainEventRow.created_at, DomainEventRow.id)
        ).scalars()
        return list(rows)


def _note(api: ApiClient, invoice_id: str, amount: str, type_: str = "offset") -> dict[str, Any]:
    created: dict[str, Any] = api.ok(
        "POST",
        "/credit-notes",
        json={"invoiceId": invoice_id, "amount": amount, "reason": "OTHER", "type": type_},
    )
    return created


def _applied(api: ApiClient, invoice_id: str, amount: str, type_: str = "offset") -> Any:
    note = _note(api, invoice_id, amount, type_)
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    return api.ok("POST", f"/credit-notes/{note['id']}/apply")


def test_an_offset_lowers_what_is_due_with_a_credit_line(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    estimate = api.ok("GET", f"/credit-notes/estimate?invoiceId={invoice['id']}")
    assert estimate == {
        "invoiceId": invoice["id"], "currency": "USD",
        "creditableAmount": "100.00", "refundableAmount": "0.00",
    }  # fmt: skip
    response = api.post(
        "/credit-notes",
        json={"invoiceId": invoice["id"], "amount": "30.10", "reason": "PRODUCT_UNSATISFACTORY",
              "description": "Outage on the 3rd"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    note = response.json()
    assert {k: note[k] for k in (
        "number", "invoiceId", "customerId", "status", "type", "amount", "currency", "reason",
        "description", "createdAt",
    )} == {
        "number": "CN-000001", "invoiceId": invoice["id"], "customerId": "acme",
        "status": "DRAFT", "type": "offset", "amount": "30.10", "currency": "USD",
        "reason": "PRODUCT_UNSATISFACTORY", "description": "Outage on the 3rd",
        "createdAt": "2026-11-01T09:00:00Z",
    }  # fmt: skip
    # A DRAFT already counts against what is creditable; nothing changed on the invoice.
    estimate = api.ok("GET", f"/credit-notes/estimate?invoiceId={invoice['id']}")
    assert estimate["creditableAmount"] == "69.90"
    assert api.ok("GET", f"/invoices/{invoice['id']}")["amountDue"] == "100.00"

    issued = api.ok("POST", f"/credit-notes/{note['id']}/issue")
    assert (issued["status"], issued["issuedAt"]) == ("ISSUED", "2026-11-01T09:00:00Z")
    applied = api.ok("POST", f"/credit-notes/{note['id']}/apply")
    assert applied["status"] == "APPLIED"
    after = api.ok("GET", f"/invoices/{invoice['id']}")
    assert (after["status"], after["total"], after["creditTotal"], after["amountDue"]) == (
        "OPEN", "100.00", "30.10", "69.90",
    )  # fmt: skip
    credit = [ln for ln in after["lines"] if ln["type"] == "CREDIT"]
    assert [(c["amount"], c["description"]) for c in credit] == [
        ("-30.10", "Credit note CN-000001")
    ]
    assert _events(api, note["id"]) == [
        "credit_note.created", "credit_note.issued", "credit_note.applied",
    ]  # fmt: skip
    assert api.ok("GET", f"/credit-notes/{note['id']}") == applied


def test_an_offset_that_clears_the_balance_makes_the_invoice_paid(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "40.00"})
    _applied(api, invoice["id"], "60.00")
    paid = api.ok("GET", f"/invoices/{invoice['id']}")
    assert (paid["status"], paid["amountPaid"], paid["creditTotal"], paid["amountDue"]) == (
        "PAID", "40.00", "60.00", "0.00",
    )  # fmt: skip
    assert "invoice.paid" in _events(api, invoice["id"])


def test_refusals_name_what_is_wrong(api: ApiClient) -> None:
    api.customer("acme")
    draft = api.draft("acme", "50.00")
    refused = api.error(
        "POST", "/credit-notes", 409, json={"invoiceId": draft, "amount": "1", "reason": "OTHER"}
    )
    assert "DRAFT" in refused["message"]
    invoice = api.open_invoice("acme", "100.00", index=1)

    def create(status: int, **body: Any) -> dict[str, Any]:
        payload = {"invoiceId": invoice["id"], "amount": "10", "reason": "OTHER"} | body
        return api.error("POST", "/credit-notes", status, json=payload)

    assert create(422, amount="100.01")["code"] == "exceeds_creditable"
    assert create(422, amount="0")["code"] == "validation_error"
    assert "decimals" in create(422, amount="1.001")["message"]
    create(422, reason="BECAUSE")
    create(422, type="gift")
    # A refund needs a payment to give back; nothing was paid yet.
    assert create(422, type="refund")["code"] == "exceeds_refundable"
    api.error("POST", "/credit-notes", 404, json={"invoiceId": "inv_nope", "amount": "1",
                                                  "reason": "OTHER"})  # fmt: skip
    # Pending offsets count against what is due: 70 due, 60 pending, 20 more is too much
    # (though 40 is still creditable).
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "30.00"})
    _note(api, invoice["id"], "60.00")
    assert create(422, amount="20.00")["code"] == "exceeds_amount_due"
    assert create(422, amount="40.01")["code"] == "exceeds_creditable"


def test_the_note_state_machine(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    note = _note(api, invoice["id"], "70.00")
    early = api.error("POST", f"/credit-notes/{note['id']}/apply", 409)
    assert "DRAFT" in early["message"] and early["code"] == "illegal_transition"
    voided = api.ok("POST", f"/credit-notes/{note['id']}/void")
    assert (voided["status"], voided["number"]) == ("VOID", "CN-000001")
    api.error("POST", f"/credit-notes/{note['id']}/issue", 409)
    # The void note no longer counts: the whole invoice is creditable again.
    estimate = api.ok("GET", f"/credit-notes/estimate?invoiceId={invoice['id']}")
    assert estimate["creditableAmount"] == "100.00"
    second = _applied(api, invoice["id"], "100.00")
    assert second["number"] == "CN-000002"  # numbers never repeat, void ones included
    api.error("POST", f"/credit-notes/{second['id']}/void", 409)
    api.error("POST", f"/credit-notes/{second['id']}/apply", 409)
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "PAID"
    api.error("GET", "/credit-notes/cn_nope", 404)
    assert _events(api, note["id"]) == ["credit_note.created", "credit_note.voided"]


def test_a_credit_becomes_balance_that_later_invoices_use(api: ApiClient) -> None:
    api.customer("acme")
    first = api.open_invoice("acme", "100.00")
    api.ok("POST", f"/invoices/{first['id']}/payments", json={"amount": "100.00"})
    note = _applied(api, first["id"], "25.00", "credit")
    assert (note["balance"], note["type"]) == ("25.00", "credit")
    # The paid invoice itself is unchanged.
    again = api.ok("GET", f"/invoices/{first['id']}")
    assert (again["status"], again["creditTotal"], again["amountDue"]) == ("PAID", "0.00", "0.00")

    second = api.open_invoice("acme", "10.00", index=1)
    assert (second["creditTotal"], second["amountDue"], second["status"]) == (
        "10.00", "0.00", "PAID",
    )  # fmt: skip
    assert [ln["amount"] for ln in second["lines"] if ln["type"] == "CREDIT"] == ["-10.00"]
    assert api.ok("GET", f"/credit-notes/{note['id']}")["balance"] == "15.00"

    third = api.open_invoice("acme", "40.00", index=2)
    assert (third["creditTotal"], third["amountDue"]) == ("15.00", "25.00")
    assert api.ok("GET", f"/credit-notes/{note['id']}")["balance"] == "0.00"
    # Voiding the third gives its 15.00 back; the fourth uses it.
    api.ok("POST", f"/invoices/{third['id']}/void")
    assert api.ok("GET", f"/credit-notes/{note['id']}")["balance"] == "15.00"
    fourth = api.open_invoice("acme", "100.00", index=3)
    assert (fourth["creditTotal"], fourth["amountDue"]) == ("15.00", "85.00")

    # Another customer never sees the balance.
    api.customer("other")
    theirs = api.open_invoice("other", "20.00", index=4)
    assert (theirs["creditTotal"], theirs["amountDue"]) == ("0.00", "20.00")


def test_a_refund_without_a_provider_is_recorded(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "80.00")
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "80.00"})
    estimate = api.ok("GET", f"/credit-notes/estimate?invoiceId={invoice['id']}")
    assert (estimate["creditableAmount"], estimate["refundableAmount"]) == ("80.00", "80.00")
    note = _applied(api, invoice["id"], "30.00", "refund")
    assert (note["status"], note["refundStatus"]) == ("APPLIED", "recorded")
    estimate = api.ok("GET", f"/credit-notes/estimate?invoiceId={invoice['id']}")
    assert (estimate["creditableAmount"], estimate["refundableAmount"]) == ("50.00", "50.00")
    over = api.error(
        "POST", "/credit-notes", 422,
        json={"invoiceId": invoice["id"], "amount": "50.01", "reason": "OTHER", "type": "refund"},
    )  # fmt: skip
    assert over["code"] == "exceeds_creditable"
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "PAID"


def test_a_refund_goes_back_through_stripe_once(api: ApiClient) -> None:
    with fake_stripe() as stripe:
        config = {"secretKey": SECRET, "baseUrl": stripe.url}
        api.ok("POST", "/payment-providers", json={"provider": "stripe", "config": config})
        stripe.add_customer("cus_acme")
        api.customer("acme", paymentProvider="stripe", paymentProviderCustomerId="cus_acme")
        invoice = api.open_invoice("acme", "120.00")
        assert invoice["status"] == "PAID"
        note = _applied(api, invoice["id"], "20.50", "refund")
        assert note["refundStatus"] == "succeeded"
        [post] = stripe.posts("/v1/refunds")
        assert post.headers["authorization"] == f"Bearer {SECRET}"
        assert post.headers["idempotency-key"] == f"{note['id']}/refund"
        assert post.form == {"payment_intent": "pi_0001", "amount": "2050"}
        # Applying again is refused and sends nothing more.
        api.error("POST", f"/credit-notes/{note['id']}/apply", 409)
        assert len(stripe.posts("/v1/refunds")) == 1


def test_ten_concurrent_notes_never_exceed_the_creditable_amount(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")

    def create(_: int) -> int:
        response = api.post(
            "/credit-notes",
            json={"invoiceId": invoice["id"], "amount": "15.00", "reason": "DUPLICATE",
                  "type": "credit"},
        )  # fmt: skip
        return response.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(create, range(10)))
    assert statuses == [201] * 6 + [422] * 4
    notes = api.ok("GET", f"/credit-notes?invoiceId={invoice['id']}")["data"]
    assert sorted(n["number"] for n in notes) == [f"CN-{i:06d}" for i in range(1, 7)]
    assert sum(Decimal(n["amount"]) for n in notes) == Decimal("90.00")
    estimate = api.ok("GET", f"/credit-notes/estimate?invoiceId={invoice['id']}")
    assert estimate["creditableAmount"] == "10.00"


def test_voiding_an_invoice_with_a_credit_note(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "40.00"})
    api.error("POST", f"/invoices/{invoice['id']}/void", 422,
              json={"creditNote": {"type": "offset"}})  # fmt: skip
    voided = api.ok(
        "POST", f"/invoices/{invoice['id']}/void", json={"creditNote": {"type": "credit"}}
    )
    assert voided["status"] == "VOID"
    [note] = api.ok("GET", f"/credit-notes?invoiceId={invoice['id']}")["data"]
    assert (note["status"], note["type"], note["amount"], note["balance"]) == (
        "APPLIED", "credit", "40.00", "40.00",
    )  # fmt: skip
    # The money paid on the void invoice pays the next one.
    nxt = api.open_invoice("acme", "30.00", index=1)
    assert (nxt["creditTotal"], nxt["status"]) == ("30.00", "PAID")

    unpaid = api.open_invoice("acme", "70.00", index=2)
    assert unpaid["amountDue"] == "60.00"  # the remaining 10.00 of balance
    missing = api.error("POST", f"/invoices/{unpaid['id']}/void", 422,
                        json={"creditNote": {"type": "refund"}})  # fmt: skip
    assert missing["code"] == "amount_required"
    plain = api.ok("POST", f"/invoices/{unpaid['id']}/void")
    assert plain["status"] == "VOID"
    api.error(
        "POST", f"/invoices/{unpaid['id']}/void", 409, json={"creditNote": {"type": "credit"}}
    )
    assert api.ok("GET", f"/credit-notes?invoiceId={unpaid['id']}")["data"] == []


def test_listing_filters(api: ApiClient) -> None:
    api.customer("acme")
    api.customer("beta")
    a = api.open_invoice("acme", "100.00")
    b = api.open_invoice("beta", "100.00", index=1)
    one = _note(api, a["id"], "1.00")
    two = _applied(api, b["id"], "2.00")

    def ids(query: str) -> list[str]:
        return sorted(n["id"] for n in api.ok("GET", f"/credit-notes?{query}")["data"])

    assert ids(f"invoiceId={a['id']}") == [one["id"]]
    assert ids("customerId=beta") == [two["id"]]
    assert ids("status=applied") == [two["id"]]
    assert ids("") == sorted([one["id"], two["id"]])
    api.error("GET", "/credit-notes?status=LOST", 422)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["pay", "offset", "credit"]), st.integers(1, 5_000)),
        min_size=1,
        max_size=6,
    )
)
def test_any_payments_and_notes_keep_amount_due_exact(
    api: ApiClient, steps: list[tuple[str, int]]
) -> None:
    """amountDue = total − creditTotal − Σ payments ≥ 0, PAID exactly at 0, and the notes
    never exceed the total, for any sequence of payments and credit notes."""
    # A customer per example: a `credit` note's balance would pay the next one's invoice.
    index = len(api.ok("GET", "/invoices?limit=500")["data"])
    api.customer(f"prop{index}")
    invoice = api.open_invoice(f"prop{index}", "100.00", index=index)
    total, paid, offsets, noted = Decimal("100.00"), Decimal(0), Decimal(0), Decimal(0)
    for kind, cents in steps:
        amount = Decimal(cents) / 100
        due = total - offsets - paid
        if kind == "pay":
            status = api.post(
                f"/invoices/{invoice['id']}/payments", json={"amount": str(amount)}
            ).status_code
            expected = 409 if due == 0 else 422 if amount > due else 201
            assert status == expected
            if status == 201:
                paid += amount
        else:
            response = api.post(
                "/credit-notes",
                json={"invoiceId": invoice["id"], "amount": str(amount), "reason": "OTHER",
                      "type": kind},
            )  # fmt: skip
            fits = amount <= total - noted and (kind != "offset" or amount <= due)
            assert response.status_code == (201 if fits else 422), response.text
            if fits:
                note_id = response.json()["id"]
                api.ok("POST", f"/credit-notes/{note_id}/issue")
                api.ok("POST", f"/credit-notes/{note_id}/apply")
                noted += amount
                offsets += amount if kind == "offset" else 0
        state = api.ok("GET", f"/invoices/{invoice['id']}")
        due = total - offsets - paid
        assert Decimal(state["amountDue"]) == due >= 0
        assert Decimal(state["creditTotal"]) == offsets
        assert state["status"] == ("PAID" if due == 0 else "OPEN")


def test_a_voided_invoice_regenerates_as_the_next_revision(api: ApiClient) -> None:
    from invoicing.models import InvoiceRow
    from tests.helpers import scenarios as sc

    sc.metric(api, "calls", "count")
    sc.plan(api, "basic", [sc.per_unit("calls", "0.10")])
    sub = sc.customer(api, "acme", "basic")
    draft_id = api.draft("acme", "100.00")
    with api.runtime.sessions() as session, session.begin():
        # As a bill run writes it: the subscription's invoice of its period.
        row = session.get(InvoiceRow, draft_id)
        assert row is not None
        row.subscription_id = sub["id"]
    first = api.ok("POST", f"/invoices/{draft_id}/finalize")
    api.error("POST", f"/invoices/{draft_id}/regenerate", 409)  # OPEN
    api.ok("POST", f"/invoices/{draft_id}/payments", json={"amount": "25.00"})
    api.ok("POST", f"/invoices/{draft_id}/void", json={"creditNote": {"type": "credit"}})

    response = api.post(f"/invoices/{draft_id}/regenerate")
    assert response.status_code == 201, response.text
    again = response.json()
    assert (again["status"], again["number"], again["regeneratedFrom"]) == (
        "DRAFT", None, draft_id,
    )  # fmt: skip
    assert (again["subscriptionId"], again["periodStart"], again["periodEnd"]) == (
        sub["id"], first["periodStart"], first["periodEnd"],
    )  # fmt: skip
    assert [(ln["type"], ln["amount"]) for ln in again["lines"]] == [("CHARGE", "100.00")]
    assert (again["total"], again["amountPaid"], again["amountDue"]) == (
        "100.00", "0.00", "100.00",
    )  # fmt: skip
    refused = api.error("POST", f"/invoices/{draft_id}/regenerate", 409)
    assert refused["code"] == "already_regenerated"

    final = api.ok("POST", f"/invoices/{again['id']}/finalize")
    # A new number; the 25.00 paid on the void invoice came back as balance.
    assert (final["number"], final["creditTotal"], final["amountDue"]) == (
        "INV-000002", "25.00", "75.00",
    )  # fmt: skip
    # The regenerated one can be voided and regenerated in turn: revision 2.
    api.ok("POST", f"/invoices/{again['id']}/void")
    third = api.ok("POST", f"/invoices/{again['id']}/regenerate")
    assert third["regeneratedFrom"] == again["id"]
    with api.runtime.sessions() as session:
        revision = session.get(InvoiceRow, third["id"])
        assert revision is not None and revision.revision == 2
