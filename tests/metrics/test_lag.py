"""Consumer lag on the real broker: the log end against the group's committed offset,
per partition, as the worker's watch refreshes it into its stats."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import OffsetAndMetadata

from streams import lag

pytestmark = pytest.mark.kafka


async def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in counts.items():
            for i in range(count):
                await producer.send(topic, b"{}", key=str(i).encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in offsets]
        consumer.assign(tps)
        await consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "")
                               for p, o in offsets.items()})  # fmt: skip
    finally:
        await consumer.stop()


def test_lag_is_log_end_minus_committed_per_held_partition(
    kafka_bootstrap: str, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(partitions=3, prefix="lag")
    group = f"lag-{os.urandom(3).hex()}"

    async def scenario() -> None:
        await _produce(kafka_bootstrap, topic, {0: 5, 1: 3})
        probe = lag.LagProbe(kafka_bootstrap, group, topic)
        await probe.start()
        try:
            # nothing committed yet: everything from the log start is lag
            assert await _measure(probe, [0, 1, 2]) == {0: 5, 1: 3, 2: 0}
            await _commit(kafka_bootstrap, group, topic, {0: 2, 1: 3})
            assert await _measure(probe, [0, 1]) == {0: 3, 1: 0}
        finally:
            await probe.stop()

        # the worker's watch: only the partitions it holds, refreshed in place
        held = [(topic, 0), ("another-topic", 1)]
        figures: dict[int, int] = {}
        task = asyncio.create_task(
            lag.watch(
                lag.LagProbe(kafka_bootstrap, group, topic),
                topic,
                lambda: held,
                figures,
                interval=0.05,
            )
        )
        try:
            await _wait(lambda: figures == {0: 3})
            await _produce(kafka_bootstrap, topic, {0: 4})
            await _wait(lambda: figures == {0: 7})
            held.clear()  # a rebalance took the partition away: no figure for it
            await _wait(lambda: figures == {})
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


async def _measure(probe: lag.LagProbe, partitions: list[int]) -> dict[int, int]:
    # A fresh broker creates its offsets topic on the first coordinator lookup.
    for _ in range(100):
        try:
            return await probe.measure(partitions)
        except GroupCoordinatorNotAvailableError:
            await asyncio.sleep(0.2)
    raise AssertionError("no group coordinator")


async def _wait(predicate: Callable[[], bool], limit: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
