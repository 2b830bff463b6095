"""Reading what the pipeline produced to a Kafka topic, for one tenant."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer


def tenant_messages(
    bootstrap: str, topic: str, tenant: str, expect: int, wait: float = 30
) -> list[dict[str, Any]]:
    """The JSON messages of `tenant` on `topic` from the start, once `expect` arrived
    (or `wait` passed), and 1.5 s more to catch a repeat."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        found: list[dict[str, Any]] = []
        deadline, extra = time.monotonic() + wait, None
        try:
            while time.monotonic() < deadline and (extra is None or time.monotonic() < extra):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [
                        m for r in records if (m := orjson.loads(r.value))["tenantId"] == tenant
                    ]
                if len(found) >= expect and extra is None:
                    extra = time.monotonic() + 1.5
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())
