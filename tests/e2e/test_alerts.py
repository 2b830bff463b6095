"""Usage alerts end to end (issue 7; API.md "… alerts …"): the CRUD, and thresholds
reached by events on the real broker triggering once each, recurring ones at every
multiple, recorded in GET /alerts/{id}/triggers and produced to usage-alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.scenarios import bill, customer, metric, per_unit, plan, send
from tests.helpers.topics import tenant_messages

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

NOW = datetime(2026, 10, 20, 12, tzinfo=UTC)


def _setup(c: Any, start: str = "2026-10-01", **plan_extra: Any) -> str:
    """calls (count) at 0.50 each on a monthly USD plan; acme subscribed from `start`."""
    metric(c, "calls", "count")
    plan(c, "metered", [per_unit("calls", "0.5")], **plan_extra)
    return str(customer(c, "acme", "metered", start)["id"])


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


def _wait_triggers(c: Any, alert_id: str, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        data = c.ok("GET", f"/alerts/{alert_id}/triggers")["data"]
        if len(data) >= count or time.monotonic() > deadline:
            return list(data)
        time.sleep(0.2)


def _alert_messages(stack: Any, tenant: str, expect: int, wait: float = 30) -> list[dict]:
    runtime = stack.runtime
    return tenant_messages(runtime.bootstrap, runtime.settings.alerts_topic, tenant, expect, wait)


def test_alert_crud_and_validation(stack: Any, travel_clock: Any) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("alerts-crud")
    sub = _setup(c)
    body = {
        "kind": "usage_units",
        "subscriptionId": sub,
        "metric": "calls",
        "code": "calls-alert",
        "name": "Calls",
        "thresholds": [{"value": 5}, {"value": "10", "code": "ten", "recurring": True}],
    }
    response = c.post("/alerts", json=body)
    assert response.status_code == 201, response.text
    alert = response.json()
    assert {k: alert[k] for k in ("kind", "subscriptionId", "walletId", "metric", "code")} == {
        "kind": "usage_units",
        "subscriptionId": sub,
        "walletId": None,
        "metric": "calls",
        "code": "calls-alert",
    }
    assert alert["thresholds"] == [
        {"value": "5", "code": None, "recurring": False},
        {"value": "10", "code": "ten", "recurring": True},
    ]
    assert c.ok("GET", f"/alerts/{alert['id']}") == alert
    assert [a["id"] for a in c.ok("GET", "/alerts")["data"]] == [alert["id"]]
    patched = c.ok("PATCH", f"/alerts/{alert['id']}", json={"name": "Renamed"})
    assert patched["name"] == "Renamed" and patched["thresholds"] == alert["thresholds"]
    assert c.post("/alerts", json=body).status_code == 409  # duplicate code

    bad = [
        ({**body, "kind": "nope", "code": None}, 422),
        ({**body, "metric": None, "code": None}, 422),
        ({**body, "code": None, "thresholds": []}, 422),
        ({**body, "code": None, "thresholds": [{"value": 1, "recurring": True}] * 2}, 422),
        ({**body, "code": None, "thresholds": [{"value": "-1"}]}, 422),
        ({**body, "code": None, "subscriptionId": "sub_nope"}, 404),
        ({**body, "code": None, "metric": "nope"}, 404),
        ({**body, "code": None, "extra": 1}, 422),
    ]
    for payload, status in bad:
        response = c.post("/alerts", json=payload)
        assert response.status_code == status, (payload, response.text)
    assert c.delete(f"/alerts/{alert['id']}").status_code == 204
    assert c.get(f"/alerts/{alert['id']}").status_code == 404
    assert c.get(f"/alerts/{alert['id']}/triggers").status_code == 404


def test_thresholds_trigger_once_and_recurring_at_every_multiple(
    stack: Any, travel_clock: Any
) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("alerts-fire")
    sub = _setup(c)
    units = c.ok(
        "POST",
        "/alerts",
        json={
            "kind": "usage_units",
            "subscriptionId": sub,
            "metric": "calls",
            "thresholds": [{"value": 5}, {"value": 10, "recurring": True}],
        },
    )
    amount = c.ok(
        "POST",
        "/alerts",
        json={"kind": "usage_amount", "subscriptionId": sub, "thresholds": [{"value": "12.50"}]},
    )
    send(c, _calls(25))  # 25 calls, 12.50 USD
    fired = _wait_triggers(c, units["id"], 3)
    assert sorted(t["threshold"] for t in fired) == ["10", "20", "5"]
    assert all(t["periodStart"] == "2026-10-01T00:00:00Z" for t in fired)
    assert {t["value"] for t in fired} == {"25"}
    [money] = _wait_triggers(c, amount["id"], 1)
    assert (money["threshold"], money["value"]) == ("12.5", "12.5")

    # The same events again, then 6 more: only 30 is new.
    c.ok("POST", "/events", json={"events": _calls(25) + _calls(6, 25)})
    c.wait_events(31)
    fired = _wait_triggers(c, units["id"], 4)
    assert sorted(int(t["threshold"]) for t in fired) == [5, 10, 20, 30]
    messages = _alert_messages(stack, c.tenant_id, expect=5)
    assert len(messages) == 5
    assert {(m["alertId"], m["threshold"]) for m in messages} == {
        (units["id"], "5"),
        (units["id"], "10"),
        (units["id"], "20"),
        (units["id"], "30"),
        (amount["id"], "12.5"),
    }
    assert all(m["subscriptionId"] == sub and m["periodStart"] == "2026-10-01T00:00:00Z"
               for m in messages)  # fmt: skip
    topic = stack.runtime.settings.stream_config.billing_events_topic
    events = tenant_messages(stack.runtime.bootstrap, topic, c.tenant_id, expect=5)
    assert sorted(e["data"]["id"] for e in events if e["type"] == "alert.triggered") == sorted(
        m["id"] for m in messages
    )


def test_a_wallet_balance_alert_triggers_at_or_below_its_threshold(
    stack: Any, travel_clock: Any
) -> None:
    travel_clock.travel_to(NOW)
    c = stack.tenant("alerts-wallet")
    _setup(c)
    wallet = c.ok("POST", "/wallets", json={"customerId": "acme", "credits": "8"})
    alert = c.ok(
        "POST",
        "/alerts",
        json={
            "kind": "wallet_balance",
            "walletId": wallet["id"],
            "thresholds": [{"value": "10"}, {"value": "5"}],
        },
    )
    assert (
        c.post("/alerts", json={"kind": "wallet_balance", "thresholds": [{"value": 1}]}).status_code
        == 422
    )
    send(c, _calls(2))
    [trigger] = _wait_triggers(c, alert["id"], 1)
    assert (trigger["threshold"], trigger["value"]) == ("10", "8")
    assert len(_wait_triggers(c, alert["id"], 2, timeout=3)) == 1  # 8 > 5: not reached


def test_a_lifetime_amount_counts_what_earlier_periods_billed(
    stack: Any, travel_clock: Any
) -> None:
    """lifetime_usage_amount = the usage fees of the subscription's earlier invoices
    (not voided) + the current period's usage amount; usage_amount is this period's."""
    travel_clock.travel_to(datetime(2026, 9, 20, 12, tzinfo=UTC))
    c = stack.tenant("alerts-lifetime")
    sub = _setup(c, start="2026-09-01", baseFee="7")
    september = [
        {"id": f"sep-{i}", "customerId": "acme", "metric": "calls",
         "timestamp": f"2026-09-{1 + i % 19:02d}T08:00:00Z"}
        for i in range(20)
    ]  # fmt: skip
    send(c, september)  # 10.00 USD of usage
    travel_clock.travel_to(datetime(2026, 10, 2, 12, tzinfo=UTC))
    bill(c, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", created=1)
    lifetime = c.ok(
        "POST",
        "/alerts",
        json={"kind": "lifetime_usage_amount", "subscriptionId": sub,
              "thresholds": [{"value": "15"}]},
    )  # fmt: skip
    period = c.ok(
        "POST",
        "/alerts",
        json={"kind": "usage_amount", "subscriptionId": sub, "thresholds": [{"value": "15"}]},
    )
    travel_clock.travel_to(datetime(2026, 10, 20, 12, tzinfo=UTC))
    send(c, _calls(12), stored=32)  # October: 6.00 USD; lifetime 16.00 (the base fee is no usage)
    [trigger] = _wait_triggers(c, lifetime["id"], 1)
    assert (trigger["threshold"], trigger["value"]) == ("15", "16")
    assert trigger["periodStart"] == "2026-10-01T00:00:00Z"
    assert _wait_triggers(c, period["id"], 1, timeout=3) == []  # 6.00 < 15


def test_a_bill_run_that_draws_a_wallet_down_triggers_its_balance_alert(
    stack: Any, travel_clock: Any
) -> None:
    """The debit of a bill run (no event arrives after it) judges the wallet's alerts in
    its own transaction; the relay produces the trigger to usage-alerts."""
    travel_clock.travel_to(NOW)
    c = stack.tenant("alerts-wallet-billrun")
    _setup(c)
    wallet = c.ok("POST", "/wallets", json={"customerId": "acme", "credits": "20"})
    alert = c.ok(
        "POST",
        "/alerts",
        json={"kind": "wallet_balance", "walletId": wallet["id"], "thresholds": [{"value": "15"}]},
    )
    send(c, _calls(12))  # 6.00 USD of usage; the balance is still 20
    assert _wait_triggers(c, alert["id"], 1, timeout=3) == []
    travel_clock.travel_to(datetime(2026, 11, 1, 6, tzinfo=UTC))
    bill(c, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", created=1)
    assert c.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "14.00"
    [trigger] = _wait_triggers(c, alert["id"], 1)
    assert (trigger["threshold"], trigger["value"]) == ("15", "14")
    assert trigger["periodStart"] == "2026-11-01T00:00:00Z"
    [message] = _alert_messages(stack, c.tenant_id, expect=1)
    assert (message["walletId"], message["threshold"], message["value"]) == (
        wallet["id"], "15", "14",
    )  # fmt: skip
