"""POST /subscriptions/{id}/change-plan and PATCH /subscriptions/{id} over the ledger
API (SQLite and PostgreSQL), fixed fees only: the old plan's fees up to the change, the
new plan's from it, an advance fee credited for its unused part; a change at period end;
refusals (currency, same plan, unknown plan, terminated)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers.ledger_api import ApiClient
from tests.subscriptions.conftest import bill, invoices_of, lines, plan, subscribe

pytestmark = pytest.mark.ledger


def test_change_now_splits_fixed_fees_at_the_instant(api: ApiClient) -> None:
    plan(api, "basic", "31")
    plan(api, "premium", "62")
    old = subscribe(api, "acme", "basic", "2026-10-01")
    api.ok("PATCH", f"/subscriptions/{old}", json={"name": "Main account"})
    changed = api.ok("POST", f"/subscriptions/{old}/change-plan", json={"planCode": "premium"})
    previous, new = changed["previous"], changed["subscription"]
    assert (previous["id"], previous["status"], previous["endDate"]) == (
        old,
        "terminated",
        "2026-10-15T00:00:00Z",
    )
    assert previous["nextSubscriptionId"] == new["id"]
    assert (new["planCode"], new["startDate"], new["status"], new["name"]) == (
        "premium",
        "2026-10-15T00:00:00Z",
        "active",
        "Main account",
    )
    assert new["previousSubscriptionId"] == old
    # basic, Oct 1 → Oct 15: 31 × 14/31 = 14.00, invoiced at once
    (final_id,) = changed["finalInvoiceIds"]
    assert lines(api.ok("GET", f"/invoices/{final_id}")) == [
        ("PRORATION", "14.00", "2026-10-01T00:00:00Z", "2026-10-15T00:00:00Z")
    ]
    # premium, Oct 15 → Nov 1 on October's bill run: 62 × 17/31 = 34.00
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 1
    (october,) = invoices_of(api, new["id"])
    assert lines(october) == [
        ("PRORATION", "34.00", "2026-10-15T00:00:00Z", "2026-11-01T00:00:00Z")
    ]
    assert [i["id"] for i in invoices_of(api, old)] == [final_id]


def test_change_now_credits_the_old_advance_fee_and_charges_the_new(api: ApiClient) -> None:
    plan(api, "basic", "31", payInAdvance=True)
    plan(api, "premium", "62", payInAdvance=True)
    old = subscribe(api, "acme", "basic", "2026-09-01")
    api.clock.set(datetime(2026, 10, 1, 1, tzinfo=UTC))
    bill(api, "2026-09-01", "2026-09-30")
    (september,) = invoices_of(api, old)
    api.ok("POST", f"/invoices/{september['id']}/finalize")
    api.clock.set(datetime(2026, 10, 15, 12, tzinfo=UTC))
    body = {"planCode": "premium", "at": "2026-10-15T00:00:00Z"}
    changed = api.ok("POST", f"/subscriptions/{old}/change-plan", json=body)
    # October's 31.00 was billed in advance: 14 of 31 days used (14.00), 17.00 credited.
    (note_id,) = changed["creditNoteIds"]
    note = api.ok("GET", f"/credit-notes/{note_id}")
    assert (note["invoiceId"], note["amount"]) == (september["id"], "17.00")
    final = api.ok("GET", f"/invoices/{changed['finalInvoiceIds'][0]}")
    assert (lines(final), final["total"]) == ([], "0.00")
    # premium's first invoice: October prorated 17/31 (34.00) and November in advance.
    new = changed["subscription"]["id"]
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    bill(api, "2026-10-01", "2026-10-31")
    (first,) = invoices_of(api, new)
    assert lines(first) == [
        ("PRORATION", "34.00", "2026-10-15T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("CHARGE", "62.00", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
    ]


def test_change_at_period_end_bills_the_old_plan_for_the_whole_period(api: ApiClient) -> None:
    plan(api, "basic", "31")
    plan(api, "premium", "62")
    old = subscribe(api, "acme", "basic", "2026-10-01")
    body = {"planCode": "premium", "at": "periodEnd"}
    changed = api.ok("POST", f"/subscriptions/{old}/change-plan", json=body)
    previous, new = changed["previous"], changed["subscription"]
    assert (previous["status"], previous["endDate"], previous["nextSubscriptionId"]) == (
        "active",
        "2026-11-01T00:00:00Z",
        new["id"],
    )
    assert (new["startDate"], changed["finalInvoiceIds"], changed["creditNoteIds"]) == (
        "2026-11-01T00:00:00Z",
        [],
        [],
    )
    again = api.error("POST", f"/subscriptions/{old}/change-plan", 409, json=body)
    assert again["code"] == "plan_change_pending"
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 1
    (october,) = invoices_of(api, old)
    assert lines(october) == [("CHARGE", "31.00", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")]
    api.clock.set(datetime(2026, 12, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-11-01", "2026-11-30")["invoicesCreated"] == 1
    (november,) = invoices_of(api, new["id"])
    assert lines(november) == [("CHARGE", "62.00", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")]
    assert len(invoices_of(api, old)) == 1


def test_change_plan_refusals(api: ApiClient) -> None:
    plan(api, "basic", "31")
    api.ok(
        "POST",
        "/plans",
        json={"code": "euro", "name": "Euro", "currency": "EUR", "interval": "monthly"},
    )
    sub = subscribe(api, "acme", "basic", "2026-10-01")
    url = f"/subscriptions/{sub}/change-plan"
    mismatch = api.error("POST", url, 422, json={"planCode": "euro"})
    assert mismatch["code"] == "currency_mismatch"
    assert api.error("POST", url, 422, json={"planCode": "basic"})["code"] == "validation_error"
    assert api.error("POST", url, 422, json={"planCode": "nope"})["code"] == "validation_error"
    assert api.error("POST", url, 422, json={"planCode": "basic", "at": "soon"})
    plan(api, "retired", "40")
    api.ok("DELETE", "/plans/retired")  # archived: no new subscriptions, by change either
    for at in ({}, {"at": "periodEnd"}):
        archived = api.error("POST", url, 409, json={"planCode": "retired", **at})
        assert archived["code"] == "plan_archived"
    assert api.ok("GET", f"/subscriptions/{sub}")["status"] == "active"
    api.ok("POST", f"/subscriptions/{sub}/terminate")
    assert api.error("POST", url, 409, json={"planCode": "euro"})["code"] == "terminated"


def test_patch_name_end_date_and_overrides(api: ApiClient) -> None:
    plan(api, "pro", "31")
    sub = subscribe(api, "acme", "pro", "2026-10-01")
    url = f"/subscriptions/{sub}"
    patched = api.ok("PATCH", url, json={"name": "Team", "overrides": {"baseFee": "62"}})
    assert (patched["name"], patched["overrides"], patched["endDate"]) == (
        "Team",
        {"baseFee": "62"},
        None,
    )
    ended = api.ok("PATCH", url, json={"endDate": "2026-10-20T00:00:00Z"})
    assert (ended["name"], ended["endDate"], ended["status"]) == (
        "Team",
        "2026-10-20T00:00:00Z",
        "active",
    )
    assert (
        api.error("PATCH", url, 422, json={"endDate": "2026-09-01"})["code"] == "validation_error"
    )
    assert api.error("PATCH", url, 422, json={"planCode": "x"})["code"] == "validation_error"
    bad = api.error("PATCH", url, 422, json={"overrides": {"baseFee": "-1"}})
    assert bad["code"] == "validation_error"
    # The override and the end date bill: 62 × 19/31 = 38.00 for Oct 1 → Oct 20.
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    bill(api, "2026-10-01", "2026-10-31")
    (october,) = invoices_of(api, sub)
    assert lines(october) == [
        ("PRORATION", "38.00", "2026-10-01T00:00:00Z", "2026-10-20T00:00:00Z")
    ]
    api.ok("PATCH", url, json={"endDate": None})
    assert api.ok("GET", url)["endDate"] is None
    api.ok("POST", f"/subscriptions/{sub}/terminate")
    assert api.error("PATCH", url, 409, json={"name": "x"})["code"] == "terminated"
