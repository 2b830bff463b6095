"""Progressive billing end to end (issue 7; API.md "… progressive billing"): usage
thresholds on plans and subscription overrides, crossed by events on the real broker,
issue finalized `progressive_billing` invoices for the usage not yet billed, once each
however often the events come; the period-end invoice deducts them, exact to the cent
with taxes; every invoice and its finalization goes out on billing-events."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers.scenarios import bill, customer, metric, per_unit, plan, send
from tests.helpers.topics import tenant_messages

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

NOW = datetime(2026, 10, 20, 12, tzinfo=UTC)


def _setup(c: Any, *, thresholds: list[dict[str, Any]] | None, overrides: Any = None) -> str:
    """calls at 0.50 EUR on a monthly plan with a 5 EUR base fee and 20 % VAT for FR;
    acme (FR) subscribed from October 1."""
    metric(c, "calls", "count", name="Calls")
    c.ok("POST", "/taxes", json={"code": "vat", "name": "VAT", "rate": "20", "country": "FR"})
    extra: dict[str, Any] = {} if thresholds is None else {"usageThresholds": thresholds}
    plan(c, "metered", [per_unit("calls", "0.5")], currency="EUR", baseFee="5", **extra)
    more: dict[str, Any] = {} if overrides is None else {"overrides": overrides}
    sub = customer(c, "acme", "metered", currency="EUR", country="FR", **more)
    return str(sub["id"])


def _calls(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call-{i}",
            "customerId": "acme",
            "metric": "calls",
            "timestamp": f"2026-10-{1 + i % 19:02d}T08:00:00Z",
        }
        for i in range(start, start + n)
    ]


def _progressive(c: Any, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The customer's progressive invoices (with lines) once there are `count`, oldest first."""
    deadline = time.monotonic() + timeout
    while True:
        rows = c.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
        found = [r for r in rows if r["type"] == "progressive_billing"]
        if len(found) >= count or time.monotonic() > deadline:
            full = [c.ok("GET", f"/invoices/{r['id']}") for r in found]
            return sorted(full, key=lambda i: (i["periodEnd"], i["number"]))
        time.sleep(0.2)


def _billing_events(stack: Any, tenant: str, expect: int, wait: float = 30) -> list[dict]:
    topic = stack.runtime.settings.stream_config.billing_events_topic
    return tenant_messages(stack.runtime.bootstrap, topic, tenant, expect, wait)


def _money(invoice: dict[str, Any]) -> tuple[str, ...]:
    keys = ("subtotal", "discountTotal", "taxTotal", "total", "amountDue")
    return tuple(invoice[k] for k in keys)


