"""The phases of the ingest benchmark beyond HTTP accept (bench/ingest.py drives them).

- `setup_catalog`: metrics, a plan whose usage charge has a hard cap and with a usage
  threshold, customers with subscriptions and a usage alert, so the worker's quota,
  alert and progressive-billing steps run for real (never reached);
- `clickhouse_insert_baseline`: the raw insert of the same rows into a ClickHouse engine
  of the bench's own (the ceiling of what the stream can store);
- `kafka_produce_baseline`: envelopes produced to a scratch topic (the ceiling of what
  producers can put on the broker);
- `kafka_phase`: envelopes produced straight to usage-events, until all are queryable;
- `offered_load`: a steady 10,000 events/s over HTTP while quota checks and usage
  read-outs run, with when each batch became queryable.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

CAP = "1000000000"  # a hard cap that is checked on every batch and never reached


async def setup_catalog(client: httpx.AsyncClient, customers: int) -> dict[str, Any]:
    """The catalog of the bench's events; returns a subscription id of cust_00000."""

    async def ok(method: str, url: str, body: dict[str, Any]) -> Any:
        response = await client.request(method, url, json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return response.json()

    await ok("POST", "/api/v1/metrics", {"code": "api_calls", "name": "API calls",
                                          "aggregation": "count"})  # fmt: skip
    await ok("POST", "/api/v1/metrics", {"code": "storage_gb", "name": "Storage",
                                          "aggregation": "sum"})  # fmt: skip
    await ok(
        "POST",
        "/api/v1/plans",
        {
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "interval": "monthly",
            "charges": [
                {"metric": "api_calls", "model": "per_unit", "hardCap": CAP,
                 "properties": {"unitAmount": "0.0001"}},
                {"metric": "storage_gb", "model": "per_unit",
                 "properties": {"unitAmount": "0.002"}},
            ],
            # Progressive billing on too: measured on every batch, never reached.
            "usageThresholds": [{"amount": CAP}],
        },
    )  # fmt: skip
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    subscriptions: list[str] = []
    lock = asyncio.Lock()
    queue = list(range(customers))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            external = f"cust_{i:05d}"
            await ok("POST", "/api/v1/customers",
                     {"externalId": external, "name": external, "currency": "USD"})  # fmt: skip
            sub = await ok("POST", "/api/v1/subscriptions",
                           {"customerId": external, "planCode": "pro",
                            "startDate": start.isoformat()})  # fmt: skip
            if i == 0:
                async with lock:
                    subscriptions.append(sub["id"])

    await asyncio.gather(*(worker() for _ in range(8)))
    [first] = subscriptions
    await ok("POST", "/api/v1/alerts", {"kind": "usage_units", "subscriptionId": first,
                                         "metric": "api_calls",
                                         "thresholds": [{"value": CAP}]})  # fmt: skip
    return {"subscription": first}


def clickhouse_insert_baseline(bodies: list[bytes], tenant: str) -> float:
    """Rows per second of the raw insert of these events into a fresh engine of this
    process, in batches like the worker's, parsing excluded (the rows are built first)."""
    from meterline.clickhouse import connect_and_migrate
    from streams.schema import UsageEvent, parse_event
    from streams.sink import EVENT_COLUMNS, event_rows

    now = datetime.now(UTC)
    events: list[UsageEvent] = []
    for body in bodies:
        for raw in orjson.loads(body)["events"]:
            parsed = parse_event(raw, tenant_id=tenant, received_at=now)
            assert isinstance(parsed, UsageEvent)
            events.append(parsed)
    rows = event_rows(events, now)
    with tempfile.TemporaryDirectory(prefix="bench-ch-") as path:
        client = connect_and_migrate(f"chdb://{Path(path) / 'ch'}", "meterline")
        table = "meterline.usage_events"
        client.insert(table, rows[:1_000], column_names=EVENT_COLUMNS)  # warm-up
        started = time.perf_counter()
        for at in range(0, len(rows), 20_000):
            client.insert(table, rows[at : at + 20_000], column_names=EVENT_COLUMNS)
        seconds = time.perf_counter() - started
        close = getattr(client, "close", None)
        if close:
            close()
    return len(rows) / seconds


def envelopes(bodies: list[bytes], tenant: str) -> list[tuple[bytes, bytes]]:
    """(key, message) per request body: `{"tenantId", "events"}`, keyed by its first
    customer, as a producer writing straight to Kafka would send them."""
    out = []
    for body in bodies:
        events = orjson.loads(body)["events"]
        key = f"{tenant}/{events[0]['customerId']}".encode()
        out.append((key, orjson.dumps({"tenantId": tenant, "events": events})))
    return out


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Produce the messages (acks=all) and wait for all acks; the seconds it took."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1024 * 1024,
        max_request_size=2 * 1024 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def kafka_produce_baseline(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Messages per second produced to a scratch topic nobody consumes."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("bench-produce-baseline", 4, 1)])
    finally:
        await admin.close()
    seconds = await produce(bootstrap, "bench-produce-baseline", messages)
    return len(messages) / seconds


@dataclass
class OfferedLoad:
    rate: int
    seconds: float
    sent: int = 0
    queryable_ms: list[float] = field(default_factory=list)
    quota_ms: list[float] = field(default_factory=list)
    usage_ms: list[float] = field(default_factory=list)
    behind: int = 0  # batches that left the schedule (the client could not keep up)


async def offered_load(
    client: httpx.AsyncClient,
    bodies: list[bytes],
    per_batch: int,
    rate: int,
    stored_before: int,
    stored: Any,
) -> OfferedLoad:
    """Send `bodies` (of `per_batch` events) at `rate` events/s; meanwhile check a quota
    and read a customer's usage in loops, and poll the stored count to see when each
    batch became queryable (its send time to the first poll that counts it)."""
    load = OfferedLoad(rate=rate, seconds=len(bodies) * per_batch / rate)
    interval = per_batch / rate
    sent_at: list[float] = []
    done = asyncio.Event()

    async def sender() -> None:
        start = time.perf_counter()
        pending = []
        for i, body in enumerate(bodies):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -interval:
                load.behind += 1
            sent_at.append(time.perf_counter())
            pending.append(
                asyncio.create_task(
                    client.post("/api/v1/events", content=body,
                                headers={"Content-Type": "application/json"})
                )
            )  # fmt: skip
        for response in await asyncio.gather(*pending):
            if response.status_code != 202:
                raise RuntimeError(f"POST /events: {response.status_code}")
        load.sent = len(bodies) * per_batch

    async def timed(url: str, out: list[float], **params: Any) -> None:
        while not done.is_set():
            started = time.perf_counter()
            response = await client.get(url, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")
            out.append(1000 * (time.perf_counter() - started))
            await asyncio.sleep(0.05)

    async def watcher() -> None:
        seen = 0
        while seen < len(bodies):
            count = await stored() - stored_before
            now = time.perf_counter()
            while seen < len(sent_at) and count >= (seen + 1) * per_batch:
                load.queryable_ms.append(1000 * (now - sent_at[seen]))
                seen += 1
            await asyncio.sleep(0.05)
        done.set()

    await asyncio.gather(
        sender(),
        watcher(),
        timed("/api/v1/customers/cust_00000/quota/api_calls", load.quota_ms),
        timed("/api/v1/customers/cust_00001/usage", load.usage_ms),
    )
    return load
