"""Decoding a batch of Kafka messages into usage events (`process_batch`), without a broker.

Pure: the agent's I/O is tested in tests/streams/test_ingest_agent.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from streams.app import process_batch
from streams.schema import UsageEvent, encode_batch


def event_messages(tenant: str, n: int, value: str = "2") -> list[bytes]:
    """`n` single-event messages of `tenant`, ids e0…, as producers put them on the topic."""
    return [
        orjson.dumps(
            {
                "tenantId": tenant,
                "id": f"e{i}",
                "customerId": f"c{i % 3}",
                "metric": "gb",
                "timestamp": "2026-10-05T10:00:00Z",
                "value": value,
            }
        )
        for i in range(n)
    ]


def test_process_batch_dedupes_within_batch_and_keeps_order():
    now = datetime(2026, 10, 1, tzinfo=UTC)
    messages = event_messages("t", 3) + event_messages("t", 2) + [b"[]"]
    result = process_batch(messages, now)
    assert [e.event_id for e in result.events] == ["e0", "e1", "e2"]
    assert [r.reason for _, r, _ in result.rejected] == ["event must be a JSON object"]


def test_batch_envelope_carries_many_events_and_rejects_alone():
    now = datetime(2026, 10, 1, tzinfo=UTC)
    good = [
        UsageEvent("t", f"b{i}", "c1", "gb", now, Decimal(i), {"region": "eu"}) for i in range(3)
    ]
    envelope = encode_batch("t", good)
    broken = orjson.dumps(
        {
            "tenantId": "t",
            "events": [
                {"id": "ok", "customerId": "c", "metric": "m"},
                {"id": "bad", "metric": "m"},
            ],
        }
    )
    no_tenant = orjson.dumps({"events": [{"id": "x", "customerId": "c", "metric": "m"}]})
    result = process_batch([envelope, broken, no_tenant], now)
    assert [(e.tenant_id, e.event_id, e.value) for e in result.events] == [
        ("t", "b0", Decimal(0)),
        ("t", "b1", Decimal(1)),
        ("t", "b2", Decimal(2)),
        ("t", "ok", None),
    ]
    assert result.events[0].properties == {"region": "eu"}
    assert [r.reason for _, r, _ in result.rejected] == [
        "customerId is required and must be a non-empty string",
        "tenantId is required on a batch of events",
    ]
