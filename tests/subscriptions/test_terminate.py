"""POST /subscriptions/{id}/terminate over the ledger API (SQLite and PostgreSQL): the
final invoice of [period start, at), the credit note for unused advance fees, 409 twice,
422 outside the current period, 404 for another tenant's subscription."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.subscriptions.conftest import bill, invoices_of, lines, plan, subscribe

pytestmark = pytest.mark.ledger


def test_terminate_now_bills_the_partial_period_once(api: ApiClient) -> None:
    plan(api, "pro", "31")
    sub = subscribe(api, "acme", "pro", "2026-10-01")
    api.clock.set(datetime(2026, 10, 15, 12, tzinfo=UTC))
    ended = api.ok("POST", f"/subscriptions/{sub}/terminate")
    assert (ended["status"], ended["endDate"], ended["terminatedAt"]) == (
        "terminated",
        "2026-10-15T12:00:00Z",
        "2026-10-15T12:00:00Z",
    )
    assert ended["creditNoteIds"] == [] and len(ended["finalInvoiceIds"]) == 1
    final = api.ok("GET", f"/invoices/{ended['finalInvoiceIds'][0]}")
    # Oct 1 → Oct 15 12:00 uses 15 started days of 31: 31 × 15/31 = 15.00
    assert lines(final) == [("PRORATION", "15.00", "2026-10-01T00:00:00Z", "2026-10-15T12:00:00Z")]
    assert (final["periodStart"], final["periodEnd"], final["total"]) == (
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
        "15.00",
    )
    # Later bill runs bill it no more: October is invoiced, November not active.
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 0
    api.clock.set(datetime(2026, 12, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-11-01", "2026-11-30")["invoicesCreated"] == 0
    assert [i["id"] for i in invoices_of(api, sub)] == ended["finalInvoiceIds"]

    again = api.error("POST", f"/subscriptions/{sub}/terminate", 409)
    assert again["code"] == "conflict"


def test_terminate_at_a_past_instant_without_final_invoice(api: ApiClient) -> None:
    plan(api, "pro", "31")
    sub = subscribe(api, "acme", "pro", "2026-10-01")
    body = {"at": "2026-10-10T00:00:00Z", "finalInvoice": False}
    ended = api.ok("POST", f"/subscriptions/{sub}/terminate", json=body)
    assert (ended["endDate"], ended["finalInvoiceIds"]) == ("2026-10-10T00:00:00Z", [])
    assert invoices_of(api, sub) == []
    # The period's bill run bills [Oct 1, Oct 10): 9 of 31 days, 9.00.
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 1
    (october,) = invoices_of(api, sub)
    assert lines(october) == [("PRORATION", "9.00", "2026-10-01T00:00:00Z", "2026-10-10T00:00:00Z")]


def test_terminate_credits_the_unused_advance_fee(api: ApiClient) -> None:
    plan(api, "adv", "30", payInAdvance=True)
    sub = subscribe(api, "acme", "adv", "2026-09-01")
    api.clock.set(datetime(2026, 10, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-09-01", "2026-09-30")["invoicesCreated"] == 1
    (september,) = invoices_of(api, sub)
    # The first invoice bills September's and October's advance fees.
    assert lines(september) == [
        ("CHARGE", "30.00", "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z"),
        ("CHARGE", "30.00", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"),
    ]
    # A DRAFT cannot be credited: finalize first (or do without the credit).
    api.clock.set(datetime(2026, 10, 11, tzinfo=UTC))
    refused = api.error("POST", f"/subscriptions/{sub}/terminate", 409)
    assert (refused["code"], refused["details"]) == (
        "advance_invoice_draft",
        {"invoiceId": september["id"]},
    )
    assert api.ok("GET", f"/subscriptions/{sub}")["status"] == "active"
    api.ok("POST", f"/invoices/{september['id']}/finalize")

    ended = api.ok("POST", f"/subscriptions/{sub}/terminate")
    # Oct 1 → Oct 11 uses 10 of 31 days: 30 × 10/31 = 9.677… → 9.68 used, 20.32 credited.
    (note_id,) = ended["creditNoteIds"]
    note = api.ok("GET", f"/credit-notes/{note_id}")
    assert (note["invoiceId"], note["amount"], note["type"], note["status"]) == (
        september["id"],
        "20.32",
        "offset",
        "APPLIED",
    )
    assert api.ok("GET", f"/invoices/{september['id']}")["amountDue"] == "39.68"
    # The final invoice does not bill October's advance fee again.
    final = api.ok("GET", f"/invoices/{ended['finalInvoiceIds'][0]}")
    assert (lines(final), final["total"]) == ([], "0.00")


def test_terminate_without_credit_keeps_the_advance_fee(api: ApiClient) -> None:
    plan(api, "adv", "30", payInAdvance=True)
    sub = subscribe(api, "acme", "adv", "2026-09-01")
    api.clock.set(datetime(2026, 10, 1, 1, tzinfo=UTC))
    bill(api, "2026-09-01", "2026-09-30")
    api.clock.set(datetime(2026, 10, 11, tzinfo=UTC))
    body = {"creditUnusedAdvanceFees": False, "finalInvoice": False}
    ended = api.ok("POST", f"/subscriptions/{sub}/terminate", json=body)
    assert (ended["creditNoteIds"], ended["finalInvoiceIds"]) == ([], [])


def test_terminate_before_the_current_period_is_refused_and_later_is_scheduled(
    api: ApiClient,
) -> None:
    plan(api, "pro", "31")
    sub = subscribe(api, "acme", "pro", "2026-09-01")
    url = f"/subscriptions/{sub}/terminate"
    early = api.error("POST", url, 422, json={"at": "2026-09-29"})
    assert early["code"] == "before_current_period"
    unknown = api.error("POST", url, 422, json={"when": "now"})
    assert unknown["code"] == "validation_error"
    assert api.ok("GET", f"/subscriptions/{sub}")["status"] == "active"
    now = api.clock.now()
    later = api.ok("POST", url, json={"at": "2026-10-20T00:00:00Z"})
    # Scheduled: nothing billed now (its period's bill run bills up to the end), and
    # active until then.
    assert (later["status"], later["finalInvoiceIds"]) == ("active", [])
    assert later["endDate"].startswith("2026-10-20")
    assert api.error("POST", url, 409)["code"] == "conflict"
    api.clock.set(datetime(2026, 10, 20, 0, 0, 1, tzinfo=UTC))
    assert api.ok("GET", f"/subscriptions/{sub}")["status"] == "terminated"
    assert now < api.clock.now()


def test_another_tenants_subscription_is_not_found(
    api: ApiClient, ledger_url: str, tmp_path: Path
) -> None:
    plan(api, "pro", "31")
    sub = subscribe(api, "acme", "pro", "2026-10-01")
    with ledger_api(ledger_url, tmp_path / "other") as other:
        other.runtime.usage = api.runtime.usage
        plan(other, "pro", "31")
        for method, path, body in (
            ("POST", f"/subscriptions/{sub}/terminate", {}),
            ("POST", f"/subscriptions/{sub}/change-plan", {"planCode": "pro"}),
            ("PATCH", f"/subscriptions/{sub}", {"name": "mine"}),
        ):
            assert other.error(method, path, 404, json=body)["code"] == "not_found"
    assert api.ok("GET", f"/subscriptions/{sub}")["status"] == "active"
