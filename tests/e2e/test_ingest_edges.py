"""POST /events at its edges, through the real API, Kafka, Faust and ClickHouse (issue 7,
found by use): bodies over the limit are a 413 and store nothing; an oversized event is
rejected alone; big envelopes are split to fit Kafka; numbers are stored exactly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from api.routes.health import STALLED_AFTER_SECONDS
from tests.helpers.scenarios import send

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

MONTH = {"from": "2026-10-01", "to": "2026-10-31"}


def _customer(c: Any, aggregation: str = "sum") -> None:
    c.ok("POST", "/metrics", json={"code": "gb", "name": "GB", "aggregation": aggregation})
    c.ok(
        "POST",
        "/plans",
        json={
            "code": "p",
            "name": "P",
            "currency": "USD",
            "interval": "monthly",
            "charges": [{"metric": "gb", "model": "per_unit", "properties": {"unitAmount": "1"}}],
        },
    )
    c.ok("POST", "/customers", json={"externalId": "acme", "name": "Acme", "currency": "USD"})
    c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "p", "startDate": "2026-10-01"},
    )


def _event(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "customerId": "acme",
        "metric": "gb",
        "timestamp": "2026-10-05T10:00:00Z",
        **fields,
    }


def test_a_body_over_the_limit_is_a_413_and_stores_nothing(stack: Any) -> None:
    c = stack.tenant("ingest-413")
    limit = stack.runtime.settings.max_request_bytes
    blob = "x" * 1_200
    events = [_event(i, properties={"blob": blob}) for i in range(limit // 1_000 + 10)]
    body = orjson.dumps({"events": events[:9_000]})
    assert len(body) > limit
    response = c.post("/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"

    # Without a Content-Length (chunked), the body is counted as it arrives.
    def chunks() -> Any:
        for at in range(0, len(body), 65_536):
            yield body[at : at + 65_536]

    response = c.post("/events", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    send(c, [_event(0, value=1)], stored=1)  # the only event of this tenant


def test_an_oversized_event_is_rejected_alone(stack: Any) -> None:
    c = stack.tenant("ingest-big-event")
    _customer(c)
    events = [
        _event(0, value=1),
        _event(1, value=2, properties={"blob": "x" * 70_000}),
        {**_event(2, value=4), "customerId": "c" * 1_000_000},
        _event(3, value=8),
    ]
    body = c.ok("POST", "/events", json={"events": events})
    assert body["accepted"] == 2
    assert [(r["index"], r["id"]) for r in body["rejected"]] == [(1, "e1"), (2, "e2")]
    assert "larger than 65,536 bytes" in body["rejected"][0]["reason"]
    assert body["rejected"][1]["reason"] == "customerId is longer than 256 characters"
    c.wait_events(2)
    usage = c.ok("GET", "/customers/acme/usage", params=MONTH)
    assert usage["metrics"][0]["quantity"] == "9"


def test_an_envelope_over_a_kafka_message_is_split_and_all_stored(stack: Any) -> None:
    # Found by use: 1,000 events with a 2 KB property each answered 500.
    c = stack.tenant("ingest-split")
    _customer(c, "count")
    events = [_event(i, properties={"note": "y" * 2_048}) for i in range(1_000)]
    body = c.ok("POST", "/events", json={"events": events})
    assert body == {"accepted": 1_000, "rejected": []}
    c.wait_events(1_000)
    usage = c.ok("GET", "/customers/acme/usage", params=MONTH)
    assert usage["metrics"][0]["quantity"] == "1000"


def test_numbers_are_stored_and_summed_exactly(stack: Any) -> None:
    c = stack.tenant("ingest-exact")
    _customer(c)
    # Written as JSON numbers, not strings: the parser must not go through a double.
    raw = (
        b'{"events": ['
        b'{"id": "a", "customerId": "acme", "metric": "gb",'
        b' "timestamp": "2026-10-05T10:00:00Z", "value": 10000000000000000},'
        b'{"id": "b", "customerId": "acme", "metric": "gb",'
        b' "timestamp": "2026-10-06T10:00:00Z", "value": 0.000000000001}]}'
    )
    response = c.post("/events", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 202 and response.json()["accepted"] == 2
    c.wait_events(2)
    usage = c.ok("GET", "/customers/acme/usage", params=MONTH)
    assert usage["metrics"][0]["quantity"] == "10000000000000000.000000000001"

    big = stack.tenant("ingest-exact-big")
    _customer(big)
    raw = (
        b'{"events": [{"id": "a", "customerId": "acme", "metric": "gb",'
        b' "timestamp": "2026-10-05T10:00:00Z", "value": 123456789012345678901}]}'
    )
    response = big.post("/events", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 202 and response.json()["accepted"] == 1
    big.wait_events(1)
    usage = big.ok("GET", "/customers/acme/usage", params=MONTH)
    assert usage["metrics"][0]["quantity"] == "123456789012345678901"


def test_bad_json_is_a_400_not_a_500(stack: Any) -> None:
    c = stack.tenant("ingest-bad-json")
    for raw in (b"{", b'{"events": [NaN]}', b"\xff\xfe"):
        response = c.post("/events", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"]["code"] == "bad_json"


def test_readiness_reports_a_worker_stuck_on_one_batch(stack: Any) -> None:
    stats = stack.runtime.stream_stats
    now = stack.runtime.clock.now()
    assert httpx.get(f"{stack.base_url}/readyz").status_code == 200
    try:
        stats.failing(now - timedelta(seconds=STALLED_AFTER_SECONDS + 5), "usage_events insert")
        response = httpx.get(f"{stack.base_url}/readyz")
        assert response.status_code == 503, response.text
        assert response.json()["checks"]["stream"].startswith("stalled for")
    finally:
        stats.failing_since = None
    assert httpx.get(f"{stack.base_url}/readyz").status_code == 200
