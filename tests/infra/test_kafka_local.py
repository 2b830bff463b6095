"""The local Kafka broker used by development and the test suite really works."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka_local import LocalKafkaBroker

pytestmark = pytest.mark.kafka


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _consume_all(
    bootstrap: str, topic: str, count: int, group: str | None = None, commit: bool = False
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[bytes] = []
        async with asyncio.timeout(20):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500)
                received += [msg.value for msgs in batches.values() for msg in msgs if msg.value]
        if commit:
            await consumer.commit()
        return received
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


def test_broker_answers(kafka_bootstrap: str) -> None:
    host, port = kafka_bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):
        pass

    async def topics() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    assert isinstance(asyncio.run(topics()), list)


def test_produce_then_consume(kafka_bootstrap: str, kafka_topic: Callable[..., str]) -> None:
    topic = kafka_topic(partitions=1)
    values = [f"event-{i}".encode() for i in range(5)]
    asyncio.run(_produce(kafka_bootstrap, topic, values))
    assert asyncio.run(_consume_all(kafka_bootstrap, topic, len(values))) == values


def test_session_broker_settings(kafka_broker: LocalKafkaBroker | None) -> None:
    if kafka_broker is None:
        pytest.skip("external broker")
    props = kafka_broker.properties_file.read_text()
    assert f"listeners=PLAINTEXT://127.0.0.1:{kafka_broker.port}," in props
    assert "offsets.topic.replication.factor=1" in props
    assert kafka_broker.is_running()
    assert kafka_broker.started_in is not None


def test_restart_keeps_topic_messages_and_offsets(tmp_path: Path) -> None:
    broker = LocalKafkaBroker(tmp_path / "kafka", partitions=1)
    topic, group = "restart-check", "restart-group"
    values = [b"usage-1", b"usage-2", b"usage-3"]
    try:
        broker.start()
        asyncio.run(_create(broker.bootstrap, topic))
        asyncio.run(_produce(broker.bootstrap, topic, values))
        assert asyncio.run(_consume_all(broker.bootstrap, topic, 3, group, commit=True)) == values

        broker.stop()
        assert not broker.is_running()
        broker.start()
        assert broker.is_running()

        assert asyncio.run(_consume_all(broker.bootstrap, topic, 3)) == values
        assert asyncio.run(_committed(broker.bootstrap, topic, group)) == 3
    finally:
        broker.stop()

    broker.stop()  # idempotent
    assert not broker.is_running()
    assert not broker.pid_file.exists()
