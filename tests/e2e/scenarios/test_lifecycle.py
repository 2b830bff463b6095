"""Bill runs and the invoice lifecycle: idempotent runs, transitions and numbering,
refreshing a draft after late events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    coupon,
    customer,
    discount,
    ev,
    invoice,
    invoices,
    lines,
    metric,
    per_unit,
    plan,
    send,
    totals,
    usage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_bill_run_idempotent_across_plans(stack):
    c = stack.tenant("sc-idempotent")
    plan(c, "month", [], baseFee="10")
    plan(c, "week", [], baseFee="7", interval="weekly")
    customer(c, "m", "month")
    customer(c, "w", "week")
    # October: m's month + w's 4 weeks ending in October ([Sep 28, Oct 5) prorated)
    bill(c, "2026-10-01", "2026-10-31", created=5)
    again = bill(c, "2026-10-01", "2026-10-31", created=0)
    assert again["total"] == 0
    customer(c, "late", "month", start="2026-10-16")
    # an overlapping window: only what was never invoiced. late's October (16/31 days),
    # November for m and late, and w's 5 weeks from Oct 26 to Nov 30: 1 + 2 + 5 = 8
    bill(c, "2026-10-01", "2026-11-30", created=8)
    bill(c, "2026-10-01", "2026-11-30", created=0)
    m_invoices = [(i["periodStart"][:10], i["total"]) for i in invoices(c, "m")]
    assert m_invoices == [("2026-10-01", "10.00"), ("2026-11-01", "10.00")]
    # 10 × 16/31 = 5.16
    late_invoices = [(i["periodStart"][:10], i["total"]) for i in invoices(c, "late")]
    assert late_invoices == [("2026-10-01", "5.16"), ("2026-11-01", "10.00")]
    w_invoices = [(i["periodStart"][:10], i["total"]) for i in invoices(c, "w")]
    # the first week has 4 of its 7 days from Oct 1: 4.00
    assert w_invoices == [
        ("2026-09-28", "4.00"),
        *[(f"2026-{d}", "7.00") for d in ("10-05", "10-12", "10-19", "10-26")],
        *[(f"2026-11-{d:02d}", "7.00") for d in (2, 9, 16, 23)],
    ]


def test_invoice_lifecycle(stack):
    c = stack.tenant("sc-lifecycle")
    plan(c, "base", [], baseFee="10")
    for name in ("a", "b", "c", "d"):
        customer(c, name, "base")
    bill(c, "2026-10-01", "2026-10-31", created=4)
    inv = {name: invoice(c, name)["id"] for name in ("a", "b", "c", "d")}
    assert {invoice(c, n)["status"] for n in inv} == {"DRAFT"}
    assert {invoice(c, n)["number"] for n in inv} == {None}

    def post(url: str, **body: Any) -> Any:
        return c.post(url, json=body or None)

    def conflict(response: Any) -> None:
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "illegal_transition"

    # a DRAFT can be neither paid nor voided
    conflict(post(f"/invoices/{inv['d']}/payments", amount="1"))
    conflict(post(f"/invoices/{inv['d']}/void"))
    # numbers follow the order of finalization, without gaps
    numbers = [c.ok("POST", f"/invoices/{inv[n]}/finalize")["number"] for n in ("c", "a", "b")]
    assert numbers == ["INV-000001", "INV-000002", "INV-000003"]
    opened = c.ok("GET", f"/invoices/{inv['a']}")
    assert opened["status"] == "OPEN" and opened["issuedAt"] and opened["dueAt"]
    conflict(post(f"/invoices/{inv['a']}/finalize"))
    conflict(post(f"/invoices/{inv['a']}/refresh"))
    # partial payment, then the rest: OPEN → PAID
    payment = c.ok("POST", f"/invoices/{inv['a']}/payments", json={"amount": "4"})
    assert (payment["invoiceId"], payment["amount"], payment["currency"]) == (
        inv["a"],
        "4.00",
        "USD",
    )
    part = c.ok("GET", f"/invoices/{inv['a']}")
    assert (part["status"], part["amountPaid"], part["amountDue"]) == ("OPEN", "4.00", "6.00")
    assert post(f"/invoices/{inv['a']}/payments", amount="6.01").status_code == 422
    c.ok("POST", f"/invoices/{inv['a']}/payments", json={"amount": "6.00"})
    paid = c.ok("GET", f"/invoices/{inv['a']}")
    assert (paid["status"], paid["amountPaid"], paid["amountDue"]) == ("PAID", "10.00", Z)
    conflict(post(f"/invoices/{inv['a']}/void"))
    conflict(post(f"/invoices/{inv['a']}/payments", amount="1"))
    # OPEN → VOID, then nothing
    assert c.ok("POST", f"/invoices/{inv['b']}/void")["status"] == "VOID"
    conflict(post(f"/invoices/{inv['b']}/payments", amount="1"))
    conflict(post(f"/invoices/{inv['b']}/finalize"))
    # finalize-all numbers the last DRAFT next
    assert c.ok("POST", "/invoices/finalize-all")["invoiceIds"] == [inv["d"]]
    assert c.ok("GET", f"/invoices/{inv['d']}")["number"] == "INV-000004"
    statuses = {n: c.ok("GET", f"/invoices/{i}")["status"] for n, i in inv.items()}
    assert statuses == {"a": "PAID", "b": "VOID", "c": "OPEN", "d": "OPEN"}


def test_refresh_draft_with_late_events_recomputes_credits(stack):
    c = stack.tenant("sc-refresh")
    metric(c, "gb", "sum")
    plan(c, "meter", [per_unit("gb", "1")])
    customer(c, "late", "meter")
    coupon(c, "THREE", "late", type="fixed", amount="3", currency="USD", frequency="once")
    wallet = c.ok("POST", "/wallets", json={"customerId": "late", "credits": "10"})["id"]
    send(c, [ev("g1", "late", "gb", "2026-10-03", 4)])
    bill(c, "2026-10-01", "2026-10-31", created=1)
    draft = invoice(c, "late")
    # 4 × 1 = 4; coupon 3 → total 1; the wallet pays 1 → due 0
    assert lines(draft) == [usage("gb", "4", "1", "4.00"), discount("-3.00", "-3")]
    assert totals(draft) == ("4.00", "3.00", Z, "1.00", "1.00", Z)
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == "9.00"
    # events of October arrive after the bill run, while the invoice is still a draft
    send(c, [ev("g2", "late", "gb", "2026-10-30", 15)], stored=2)
    fresh = c.ok("POST", f"/invoices/{draft['id']}/refresh")
    # coupon and wallet are given back, then applied again: 19 − 3 = 16;
    # the wallet's 10 → credit 10, due 6
    assert lines(fresh) == [usage("gb", "19", "1", "19.00"), discount("-3.00", "-3")]
    assert totals(fresh) == ("19.00", "3.00", Z, "10.00", "16.00", "6.00")
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == Z
    txs = c.ok("GET", f"/wallets/{wallet}/transactions")["data"]
    assert [(t["type"], t["amount"]) for t in txs] == [("deduction", "10.00"), ("top_up", "10.00")]
    [applied] = c.ok("GET", "/customers/late/coupons")["data"]
    assert (applied["status"], applied["amountRemaining"]) == ("terminated", "0")
    # once finalized and paid, the rest of the due amount closes it
    assert c.ok("POST", f"/invoices/{draft['id']}/finalize")["amountDue"] == "6.00"
    c.ok("POST", f"/invoices/{draft['id']}/payments", json={"amount": "6"})
    assert c.ok("GET", f"/invoices/{draft['id']}")["status"] == "PAID"
