"""The Faust ingest agent on the real broker and the real ClickHouse engine.

Failure paths: a worker that dies after writing but before acking (the batch is
replayed and counted once), ClickHouse refusing writes (backpressure, then every event
stored once), messages produced straight to Kafka that are malformed or of an unknown
tenant (dead-letter topic with the reason, and the rejected_events table).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.app import create_stream_app
from streams.config import StreamConfig
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.conftest import CH_DATABASE
from tests.streams.test_ingest_batches import event_messages

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _settings(bootstrap: str) -> StreamConfig:
    suffix = os.urandom(4).hex()
    return StreamConfig(
        events_topic=f"ev-{suffix}",
        dlq_topic=f"dlq-{suffix}",
        consumer_group=f"grp-{suffix}",
        sink_batch_size=500,
        sink_batch_seconds=0.05,
    )


async def _create_topics(bootstrap: str, settings: StreamConfig) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(settings.events_topic, 2, 1), NewTopic(settings.dlq_topic, 1, 1)]
        )
    finally:
        await admin.close()


async def _produce(
    bootstrap: str, topic: str, payloads: Sequence[bytes], keys: Sequence[bytes] | None = None
) -> None:
    """Produce each payload (keyed by `keys`, else by index mod 7), acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for i, payload in enumerate(payloads):
            key = keys[i] if keys is not None else str(i % 7).encode()
            await producer.send(topic, payload, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _known(_: str) -> bool:
    return True


async def _wait(predicate: Any, limit: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _committed(bootstrap: str, settings: StreamConfig, partitions: int = 2) -> int:
    """The consumer group's committed offsets, summed over the events topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=settings.consumer_group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for partition in range(partitions):
            offset = await consumer.committed(TopicPartition(settings.events_topic, partition))
            total += offset or 0
        return total
    finally:
        await consumer.stop()


def _stored(clickhouse: Any, tenant: str) -> tuple[int, int]:
    """(distinct events, raw rows incl. duplicates) of a tenant."""
    distinct = clickhouse.query(
        f"SELECT count() FROM {CH_DATABASE}.usage_events FINAL WHERE tenant_id = {{t:String}}",
        parameters={"t": tenant},
    ).result_rows[0][0]
    raw = clickhouse.query(
        f"SELECT count() FROM {CH_DATABASE}.usage_events WHERE tenant_id = {{t:String}}",
        parameters={"t": tenant},
    ).result_rows[0][0]
    return int(distinct), int(raw)


class StallAfterWrite(ClickHouseSink):
    """Writes the first batch, then never returns: the worker 'dies' before acking."""

    def __init__(self, client: Any, database: str) -> None:
        super().__init__(client, database)
        self.written = threading.Event()
        self.release = threading.Event()

    def write_events(self, events: Sequence[UsageEvent]) -> None:
        super().write_events(events)
        self.written.set()
        self.release.wait(30)
        raise RuntimeError("worker died")


def test_worker_crash_after_write_replays_and_counts_once(kafka_bootstrap, clickhouse):
    settings = _settings(kafka_bootstrap)
    tenant = f"t_crash_{os.urandom(3).hex()}"

    async def scenario() -> None:
        await _create_topics(kafka_bootstrap, settings)
        await _produce(kafka_bootstrap, settings.events_topic, event_messages(tenant, 300))
        crashing = StallAfterWrite(clickhouse, CH_DATABASE)
        app, _ = create_stream_app(settings, kafka_bootstrap, crashing, _known)
        await app.start()
        await _wait(crashing.written.is_set)
        assert await _committed(kafka_bootstrap, settings) == 0  # written, not acked, not committed
        await asyncio.wait_for(app.stop(), 30)  # the crash: stop without ever acking
        crashing.release.set()
        assert await _committed(kafka_bootstrap, settings) == 0

        app2, stats = create_stream_app(
            settings, kafka_bootstrap, ClickHouseSink(clickhouse, CH_DATABASE), _known
        )
        await app2.start()
        await _wait(lambda: stats.consumed >= 300)
        await asyncio.sleep(1.0)  # let the commit interval pass
        await app2.stop()
        assert await _committed(kafka_bootstrap, settings) == 300
        # The replay really wrote the 300 events a second time ...
        assert stats.written >= 300

    asyncio.run(scenario())
    # ... and they count once. (The raw row count is no proof either way: a background
    # merge of the ReplacingMergeTree may already have collapsed the copies.)
    distinct, raw = _stored(clickhouse, tenant)
    assert distinct == 300
    assert raw >= 300
    usage = UsageStore(clickhouse, CH_DATABASE)
    assert usage.event_count(tenant) == 300


class FlakySink(ClickHouseSink):
    """ClickHouse refuses the first writes: the agent must retry, not drop or ack."""

    def __init__(self, client: Any, database: str, failures: int) -> None:
        super().__init__(client, database)
        self.failures = failures
        self.calls = 0

    def write_events(self, events: Sequence[UsageEvent]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("ClickHouse is down")
        super().write_events(events)


def test_clickhouse_down_means_backpressure_then_exact(kafka_bootstrap, clickhouse):
    settings = _settings(kafka_bootstrap)
    tenant = f"t_flaky_{os.urandom(3).hex()}"

    async def scenario() -> Any:
        await _create_topics(kafka_bootstrap, settings)
        await _produce(
            kafka_bootstrap, settings.events_topic, event_messages(tenant, 200, value="1.25")
        )
        sink = FlakySink(clickhouse, CH_DATABASE, failures=3)
        app, stats = create_stream_app(settings, kafka_bootstrap, sink, _known)
        await app.start()
        await _wait(lambda: stats.written >= 200)
        await asyncio.sleep(0.8)
        await app.stop()
        return stats, await _committed(kafka_bootstrap, settings)

    stats, committed = asyncio.run(scenario())
    assert stats.write_retries >= 3
    assert committed == 200
    assert _stored(clickhouse, tenant)[0] == 200
    total = clickhouse.query(
        f"SELECT sum(value) FROM {CH_DATABASE}.usage_events FINAL WHERE tenant_id = {{t:String}}",
        parameters={"t": tenant},
    ).result_rows[0][0]
    assert total == Decimal("250")


def test_bad_kafka_messages_go_to_dlq_with_reason(kafka_bootstrap, clickhouse):
    settings = _settings(kafka_bootstrap)
    tenant = f"t_dlq_{os.urandom(3).hex()}"
    good = event_messages(tenant, 5)
    bad = [
        b"{not json",
        orjson.dumps({"id": "no-tenant", "customerId": "c", "metric": "gb"}),
        orjson.dumps(
            {
                "tenantId": tenant,
                "id": "bad-ts",
                "customerId": "c",
                "metric": "gb",
                "timestamp": "2026-10-05 10:00",
            }
        ),
        orjson.dumps({"tenantId": "ten_nobody", "id": "ghost", "customerId": "c", "metric": "gb"}),
    ]

    async def only_ours(tenant_id: str) -> bool:
        return tenant_id == tenant

    async def scenario() -> list[dict[str, Any]]:
        await _create_topics(kafka_bootstrap, settings)
        await _produce(kafka_bootstrap, settings.events_topic, good + bad)
        app, stats = create_stream_app(
            settings, kafka_bootstrap, ClickHouseSink(clickhouse, CH_DATABASE), only_ours
        )
        await app.start()
        await _wait(lambda: stats.consumed >= 9)
        await app.stop()
        consumer = AIOKafkaConsumer(
            settings.dlq_topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            records = await consumer.getmany(timeout_ms=5000, max_records=100)
        finally:
            await consumer.stop()
        return [orjson.loads(r.value) for batch in records.values() for r in batch]

    dead = asyncio.run(scenario())
    reasons = {d["id"]: d["reason"] for d in dead}
    assert len(dead) == 4
    assert reasons["bad-ts"].startswith("timestamp") and "time zone" in reasons["bad-ts"]
    assert reasons["no-tenant"].startswith("tenantId is required")
    assert reasons["ghost"] == "unknown tenantId"
    assert any(d["reason"].startswith("message is not valid JSON") for d in dead)
    assert _stored(clickhouse, tenant)[0] == 5
    rejected = UsageStore(clickhouse, CH_DATABASE).rejected_events(tenant)
    assert {r["id"] for r in rejected} == {"bad-ts"}


def test_a_tombstone_is_dead_lettered_and_ingestion_goes_on(kafka_bootstrap, clickhouse):
    # Found by use: one message without a value stopped all ingestion for good.
    settings = _settings(kafka_bootstrap)
    tenant = f"t_tomb_{os.urandom(3).hex()}"
    before, after = event_messages(tenant, 3), event_messages(tenant, 6)[3:]

    async def scenario() -> list[dict[str, Any]]:
        await _create_topics(kafka_bootstrap, settings)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for payload in before:
                await producer.send(settings.events_topic, payload, key=b"k", partition=0)
            await producer.send(settings.events_topic, None, key=b"k", partition=0)
            for payload in after:
                await producer.send(settings.events_topic, payload, key=b"k", partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        app, stats = create_stream_app(
            settings, kafka_bootstrap, ClickHouseSink(clickhouse, CH_DATABASE), _known
        )
        await app.start()
        await _wait(lambda: stats.consumed >= 7)
        await _wait(lambda: _stored(clickhouse, tenant)[0] == 6)
        assert stats.errors == [] and stats.failing_since is None
        await app.stop()
        consumer = AIOKafkaConsumer(
            settings.dlq_topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            records = await consumer.getmany(timeout_ms=5000, max_records=100)
        finally:
            await consumer.stop()
        return [orjson.loads(r.value) for batch in records.values() for r in batch]

    dead = asyncio.run(scenario())
    assert [d["reason"] for d in dead] == ["message has no value (a tombstone): nothing to ingest"]
    assert _stored(clickhouse, tenant) == (6, 6)


class DownFor(ClickHouseSink):
    """ClickHouse refuses every write for `seconds` from the first one, then recovers."""

    def __init__(self, client: Any, database: str, seconds: float) -> None:
        super().__init__(client, database)
        self.seconds = seconds
        self.down_until: float | None = None
        self.refused = 0

    def write_events(self, events: Sequence[UsageEvent]) -> None:
        now = time.monotonic()
        if self.down_until is None:
            self.down_until = now + self.seconds
        if now < self.down_until:
            self.refused += 1
            raise ConnectionError("ClickHouse is down")
        super().write_events(events)


def test_clickhouse_down_for_ten_seconds_then_every_event_exactly_once(kafka_bootstrap, clickhouse):
    """Writes fail for 10 s while events keep arriving: the worker holds back (nothing
    acked, the stall reported), then stores every event once, the sum exact."""
    settings = _settings(kafka_bootstrap)
    tenant = f"t_down_{os.urandom(3).hex()}"
    messages = event_messages(tenant, 600, value="0.001")

    async def scenario() -> Any:
        await _create_topics(kafka_bootstrap, settings)
        await _produce(kafka_bootstrap, settings.events_topic, messages[:300])
        sink = DownFor(clickhouse, CH_DATABASE, seconds=10)
        app, stats = create_stream_app(settings, kafka_bootstrap, sink, _known)
        await app.start()
        await _wait(lambda: sink.refused >= 1)
        await _produce(kafka_bootstrap, settings.events_topic, messages[300:])  # during it
        await asyncio.sleep(3)
        assert stats.written == 0 and stats.failing_since is not None  # reported stalled
        assert await _committed(kafka_bootstrap, settings) == 0  # nothing acked
        await _wait(lambda: stats.written >= 600, limit=60)
        await asyncio.sleep(0.8)
        await app.stop()
        return sink, stats, await _committed(kafka_bootstrap, settings)

    sink, stats, committed = asyncio.run(scenario())
    assert sink.refused >= 2 and stats.write_retries >= 2
    assert stats.failing_since is None  # recovered
    assert committed == 600
    assert _stored(clickhouse, tenant)[0] == 600
    total = clickhouse.query(
        f"SELECT sum(value) FROM {CH_DATABASE}.usage_events FINAL WHERE tenant_id = {{t:String}}",
        parameters={"t": tenant},
    ).result_rows[0][0]
    assert total == Decimal("0.6")


class HangingSink(ClickHouseSink):
    """A write that does not return (no error) until released: a hung consumer."""

    def __init__(self, client: Any, database: str) -> None:
        super().__init__(client, database)
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_events(self, events: Sequence[UsageEvent]) -> None:
        self.entered.set()
        self.release.wait(60)
        super().write_events(events)


def test_a_write_that_never_returns_is_reported_as_a_stall(kafka_bootstrap, clickhouse):
    """No error to count, no progress: the worker's stall grows with the time it has
    held the batch (what /readyz reports after 30 s), and ends when the write returns."""
    from core.clock import SYSTEM_CLOCK

    settings = _settings(kafka_bootstrap)
    tenant = f"t_hang_{os.urandom(3).hex()}"

    async def scenario() -> None:
        await _create_topics(kafka_bootstrap, settings)
        await _produce(kafka_bootstrap, settings.events_topic, event_messages(tenant, 50))
        sink = HangingSink(clickhouse, CH_DATABASE)
        app, stats = create_stream_app(settings, kafka_bootstrap, sink, _known)
        await app.start()
        await _wait(sink.entered.is_set)
        await asyncio.sleep(2.5)
        assert stats.failing_since is None and not stats.errors  # nothing failed ...
        assert stats.stalled_for(SYSTEM_CLOCK.now()) >= 2.0  # ... and nothing moved
        sink.release.set()
        await _wait(lambda: stats.written >= 50)
        await _wait(lambda: stats.busy_since is None)
        assert stats.stalled_for(SYSTEM_CLOCK.now()) == 0.0
        await app.stop()

    asyncio.run(scenario())
    assert _stored(clickhouse, tenant)[0] == 50


class PoisonSink(ClickHouseSink):
    """ClickHouse refuses any batch holding the event "e137" (a conversion error, the
    same every time): the worker must bisect, dead-letter it alone and go on."""

    def __init__(self, client: Any, database: str) -> None:
        super().__init__(client, database)
        self.attempts = 0

    def write_events(self, events: Sequence[UsageEvent]) -> None:
        self.attempts += 1
        if any(e.event_id == "e137" for e in events):
            raise ValueError("Decimal value out of range for e137")
        super().write_events(events)


def test_a_refused_event_is_bisected_out_and_the_partition_goes_on(kafka_bootstrap, clickhouse):
    settings = _settings(kafka_bootstrap)
    tenant = f"t_poison_{os.urandom(3).hex()}"

    async def scenario() -> Any:
        await _create_topics(kafka_bootstrap, settings)
        await _produce(kafka_bootstrap, settings.events_topic, event_messages(tenant, 300))
        sink = PoisonSink(clickhouse, CH_DATABASE)
        app, stats = create_stream_app(settings, kafka_bootstrap, sink, _known)
        await app.start()
        await _wait(lambda: stats.consumed >= 300)
        await asyncio.sleep(0.8)
        await app.stop()
        dead = await _dlq(kafka_bootstrap, settings, expect=1)
        return sink, stats, await _committed(kafka_bootstrap, settings), dead

    sink, stats, committed, dead = asyncio.run(scenario())
    assert committed == 300  # nothing stalls: every offset committed
    assert stats.write_retries == 0  # a refusal is not retried, it is bisected
    assert _stored(clickhouse, tenant)[0] == 299
    [message] = [m for m in dead if m["tenantId"] == tenant]
    assert message["id"] == "e137"
    assert message["reason"].startswith("ClickHouse refused the event: ValueError")
    assert stats.rejected == 1 and stats.written == 299
    # Bisection: about 2 log2(n) writes for the batch holding it, not a retry loop.
    assert sink.attempts <= 40


async def _dlq(bootstrap: str, settings: StreamConfig, expect: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        settings.dlq_topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < expect and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [orjson.loads(r.value) for r in records]
    finally:
        await consumer.stop()
    return found
