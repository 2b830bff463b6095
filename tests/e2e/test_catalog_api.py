"""The catalog part of the HTTP contract (API.md): metrics, plans, customers and
subscriptions — field names, status codes, error shape, pagination, money as strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
API_CALLS = {"code": "api_calls", "name": "API calls", "aggregation": "count"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return dict(body["error"])


def _camel(doc: dict[str, Any]) -> None:
    bad = [key for key in doc if not CAMEL.match(key)]
    assert bad == [], f"not camelCase: {bad}"


def _validation(response: httpx.Response, *needles: str) -> str:
    """A 422 whose message names the offending field or value."""
    error = _error(response, 422, "validation_error")
    text = error["message"] + " " + str(error["details"] or "")
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


def _plan(code: str = "pro", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": code,
        "name": "Pro",
        "currency": "USD",
        "interval": "monthly",
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "0.01"}}
        ],
    }
    return doc | overrides


def _page_through(client: Any, url: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = client.ok("GET", url, params=params)
        assert set(page) == {"data", "nextCursor"}
        assert len(page["data"]) <= limit
        items += page["data"]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            return items, pages
        assert pages < 20, "pagination does not end"


def test_metric_crud(stack: Any) -> None:
    client = stack.tenant("cat-metrics")
    created = client.ok(
        "POST",
        "/metrics",
        json={
            "code": "storage",
            "name": "Storage",
            "aggregation": "sum",
            "field": "gb",
            "filters": {"region": ["eu", "us"]},
            "groupBy": ["region"],
        },
    )
    _camel(created)
    assert {"code", "name", "aggregation", "field", "filters", "groupBy", "id"} <= set(created)
    assert (created["code"], created["aggregation"], created["field"]) == ("storage", "sum", "gb")
    assert created["filters"] == {"region": ["eu", "us"]}
    assert created["groupBy"] == ["region"]

    counted = client.ok("POST", "/metrics", json=API_CALLS)
    assert counted["field"] == "value"  # the default field

    assert client.ok("GET", "/metrics/storage") == created
    patched = client.ok("PATCH", "/metrics/storage", json={"name": "Stored GB"})
    assert patched["name"] == "Stored GB" and patched["aggregation"] == "sum"
    assert client.ok("GET", "/metrics/storage")["name"] == "Stored GB"
    codes = [m["code"] for m in client.ok("GET", "/metrics")["data"]]
    assert codes == ["api_calls", "storage"]  # newest first

    response = client.delete("/metrics/storage")
    assert response.status_code == 204 and response.content == b""
    _error(client.get("/metrics/storage"), 404, "not_found")
    _error(client.delete("/metrics/storage"), 404, "not_found")
    _error(client.patch("/metrics/storage", json={"name": "x"}), 404, "not_found")


def test_deleting_a_metric_a_plan_uses_is_a_conflict(stack: Any) -> None:
    client = stack.tenant("cat-delete")
    client.ok("POST", "/metrics", json=API_CALLS)
    client.ok("POST", "/plans", json=_plan())
    error = _error(client.delete("/metrics/api_calls"), 409, "conflict")
    assert "pro" in error["message"]
    assert client.ok("GET", "/metrics/api_calls")["code"] == "api_calls"


def test_duplicate_codes_are_409_duplicate(stack: Any) -> None:
    client = stack.tenant("cat-dup")
    client.ok("POST", "/metrics", json=API_CALLS)
    _error(client.post("/metrics", json=API_CALLS | {"name": "again"}), 409, "duplicate")
    client.ok("POST", "/plans", json=_plan())
    _error(client.post("/plans", json=_plan(name="again")), 409, "duplicate")
    customer = {"externalId": "acme", "name": "Acme", "currency": "USD"}
    client.ok("POST", "/customers", json=customer)
    _error(client.post("/customers", json=customer), 409, "duplicate")
    # The first copies are unchanged, and the transaction went on after the 409s.
    assert client.ok("GET", "/metrics/api_calls")["name"] == "API calls"
    assert client.ok("GET", "/plans/pro")["name"] == "Pro"
    assert len(client.ok("GET", "/customers")["data"]) == 1


def test_validation_errors_name_the_field(stack: Any) -> None:
    client = stack.tenant("cat-422")
    client.ok("POST", "/metrics", json=API_CALLS)
    client.ok("POST", "/customers", json={"externalId": "acme", "name": "A", "currency": "USD"})

    _validation(client.post("/metrics", json=API_CALLS | {"aggregation": "median"}), "aggregation")
    _validation(client.post("/metrics", json={"name": "no code", "aggregation": "count"}), "code")

    unknown_model = _plan(charges=[{"metric": "api_calls", "model": "magic", "properties": {}}])
    _validation(client.post("/plans", json=unknown_model), "charges[0].model")

    tiers = [
        {"upTo": "100", "unitAmount": "0.1"},
        {"upTo": "50", "unitAmount": "0.05"},
        {"upTo": None, "unitAmount": "0.01"},
    ]
    graduated = _plan(
        charges=[{"metric": "api_calls", "model": "graduated", "properties": {"tiers": tiers}}]
    )
    _validation(client.post("/plans", json=graduated), "charges[0].properties", "tiers[1].upTo")

    _validation(client.post("/plans", json=_plan(currency="usd1")), "currency")
    _validation(client.post("/plans", json=_plan(currency="XYZ")), "currency", "XYZ")
    _validation(client.post("/plans", json=_plan(interval="daily")), "interval")
    _validation(client.post("/plans", json=_plan(baseFee="ten")), "baseFee")

    unknown_metric = _plan(
        charges=[{"metric": "nope", "model": "per_unit", "properties": {"unitAmount": "1"}}]
    )
    _validation(client.post("/plans", json=unknown_metric), "charges[0].metric", "nope")

    _validation(
        client.post(
            "/subscriptions",
            json={"customerId": "acme", "planCode": "missing", "startDate": "2026-10-01"},
        ),
        "missing",
    )
    _validation(
        client.post("/customers", json={"externalId": "x", "name": "X", "currency": "usd1"}),
        "currency",
    )
    # Nothing was created by the refused requests.
    assert client.ok("GET", "/plans")["data"] == []
    assert [m["code"] for m in client.ok("GET", "/metrics")["data"]] == ["api_calls"]


def test_bad_json_is_400(stack: Any) -> None:
    client = stack.tenant("cat-400")
    response = client.post(
        "/metrics", content=b'{"code": "x",', headers={"Content-Type": "application/json"}
    )
    _error(response, 400, "bad_json")


def test_pagination_newest_first_without_duplicates(stack: Any) -> None:
    client = stack.tenant("cat-pages")
    codes = [f"m{i}" for i in range(5)]
    for code in codes:
        client.ok("POST", "/metrics", json={"code": code, "name": code, "aggregation": "count"})
    for i in range(3):
        client.ok(
            "POST", "/customers", json={"externalId": f"c{i}", "name": "C", "currency": "USD"}
        )

    first = client.ok("GET", "/metrics", params={"limit": 2})
    assert [m["code"] for m in first["data"]] == ["m4", "m3"]
    assert isinstance(first["nextCursor"], str) and first["nextCursor"]
    second = client.ok("GET", "/metrics", params={"limit": 2, "cursor": first["nextCursor"]})
    assert [m["code"] for m in second["data"]] == ["m2", "m1"]

    metrics, pages = _page_through(client, "/metrics", 2)
    assert [m["code"] for m in metrics] == list(reversed(codes))
    assert pages == 3
    customers, _ = _page_through(client, "/customers", 2)
    assert [c["externalId"] for c in customers] == ["c2", "c1", "c0"]
    exact, pages = _page_through(client, "/customers", 3)
    assert len(exact) == 3 and pages == 1  # a full last page has no cursor

    _validation(client.get("/metrics", params={"cursor": "not-a-cursor"}), "cursor")
    _error(client.get("/metrics", params={"limit": 0}), 422, "validation_error")


def test_money_as_numbers_is_accepted_and_returned_as_strings(stack: Any) -> None:
    client = stack.tenant("cat-money")
    client.ok("POST", "/metrics", json=API_CALLS)
    tiers = [
        {"upTo": 1000, "unitAmount": 0, "flatAmount": 0},
        {"upTo": None, "unitAmount": 0.002},
    ]
    plan = client.ok(
        "POST",
        "/plans",
        json=_plan(
            baseFee=12.5,
            minimumCommitment=100,
            charges=[{"metric": "api_calls", "model": "graduated", "properties": {"tiers": tiers}}],
        ),
    )
    _camel(plan)
    assert {"code", "name", "currency", "interval", "baseFee", "payInAdvance", "trialDays"} <= set(
        plan
    )
    assert {"minimumCommitment", "maximumSpend", "charges", "fixedCharges"} <= set(plan)
    for field, value in (("baseFee", "12.5"), ("minimumCommitment", "100")):
        assert isinstance(plan[field], str), (field, plan[field])
        assert Decimal(plan[field]) == Decimal(value)
    [charge] = plan["charges"]
    _camel(charge)
    stored = charge["properties"]["tiers"]
    assert all(isinstance(t["unitAmount"], str) for t in stored)
    assert Decimal(stored[1]["unitAmount"]) == Decimal("0.002")
    assert stored[0]["upTo"] == "1000" and stored[1]["upTo"] is None
    assert client.ok("GET", "/plans/pro") == plan


def test_customer_fields_and_patch(stack: Any) -> None:
    client = stack.tenant("cat-customers")
    created = client.ok(
        "POST",
        "/customers",
        json={
            "externalId": "acme",
            "name": "Acme",
            "email": "billing@acme.test",
            "currency": "eur",
            "country": "de",
            "taxExempt": True,
            "invoiceGraceDays": 3,
        },
    )
    _camel(created)
    assert created["externalId"] == "acme" and created["currency"] == "EUR"
    assert (created["country"], created["taxExempt"], created["invoiceGraceDays"]) == (
        "DE",
        True,
        3,
    )
    patched = client.ok("PATCH", "/customers/acme", json={"name": "Acme GmbH"})
    assert patched["name"] == "Acme GmbH" and patched["email"] == "billing@acme.test"
    assert client.ok("GET", "/customers/acme") == patched


def test_subscription_create_get_terminate(stack: Any, travel_clock: Any) -> None:
    client = stack.tenant("cat-subs")
    client.ok("POST", "/metrics", json=API_CALLS)
    client.ok("POST", "/plans", json=_plan())
    client.ok("POST", "/customers", json={"externalId": "acme", "name": "A", "currency": "USD"})
    client.ok("POST", "/customers", json={"externalId": "euro", "name": "E", "currency": "EUR"})

    created = client.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01"},
    )
    _camel(created)
    assert {"id", "customerId", "planCode", "startDate", "endDate", "status"} <= set(created)
    assert (created["customerId"], created["planCode"], created["status"]) == (
        "acme",
        "pro",
        "active",
    )
    assert created["startDate"] == "2026-10-01T00:00:00Z" and created["endDate"] is None
    assert client.ok("GET", f"/subscriptions/{created['id']}") == created

    travel_clock.travel_to(datetime(2026, 10, 20, tzinfo=UTC))
    terminated = client.ok(
        "POST", f"/subscriptions/{created['id']}/terminate", json={"at": "2026-10-15T00:00:00Z"}
    )
    assert terminated["status"] == "terminated"
    assert terminated["endDate"] == "2026-10-15T00:00:00Z"
    assert terminated["terminatedAt"] is not None
    _error(client.post(f"/subscriptions/{created['id']}/terminate"), 409, "conflict")
    assert client.ok("GET", f"/subscriptions/{created['id']}")["status"] == "terminated"

    _error(client.get("/subscriptions/sub_missing"), 404, "not_found")
    _error(client.post("/subscriptions/sub_missing/terminate"), 404, "not_found")
    _validation(
        client.post(
            "/subscriptions",
            json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01",
                  "endDate": "2026-09-01"},
        ),
        "endDate",
    )  # fmt: skip
    _validation(
        client.post(
            "/subscriptions",
            json={"customerId": "euro", "planCode": "pro", "startDate": "2026-10-01"},
        ),
        "USD",
        "EUR",
    )
