"""Hard quotas end to end (issue 7; API.md "Real-time usage, quotas …"): GET …/quota,
cap and blocked in the usage read-out, and exactly one quota-exceeded message per
crossing on the real broker, however often the events are resent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.scenarios import send
from tests.helpers.topics import tenant_messages

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

NOW = datetime(2026, 10, 20, 12, tzinfo=UTC)


def _catalog(c: Any) -> None:
    c.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "count"})
    c.ok("POST", "/metrics", json={"code": "gb", "name": "GB", "aggregation": "sum"})
    c.ok(
        "POST",
        "/plans",
        json={
            "code": "capped",
            "name": "Capped",
            "currency": "USD",
            "interval": "monthly",
            "charges": [
                {
                    "metric": "calls",
                    "model": "per_unit",
                    "properties": {"unitAmount": "0.5"},
                    "hardCap": "10",
                },
                {"metric": "gb", "model": "per_unit", "properties": {"unitAmount": "1"}},
            ],
        },
    )
    for name in ("heavy", "light"):
        c.ok("POST", "/customers", json={"externalId": name, "name": name, "currency": "USD"})
        c.ok(
            "POST",
            "/subscriptions",
            json={"customerId": name, "planCode": "capped", "startDate": "2026-10-01"},
        )


def _calls(customer: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{customer}-{i}",
            "customerId": customer,
            "metric": "calls",
            "timestamp": f"2026-10-{1 + i % 19:02d}T08:00:00Z",
        }
        for i in range(start, start + n)
    ]


def _quota_messages(stack: Any, tenant: str, expect: int, wait: float = 30) -> list[dict]:
    runtime = stack.runtime
    return tenant_messages(runtime.bootstrap, runtime.settings.quota_topic, tenant, expect, wait)


def _domain_events(stack: Any, tenant: str, expect: int, wait: float = 30) -> list[dict]:
    topic = stack.runtime.settings.stream_config.billing_events_topic
    return tenant_messages(stack.runtime.bootstrap, topic, tenant, expect, wait)


def test_a_cap_is_checked_shown_and_announced_once(stack: Any, travel_clock: Any) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("quotas")
    _catalog(c)
    send(c, _calls("heavy", 12) + _calls("light", 4))

    heavy = c.ok("GET", "/customers/heavy/quota/calls")
    assert heavy == {
        "customerId": "heavy",
        "metric": "calls",
        "periodStart": "2026-10-01T00:00:00Z",
        "periodEnd": "2026-11-01T00:00:00Z",
        "used": "12",
        "cap": "10",
        "remaining": "0",
        "blocked": True,
    }
    light = c.ok("GET", "/customers/light/quota/calls")
    assert (light["used"], light["remaining"], light["blocked"]) == ("4", "6", False)
    # A metric without a cap: used only.
    assert c.ok("GET", "/customers/light/quota/gb") | {"used": "x"} == {
        "customerId": "light",
        "metric": "gb",
        "periodStart": "2026-10-01T00:00:00Z",
        "periodEnd": "2026-11-01T00:00:00Z",
        "used": "x",
        "cap": None,
        "remaining": None,
        "blocked": False,
    }

    usage = c.ok("GET", "/customers/heavy/usage")
    calls = next(m for m in usage["metrics"] if m["metric"] == "calls")
    # Every event counts; the amount prices the cap only (10 × 0.50).
    assert calls == {
        "metric": "calls",
        "group": {},
        "quantity": "12",
        "amount": "5.00",
        "cap": "10",
        "blocked": True,
    }
    gb = [m for m in usage["metrics"] if m["metric"] == "gb"]
    assert all("cap" not in m and "blocked" not in m for m in gb)
    assert not c.ok("GET", "/customers/light/usage")["metrics"][0]["blocked"]

    [message] = _quota_messages(stack, c.tenant_id, expect=1)
    assert {k: v for k, v in message.items() if k not in ("id", "at", "subscriptionId")} == {
        "tenantId": c.tenant_id,
        "customerId": "heavy",
        "metric": "calls",
        "cap": "10",
        "used": "12",
        "periodStart": "2026-10-01T00:00:00Z",
    }
    # Resent events (duplicates) and more usage: still one crossing for the period.
    body = c.ok("POST", "/events", json={"events": _calls("heavy", 12) + _calls("heavy", 3, 12)})
    assert body["accepted"] == 15
    c.wait_events(19)
    assert c.ok("GET", "/customers/heavy/quota/calls")["used"] == "15"
    assert len(_quota_messages(stack, c.tenant_id, expect=2, wait=5)) == 1
    # The webhook event of the crossing, once, with the message as its data.
    [event] = [e for e in _domain_events(stack, c.tenant_id, 1) if e["type"] == "quota.exceeded"]
    assert event["data"] == message


def test_quota_errors_are_404s(stack: Any, travel_clock: Any) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("quotas-errors")
    _catalog(c)
    response = c.get("/customers/nobody/quota/calls")
    assert response.status_code == 404, response.text
    response = c.get("/customers/heavy/quota/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "metric_not_found"
