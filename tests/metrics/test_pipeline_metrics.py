"""The live pipeline moves its series: POST /events (accepted, rejected at the door),
the worker (stored, batch write latency, quota evaluations) and its consumer lag per
partition on the real broker; no tenant's id in any label."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.helpers.stack import Stack
from tests.metrics.scrape import Series, parse, value

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def _scrape(stack: Stack) -> tuple[str, Series]:
    response = httpx.get(f"{stack.base_url}/metrics", timeout=30)
    assert response.status_code == 200
    return response.text, parse(response.text)


def _until(stack: Stack, check: Any, limit: float = 60) -> Series:
    deadline = time.monotonic() + limit
    while True:
        _, series = _scrape(stack)
        if check(series):
            return series
        assert time.monotonic() < deadline, "the series did not move in time"
        time.sleep(0.1)


def test_ingest_moves_accepted_rejected_stored_latency_quota_and_lag(stack: Stack) -> None:
    c = stack.tenant("metrics")
    c.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "count"})
    c.ok("POST", "/plans", json={
        "code": "capped", "name": "Capped", "currency": "USD", "interval": "monthly",
        "charges": [{"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "1"},
                     "hardCap": "2"}],
    })  # fmt: skip
    c.ok("POST", "/customers", json={"externalId": "acme", "name": "A", "currency": "USD"})
    c.ok("POST", "/subscriptions", json={"customerId": "acme", "planCode": "capped",
                                         "startDate": "2026-01-01"})  # fmt: skip
    _, before = _scrape(stack)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = [
        {"id": f"e{i}", "customerId": "acme", "metric": "calls", "timestamp": now} for i in range(3)
    ]
    answer = c.ok("POST", "/events", json={"events": [*events, {"id": "bad", "metric": "calls"}]})
    assert answer["accepted"] == 3 and len(answer["rejected"]) == 1

    def moved(series: Series, name: str, labels: dict[str, str] | None = None) -> float:
        return value(series, name, labels) - value(before, name, labels)

    after = _until(stack, lambda s: moved(s, "meterline_stream_written_total") >= 3)
    assert moved(after, "meterline_http_events_total", {"outcome": "accepted"}) == 3
    assert moved(after, "meterline_http_events_total", {"outcome": "rejected"}) == 1
    assert moved(after, "meterline_stream_written_total") == 3
    assert moved(after, "meterline_stream_rejected_total") == 0
    assert moved(after, "meterline_stream_batch_write_seconds_count") >= 1
    assert moved(after, "meterline_stream_batch_write_seconds_sum") > 0
    quota = _until(
        stack, lambda s: moved(s, "meterline_quota_evaluations_total", {"outcome": "exceeded"}) >= 1
    )
    assert moved(quota, "meterline_quota_evaluations_total", {"outcome": "exceeded"}) == 1

    # every partition the worker holds has its lag, back to 0 once the batch is committed
    partitions = stack.runtime.settings.topic_partitions
    topic = stack.runtime.settings.events_topic

    def lag(series: Series) -> dict[str, float]:
        return {
            dict(labels)["partition"]: v
            for (name, labels), v in series.items()
            if name == "meterline_stream_consumer_lag" and dict(labels)["topic"] == topic
        }

    settled = _until(stack, lambda s: len(lag(s)) == partitions and sum(lag(s).values()) == 0)
    assert sorted(lag(settled)) == sorted(str(p) for p in range(partitions))
    text, _ = _scrape(stack)
    assert c.tenant_id not in text and c.api_key not in text and "acme" not in text
