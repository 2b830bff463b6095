"""Scale-out (issue 7, item 8): two stream workers in one consumer group, on the real
broker, writing into one ClickHouse engine (one chDB path is one process, so both
Faust apps run in this process and share the store, as separate processes share a
ClickHouse server). They split the partitions; one stops mid-stream and the other takes
its partitions over; every event is stored once and every offset committed."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.app import create_stream_app
from streams.config import StreamConfig
from streams.sink import ClickHouseSink
from tests.conftest import CH_DATABASE
from tests.streams.test_ingest_agent import _committed, _known, _produce, _wait

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PARTITIONS = 4


def _messages(tenant: str, start: int, n: int) -> tuple[list[bytes], list[bytes]]:
    """(keys, values): 40 customers spread over the partitions, value 0.5 each."""
    keys, values = [], []
    for i in range(start, start + n):
        customer = f"c{i % 40}"
        value = {
            "tenantId": tenant,
            "id": f"e{i}",
            "customerId": customer,
            "metric": "gb",
            "timestamp": "2026-10-05T10:00:00Z",
            "value": "0.5",
        }
        keys.append(f"{tenant}/{customer}".encode())
        values.append(orjson.dumps(value))
    return keys, values


async def _send(bootstrap: str, topic: str, messages: tuple[list[bytes], list[bytes]]) -> None:
    keys, values = messages
    await _produce(bootstrap, topic, values, keys)


def _stored(clickhouse: Any, tenant: str) -> tuple[int, Decimal]:
    count, total = clickhouse.query(
        f"SELECT count(), sum(value) FROM {CH_DATABASE}.usage_events FINAL "
        "WHERE tenant_id = {t:String}",
        parameters={"t": tenant},
    ).result_rows[0]
    return int(count), Decimal(total or 0)


def _assigned(app: Any) -> set[TopicPartition]:
    return set(app.consumer.assignment())


def test_two_workers_split_the_partitions_and_one_takes_over(kafka_bootstrap, clickhouse):
    suffix = os.urandom(4).hex()
    config = StreamConfig(
        events_topic=f"ev-scale-{suffix}",
        dlq_topic=f"dlq-scale-{suffix}",
        consumer_group=f"grp-scale-{suffix}",
        topic_partitions=PARTITIONS,
        sink_batch_size=200,
        sink_batch_seconds=0.05,
    )
    tenant = f"t_scale_{suffix}"

    async def scenario() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(config.events_topic, PARTITIONS, 1), NewTopic(config.dlq_topic, 1, 1)]
            )
        finally:
            await admin.close()
        sink = ClickHouseSink(clickhouse, CH_DATABASE)
        first, first_stats = create_stream_app(config, kafka_bootstrap, sink, _known)
        second, second_stats = create_stream_app(config, kafka_bootstrap, sink, _known)
        await first.start()
        await second.start()
        # The group settles with both members holding partitions, none twice.
        await _wait(lambda: _assigned(first) and _assigned(second))
        await _wait(lambda: len(_assigned(first) | _assigned(second)) == PARTITIONS)
        assert not _assigned(first) & _assigned(second)

        await _send(kafka_bootstrap, config.events_topic, _messages(tenant, 0, 2_000))
        await _wait(lambda: _stored(clickhouse, tenant)[0] >= 2_000)
        assert first_stats.consumed > 0 and second_stats.consumed > 0  # both did work

        # The second worker stops while more events arrive; the first takes over.
        producing = asyncio.create_task(
            _send(kafka_bootstrap, config.events_topic, _messages(tenant, 2_000, 2_000))
        )
        await asyncio.sleep(0.2)
        await asyncio.wait_for(second.stop(), 30)
        await producing
        await _wait(lambda: len(_assigned(first)) == PARTITIONS, limit=60)
        await _wait(lambda: _stored(clickhouse, tenant)[0] >= 4_000, limit=60)
        await asyncio.sleep(1.0)  # the commit interval
        assert await _committed(kafka_bootstrap, config, PARTITIONS) == 4_000
        await first.stop()

    asyncio.run(scenario())
    assert _stored(clickhouse, tenant) == (4_000, Decimal("2000"))
