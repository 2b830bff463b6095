"""Consumer lag of a worker: per assigned partition, how far the group's committed
offset trails the log end.

    lag(partition) = log end offset − committed offset of the consumer group
                     (no commit yet: log end − log start, what `earliest` will read)

Both ends are the broker's (the committed offsets from the group coordinator, the
log end from the partition leader), so the figure counts what is consumed but not yet
committed as lag: it is what a restart would read again. Each worker reports the
partitions it holds now; summed over workers, every partition is counted once.
`watch` refreshes a worker's figures every few seconds into its `StreamStats`, which
/metrics renders (meterline_stream_consumer_lag); a probe that fails keeps the last
figures and tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0

Assignment = Callable[[], Iterable[tuple[str, int]]]


class LagProbe:
    """Reads committed and end offsets of a consumer group over its own connections
    (an admin client and a consumer outside the group: it never joins it)."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self._group = group
        self._topic = topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def measure(self, partitions: Iterable[int]) -> dict[int, int]:
        """{partition: lag} of the group on the probe's topic, for these partitions."""
        tps = [TopicPartition(self._topic, p) for p in sorted(set(partitions))]
        if not tps:
            return {}
        committed = await self._admin.list_consumer_group_offsets(self._group, partitions=tps)
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(tps)
        starts: dict[TopicPartition, int] = await self._consumer.beginning_offsets(tps)
        out = {}
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            out[tp.partition] = max(ends[tp] - done, 0)
        return out


async def watch(
    probe: LagProbe,
    topic: str,
    assignment: Assignment,
    lag: dict[int, int],
    interval: float = LAG_INTERVAL_SECONDS,
) -> None:
    """Refresh `lag` ({partition: lag}) with the partitions of `topic` that
    `assignment()` holds, every `interval` seconds, until cancelled."""
    await probe.start()
    try:
        while True:
            try:
                held = [p for t, p in _assigned(assignment) if t == topic]
                fresh = await probe.measure(held)
                lag.clear()
                lag.update(fresh)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker away: keep the last figures
                log.warning("measuring consumer lag failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(interval)
    finally:
        await probe.stop()


def _assigned(assignment: Assignment) -> list[tuple[str, int]]:
    try:
        return [(str(tp[0]), int(tp[1])) for tp in assignment()]
    except Exception as exc:  # faust raises until its consumer thread has started
        log.debug("no assignment yet: %s", exc)
        return []


def faust_assignment(app: Any) -> Assignment:
    """The partitions a started Faust app's consumer holds now."""
    return lambda: app.consumer.assignment()
