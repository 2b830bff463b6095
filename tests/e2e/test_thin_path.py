"""The thin path end to end: HTTP → Kafka → Faust → ClickHouse → bill run → invoice."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def _catalog(client, unit_amount: str = "0.01") -> None:
    client.ok(
        "POST", "/metrics", json={"code": "api_calls", "name": "API calls", "aggregation": "count"}
    )
    client.ok(
        "POST",
        "/plans",
        json={
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "interval": "monthly",
            "charges": [
                {
                    "metric": "api_calls",
                    "model": "per_unit",
                    "properties": {"unitAmount": unit_amount},
                }
            ],
        },
    )
    client.ok("POST", "/customers", json={"externalId": "acme", "name": "Acme", "currency": "USD"})
    client.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01"},
    )


def _events(n: int, start: int = 0, customer: str = "acme") -> list[dict]:
    return [
        {
            "id": f"evt_{i}",
            "customerId": customer,
            "metric": "api_calls",
            "timestamp": f"2026-10-{1 + i % 28:02d}T12:00:00Z",
        }
        for i in range(start, start + n)
    ]


def test_events_to_invoice_exact(stack):
    client = stack.tenant("thin")
    _catalog(client, unit_amount="0.0015")
    body = client.ok("POST", "/events", json={"events": _events(1234)})
    assert body == {"accepted": 1234, "rejected": []}
    client.wait_events(1234)

    usage = client.ok(
        "GET", "/customers/acme/usage", params={"from": "2026-10-01", "to": "2026-10-31"}
    )
    assert usage["metrics"] == [
        {"metric": "api_calls", "group": {}, "quantity": "1234", "amount": "1.85"}
    ]
    assert usage["amount"] == "1.85"

    run = client.bill("2026-10-01", "2026-10-31")
    assert run["status"] == "completed" and run["total"] == 1 and run["failed"] == 0

    [invoice] = client.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
    full = client.ok("GET", f"/invoices/{invoice['id']}")
    assert full["status"] == "DRAFT"
    assert full["periodStart"] == "2026-10-01T00:00:00Z"
    assert full["periodEnd"] == "2026-11-01T00:00:00Z"
    [line] = full["lines"]
    assert (line["type"], line["metric"], line["quantity"], line["unitAmount"], line["amount"]) == (
        "USAGE_FEE",
        "api_calls",
        "1234",
        "0.0015",
        "1.85",
    )
    # 1234 × 0.0015 = 1.851 → 1.85 (ROUND_HALF_UP at line level)
    assert (full["subtotal"], full["total"], full["amountDue"]) == ("1.85", "1.85", "1.85")


def test_same_event_id_counts_once(stack):
    client = stack.tenant("dupes")
    _catalog(client)
    events = _events(100)
    client.ok("POST", "/events", json={"events": events})
    client.ok("POST", "/events", json={"events": events[:60]})  # resent
    # same id, different content: the first accepted copy wins
    client.ok("POST", "/events", json={"events": [{**events[0], "customerId": "other"}]})
    client.ok("POST", "/events", json={"events": _events(1, start=100)})
    client.wait_events(101)
    assert stack.runtime.usage.event_count(client.tenant_id) == 101
    client.bill("2026-10-01", "2026-10-31")
    [invoice] = client.ok("GET", "/invoices")["data"]
    assert invoice["lines"][0]["quantity"] == "101"
    assert invoice["total"] == "1.01"


def test_bill_run_is_idempotent(stack):
    client = stack.tenant("idem")
    _catalog(client)
    client.ok("POST", "/events", json={"events": _events(7)})
    client.wait_events(7)
    first = client.bill("2026-10-01", "2026-10-31")
    second = client.bill("2026-10-01", "2026-10-31")
    assert first["invoicesCreated"] == 1
    assert second["status"] == "completed" and second["invoicesCreated"] == 0
    assert len(client.ok("GET", "/invoices")["data"]) == 1


def test_malformed_event_rejected_alone(stack):
    client = stack.tenant("malformed")
    _catalog(client)
    events = _events(3)
    events.insert(
        1, {"id": "x", "customerId": "acme", "metric": "api_calls", "timestamp": "2026-10-03"}
    )
    events.append({"customerId": "acme", "metric": "api_calls"})
    events.append({"id": "v", "customerId": "acme", "metric": "api_calls", "value": "lots"})
    body = client.ok("POST", "/events", json={"events": events})
    assert body["accepted"] == 3
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [(1, "x"), (4, None), (5, "v")]
    assert "time zone" in body["rejected"][0]["reason"]
    assert "id is required" in body["rejected"][1]["reason"]
    assert "value" in body["rejected"][2]["reason"]
    client.wait_events(3)


def test_bad_json_is_400_and_wrong_shape_422(stack):
    client = stack.tenant("badjson")
    response = client.post(
        "/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"
    response = client.post("/events", json={"events": "nope"})
    assert response.status_code == 422
    response = client.post("/events", json={"events": [{}] * 10_001})
    assert response.status_code == 422
    assert "10000" in response.json()["error"]["message"]
