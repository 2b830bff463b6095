"""The publisher: accepted events onto usage-events, as envelopes (streams.schema).

The API hands it validated events with their encodings; it groups them by the
partition their customer's key hashes to (as a per-event message keyed
tenant/customer would go), splits each group into envelopes that fit a Kafka
message, sends them and returns once Kafka acknowledged every one (acks=all).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from streams.schema import UsageEvent, envelopes

_partitioner = DefaultPartitioner()
# Partition of each message key (the hash is pure Python in aiokafka: 14 µs a key, as
# much as parsing the event). Bounded: cleared when it would hold more than this.
_PARTITION_CACHE_SIZE = 200_000
_partition_cache: dict[tuple[bytes, int], int] = {}


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka's default partitioner picks for `key`, memoized."""
    cached = _partition_cache.get((key, len(partitions)))
    if cached is None:
        if len(_partition_cache) >= _PARTITION_CACHE_SIZE:
            _partition_cache.clear()
        cached = _partitioner(key, partitions, partitions)
        _partition_cache[(key, len(partitions))] = cached
    return cached


async def produce_batches(
    producer: Any, topic: str, tenant: str, events: list[tuple[UsageEvent, bytes]]
) -> None:
    """Send events (with their encodings) as envelopes, each to the partition its
    customers hash to (the partition a per-event message keyed tenant/customer would go
    to), split to fit a Kafka message, and wait until Kafka acknowledged all of them."""
    partitions = sorted(await producer.partitions_for(topic))
    by_partition: dict[int, list[tuple[UsageEvent, bytes]]] = {}
    for pair in events:
        partition = partition_of(pair[0].message_key, partitions)
        by_partition.setdefault(partition, []).append(pair)
    futures = []
    for partition, group in by_partition.items():
        at = 0
        for count, message in envelopes(tenant, [encoded for _, encoded in group]):
            futures.append(
                await producer.send(
                    topic, message, key=group[at][0].message_key, partition=partition
                )
            )
            at += count
    await asyncio.gather(*futures)
