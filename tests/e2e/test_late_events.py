"""Late events: stored, and billed as a separate prior-period line on the next invoice."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

GRADUATED = {
    "tiers": [
        {"upTo": "100", "unitAmount": "1", "flatAmount": "0"},
        {"upTo": None, "unitAmount": "0.5"},
    ]
}


def _events(prefix: str, n: int, day: str) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "customerId": "acme",
            "metric": "calls",
            "timestamp": f"{day}T10:00:00Z",
        }
        for i in range(n)
    ]


def test_late_usage_billed_once_on_next_invoice(stack):
    c = stack.tenant("late")
    c.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "count"})
    c.ok(
        "POST",
        "/plans",
        json={
            "code": "p",
            "name": "P",
            "currency": "USD",
            "interval": "monthly",
            "charges": [{"metric": "calls", "model": "graduated", "properties": GRADUATED}],
        },
    )
    c.ok("POST", "/customers", json={"externalId": "acme", "name": "Acme", "currency": "USD"})
    c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "p", "startDate": "2026-09-01"},
    )

    c.ok("POST", "/events", json={"events": _events("sep", 90, "2026-09-10")})
    c.wait_events(90)
    c.bill("2026-09-01", "2026-09-30")
    [september] = c.ok("GET", "/invoices")["data"]
    assert september["total"] == "90.00"
    c.ok("POST", f"/invoices/{september['id']}/finalize")

    # 30 September events arrive late, after September's invoice was finalized,
    # and 5 October events on time.
    c.ok(
        "POST",
        "/events",
        json={"events": _events("late", 30, "2026-09-20") + _events("oct", 5, "2026-10-02")},
    )
    c.wait_events(125)
    c.bill("2026-10-01", "2026-10-31")
    october = next(
        i for i in c.ok("GET", "/invoices")["data"] if i["periodStart"].startswith("2026-10")
    )
    lines = [
        (ln["type"], ln["quantity"], ln["amount"], ln["periodStart"][:10])
        for ln in october["lines"]
    ]
    # October: 5 calls at 1.00. Late September: 90 → 120 calls crosses the tier at 100:
    # price(120) − price(90) = (100 + 10) − 90 = 20.00 for 30 calls.
    assert lines == [
        ("USAGE_FEE", "5", "5.00", "2026-10-01"),
        ("USAGE_FEE", "30", "20.00", "2026-09-01"),
    ]
    assert "late usage" in october["lines"][1]["description"]
    assert october["total"] == "25.00"
    # The finalized September invoice is untouched.
    assert c.ok("GET", f"/invoices/{september['id']}")["total"] == "90.00"

    # More late September events; refreshing the October draft bills all 40 late calls once.
    c.ok("POST", "/events", json={"events": _events("later", 10, "2026-09-25")})
    c.wait_events(135)
    refreshed = c.ok("POST", f"/invoices/{october['id']}/refresh")
    assert [(ln["quantity"], ln["amount"]) for ln in refreshed["lines"]] == [
        ("5", "5.00"),
        ("40", "25.00"),
    ]
    assert refreshed["total"] == "30.00"

    # November's invoice does not bill the same late usage again.
    c.bill("2026-11-01", "2026-11-30")
    november = next(
        i for i in c.ok("GET", "/invoices")["data"] if i["periodStart"].startswith("2026-11")
    )
    assert [ln["periodStart"][:10] for ln in november["lines"]] == ["2026-11-01"]
    assert november["total"] == "0.00"
