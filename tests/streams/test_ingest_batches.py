"""Decoding a batch of Kafka messages into usage events (`process_batch`), without a broker.

Pure: the agent's I/O is tested in tests/streams/test_ingest_agent.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.app import TOMBSTONE, message_bytes, process_batch
from streams.schema import (
    MAX_MESSAGE_BYTES,
    Rejection,
    UsageEvent,
    encode_batch,
    encode_event,
    envelopes,
    parse_event,
    parse_message,
)


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


def test_a_tombstone_is_rejected_alone():
    now = datetime(2026, 10, 1, tzinfo=UTC)
    result = process_batch([*event_messages("t", 2), None], now)
    assert [e.event_id for e in result.events] == ["e0", "e1"]
    assert [r.reason for _, r, _ in result.rejected] == [TOMBSTONE.reason]
    assert message_bytes(bytearray(b"x")) == b"x" and message_bytes(None) is None


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("123456789012345678901", "123456789012345678901"),  # above 2**64
        ("18446744073709551616", "18446744073709551616"),
        ("1234.567890123456", "1234.567890123456"),  # 16 digits: more than a double holds
        ("10000000000000000.000000000001", "10000000000000000.000000000001"),
        ("99999999999999999999999999.999999999999", "99999999999999999999999999.999999999999"),
        ("1.5", "1.5"),
        ("1e-05", "0.00001"),
        ("42", "42"),
    ],
)
def test_numbers_are_read_exactly(literal: str, expected: str) -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    body = f'{{"tenantId": "t", "id": "x", "customerId": "c", "metric": "m", "value": {literal},'
    body += f' "properties": {{"amount": {literal}}}}}'
    [event] = parse_message(body.encode(), received_at=now)
    assert isinstance(event, UsageEvent)
    assert event.value == Decimal(expected) and format(event.value, "f") == expected
    assert Decimal(event.properties["amount"]) == Decimal(expected)


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ("1e400", "value must be a finite number"),
        ("100000000000000000000000000", "value must be a finite number"),  # 27 digits
        ("0.0000000000001", "value must be a finite number"),  # 13 decimals
    ],
)
def test_numbers_the_store_cannot_hold_are_rejected(literal: str, reason: str) -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    body = f'{{"tenantId": "t", "id": "x", "customerId": "c", "metric": "m", "value": {literal}}}'
    [rejection] = parse_message(body.encode(), received_at=now)
    assert isinstance(rejection, Rejection) and rejection.reason.startswith(reason)


def test_long_ids_are_rejected_with_the_field():
    now = datetime(2026, 10, 1, tzinfo=UTC)
    base = {"id": "x", "customerId": "c", "metric": "m"}
    for field in ("customerId", "metric"):
        parsed = parse_event({**base, field: "c" * 300}, tenant_id="t", received_at=now)
        assert isinstance(parsed, Rejection)
        assert parsed.reason == f"{field} is longer than 256 characters"


def test_envelopes_split_by_bytes_and_count_and_keep_order():
    now = datetime(2026, 10, 1, tzinfo=UTC)
    big = [
        UsageEvent("t", f"e{i}", "c", "m", now, None, {"blob": "x" * 2_000}) for i in range(1_000)
    ]
    small = [UsageEvent("t", f"s{i}", "c", "m", now, None, {}) for i in range(2_500)]
    for events in (big, small):
        parts = envelopes("t", [encode_event(e) for e in events])
        assert all(len(message) <= MAX_MESSAGE_BYTES for _, message in parts)
        assert all(count <= 1_000 for count, _ in parts)
        decoded = [e for _, message in parts for e in parse_message(message, received_at=now)]
        assert [e.event_id for e in decoded if isinstance(e, UsageEvent)] == [
            e.event_id for e in events
        ]
        assert sum(count for count, _ in parts) == len(events)
    assert len(envelopes("t", [encode_event(e) for e in big])) >= 3


_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "tenantId": _json_scalars,
        "id": _json_scalars,
        "customerId": _json_scalars,
        "metric": _json_scalars,
        "timestamp": _json_scalars | st.datetimes().map(lambda d: d.isoformat()),
        "value": _json_scalars | st.decimals(allow_nan=True).map(str),
        "properties": _json,
        "events": st.lists(_json, max_size=3),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none()
        | st.binary(max_size=200)
        | _json.map(lambda v: json.dumps(v).encode())
        | _event_like.map(lambda v: json.dumps(v).encode()),
        max_size=8,
    )
)
def test_junk_messages_never_raise_and_each_is_accounted_for(messages: list[bytes | None]) -> None:
    # A worker handles any batch: every message becomes events or rejections, nothing
    # raises (a raise would retry the batch forever and stall the partition).
    result = process_batch(messages, datetime(2026, 10, 1, tzinfo=UTC))
    for event in result.events:
        assert isinstance(event, UsageEvent) and event.tenant_id and event.event_id
    assert all(isinstance(r, Rejection) and r.reason for _, r, _ in result.rejected)
    # Each message is accounted for: an event (or a duplicate of one) or a rejection.
    assert len(result.rejected) >= sum(1 for m in messages if m is None)