def test_thresholds_bill_usage_so_far_and_the_period_end_deducts_it(
    stack: Any, travel_clock: Any
) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("progressive")
    sub = _setup(c, thresholds=[{"amount": "20", "recurring": True}, {"amount": "10"}])
    plan = c.ok("GET", "/plans/metered")
    assert plan["usageThresholds"] == [
        {"amount": "10", "recurring": False},
        {"amount": "20", "recurring": True},
    ]

    send(c, _calls(25))  # 12.50 EUR: the 10 threshold
    [first] = _progressive(c, 1)
    assert first["status"] == "OPEN" and first["number"].startswith("INV-")
    assert (first["subscriptionId"], first["periodStart"]) == (sub, "2026-10-01T00:00:00Z")
    # The usage up to the crossing, issued then (the travel clock runs on from NOW).
    assert first["periodEnd"][:16] == first["issuedAt"][:16] == "2026-10-20T12:00"
    assert first["dueAt"][:16] == "2026-11-19T12:00"
    [line] = first["lines"]
    assert (line["type"], line["metric"], line["quantity"], line["amount"]) == (
        "USAGE_FEE", "calls", "25", "12.50",
    )  # fmt: skip
    # No base fee: only usage is billed progressively; VAT 20 % on it.
    assert _money(first) == ("12.50", "0.00", "2.50", "15.00", "15.00")

    # The same 25 events again (redelivered or resent) and 20 new: 45 calls, 22.50 EUR,
    # the first multiple of the recurring 20; billed is only what is new: 10.00.
    travel_clock.travel_to(datetime(2026, 10, 25, 9, tzinfo=UTC))
    c.ok("POST", "/events", json={"events": _calls(25) + _calls(20, 25)})
    c.wait_events(45)
    first_again, second = _progressive(c, 2)
    assert first_again == first
    assert second["periodEnd"][:16] == "2026-10-25T09:00"
    assert [(ln["quantity"], ln["amount"]) for ln in second["lines"]] == [("20", "10.00")]
    assert _money(second) == ("10.00", "0.00", "2.00", "12.00", "12.00")

    # Three more calls (24.00 EUR) reach no new threshold (the next is 40): no invoice.
    send(c, _calls(3, 45), stored=48)
    time.sleep(2)
    assert len(_progressive(c, 3, timeout=2)) == 2

    # The period-end invoice: the base fee and all 48 calls, less the 22.50 billed.
    travel_clock.travel_to(datetime(2026, 11, 1, 6, tzinfo=UTC))
    bill(c, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", created=1)
    rows = c.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
    [final_row] = [r for r in rows if r["type"] == "subscription"]
    final = c.ok("GET", f"/invoices/{final_row['id']}")
    assert (final["periodStart"], final["periodEnd"]) == (
        "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z",
    )  # fmt: skip
    by_type = {(ln["type"], ln["description"].split(" (")[0]): ln for ln in final["lines"]}
    usage = by_type[("USAGE_FEE", "Calls")]
    assert (usage["quantity"], usage["amount"], usage["discountAmount"]) == ("48", "24.00", "22.50")
    credit = by_type[("DISCOUNT", "Progressive billing credit")]
    assert credit["amount"] == "-22.50"
    assert first["number"] in credit["description"] and second["number"] in credit["description"]
    # 5.00 + 24.00 − 22.50 = 6.50, VAT 1.30.
    assert _money(final) == ("29.00", "22.50", "1.30", "7.80", "7.80")
    # Across the three invoices: every call billed once, VAT on all of it.
    billed = sum(
        Decimal(i["subtotal"]) - Decimal(i["discountTotal"]) for i in (first, second, final)
    )
    assert billed == Decimal("5.00") + Decimal("24.00")
    assert sum(Decimal(i["taxTotal"]) for i in (first, second, final)) == Decimal("5.80")

    # A late event for October after its invoice exists: no progressive invoice for it
    # (it is billed as a prior-period line on November's invoice, BILLING.md).
    send(c, _calls(1, 48), stored=49)
    time.sleep(2)
    assert len(_progressive(c, 3, timeout=2)) == 2

    c.ok("POST", f"/invoices/{final['id']}/finalize")
    messages = _billing_events(stack, c.tenant_id, expect=5)
    kinds = sorted((m["type"], m["data"]["id"]) for m in messages)
    assert kinds == sorted(
        [
            ("invoice.created", first["id"]),
            ("invoice.finalized", first["id"]),
            ("invoice.created", second["id"]),
            ("invoice.finalized", second["id"]),
            ("invoice.finalized", final["id"]),
        ]
    )
    assert len({m["id"] for m in messages}) == len(messages)
    finalized = {m["data"]["id"]: m["data"] for m in messages if m["type"] == "invoice.finalized"}
    assert finalized[first["id"]]["type"] == "progressive_billing"
    assert finalized[first["id"]]["total"] == "15.00"
    assert finalized[final["id"]]["amountDue"] == "7.80"


def test_an_override_sets_thresholds_and_a_voided_progressive_invoice_is_not_deducted(
    stack: Any, travel_clock: Any
) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("progressive-override")
    bad = c.post(
        "/plans",
        json={
            "code": "bad",
            "name": "Bad",
            "currency": "EUR",
            "interval": "monthly",
            "usageThresholds": [{"amount": "-1"}],
        },
    )
    assert bad.status_code == 422, bad.text
    sub = _setup(c, thresholds=None, overrides={"usageThresholds": [{"amount": "2"}]})
    assert c.ok("GET", f"/subscriptions/{sub}")["overrides"] == {
        "usageThresholds": [{"amount": "2", "recurring": False}]
    }
    wrong = c.post(
        "/subscriptions",
        json={
            "customerId": "acme",
            "planCode": "metered",
            "startDate": "2026-10-01",
            "overrides": {"usageThresholds": [{"amount": "zero"}]},
        },
    )
    assert wrong.status_code == 422, wrong.text

    send(c, _calls(5))  # 2.50 EUR ≥ 2
    [progressive] = _progressive(c, 1)
    assert _money(progressive) == ("2.50", "0.00", "0.50", "3.00", "3.00")
    c.ok("POST", f"/invoices/{progressive['id']}/void")

    travel_clock.travel_to(datetime(2026, 11, 1, 6, tzinfo=UTC))
    bill(c, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", created=1)
    rows = c.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
    [final] = [c.ok("GET", f"/invoices/{r['id']}") for r in rows if r["type"] == "subscription"]
    # The voided invoice billed nothing: the period-end invoice bills all of it.
    assert not [ln for ln in final["lines"] if ln["type"] == "DISCOUNT"]
    assert _money(final) == ("7.50", "0.00", "1.50", "9.00", "9.00")


def test_rolled_over_free_units_count_before_a_threshold_bills(
    stack: Any, travel_clock: Any
) -> None:
    """September leaves 6 of its 10 included calls unused; October has 16 free. The
    progressive invoice bills what the period-end invoice will: 30 − 16 = 14 calls."""
    travel_clock.travel_to(datetime(2026, 9, 20, 12, tzinfo=UTC))
    c = stack.tenant("progressive-rollover")
    metric(c, "calls", "count")
    rolling = per_unit("calls", "0.5", includedQuantity="10", rollover=True)
    plan(c, "rolling", [rolling], currency="EUR", usageThresholds=[{"amount": "5"}])
    customer(c, "acme", "rolling", "2026-09-01", currency="EUR")
    september = [
        {"id": f"s{i}", "customerId": "acme", "metric": "calls",
         "timestamp": "2026-09-10T08:00:00Z"}
        for i in range(4)
    ]  # fmt: skip
    send(c, september)
    travel_clock.travel_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
    bill(c, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", created=1)
    travel_clock.travel_to(NOW)
    send(c, _calls(30), stored=34)  # 30 calls, 16 free: 7.00 EUR ≥ 5
    [progressive] = _progressive(c, 1)
    [line] = progressive["lines"]
    assert (line["quantity"], line["amount"]) == ("14", "7.00")
    travel_clock.travel_to(datetime(2026, 11, 1, 6, tzinfo=UTC))
    bill(c, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", created=1)
    rows = c.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
    october = [
        c.ok("GET", f"/invoices/{r['id']}")
        for r in rows
        if r["type"] == "subscription" and r["periodStart"] == "2026-10-01T00:00:00Z"
    ]
    [final] = october
    assert _money(final) == ("7.00", "7.00", "0.00", "0.00", "0.00")
