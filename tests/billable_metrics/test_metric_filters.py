"""GET /metrics?aggregation=&planCode= through the HTTP API (SQLite and PostgreSQL):
filters alone and together, with pages, the refusals, and tenant isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.helpers.ledger_api import ApiClient

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]


def catalog(api: ApiClient) -> None:
    for code, aggregation in (("calls", "count"), ("gb", "sum"), ("cpu", "sum"), ("seats", "max")):
        api.clock.advance(timedelta(seconds=1))  # newest first: seats, cpu, gb, calls
        api.ok("POST", "/metrics", json={"code": code, "name": code, "aggregation": aggregation})
    charges = [
        {"metric": m, "model": "per_unit", "properties": {"unitAmount": "1"}}
        for m in ("calls", "gb", "gb")  # a metric charged twice is listed once
    ]
    api.ok("POST", "/plans", json={"code": "pro", "name": "Pro", "currency": "USD",
                                   "interval": "monthly", "charges": charges})  # fmt: skip
    api.ok("POST", "/plans", json={"code": "flat", "name": "Flat", "currency": "USD",
                                   "interval": "monthly", "baseFee": "5"})  # fmt: skip


def codes(api: ApiClient, **params: Any) -> list[str]:
    return [m["code"] for m in api.ok("GET", "/metrics", params=params)["data"]]


def test_filters_alone_and_together(api: ApiClient) -> None:
    catalog(api)
    assert codes(api) == ["seats", "cpu", "gb", "calls"]
    assert codes(api, aggregation="sum") == ["cpu", "gb"]
    assert codes(api, aggregation="unique_count") == []
    assert codes(api, planCode="pro") == ["gb", "calls"]
    assert codes(api, planCode="pro", aggregation="sum") == ["gb"]
    assert codes(api, planCode="flat") == []


def test_filtered_pages_keep_the_filter(api: ApiClient) -> None:
    catalog(api)
    first = api.ok("GET", "/metrics", params={"aggregation": "sum", "limit": 1})
    assert [m["code"] for m in first["data"]] == ["cpu"]
    rest = api.ok(
        "GET", "/metrics", params={"aggregation": "sum", "limit": 1, "cursor": first["nextCursor"]}
    )
    assert [m["code"] for m in rest["data"]] == ["gb"]
    assert rest["nextCursor"] is None


def test_an_archived_plan_still_names_its_metrics(api: ApiClient) -> None:
    catalog(api)
    assert api.delete("/plans/pro").status_code == 204
    assert codes(api, planCode="pro") == ["gb", "calls"]


def test_unknown_aggregation_is_422_and_unknown_plan_404(api: ApiClient) -> None:
    catalog(api)
    error = api.error("GET", "/metrics", 422, params={"aggregation": "median"})
    assert "aggregation" in str(error)
    error = api.error("GET", "/metrics", 404, params={"planCode": "nope"})
    assert "nope" in error["message"]


def test_another_tenants_plan_and_metrics_are_not_found(api: ApiClient, other: ApiClient) -> None:
    catalog(api)
    other.ok("POST", "/metrics", json={"code": "mine", "name": "Mine", "aggregation": "sum"})
    other.error("GET", "/metrics", 404, params={"planCode": "pro"})
    assert codes(other, aggregation="sum") == ["mine"]
    assert codes(api, aggregation="sum") == ["cpu", "gb"]
    other.error("GET", "/metrics/gb", 404)
    other.error("PATCH", "/metrics/gb", 404, json={"roundingFunction": "ceil"})
    assert api.ok("GET", "/metrics/gb")["roundingFunction"] is None
