"""The Faust app of the stream workers and its ingest agent.

    usage-events ──► ingest agent: parse/validate → dedupe in batch → ClickHouse → ack
                          └─ rejected ─► usage-events-dlq (with reason) + rejected_events

Offsets advance only after the batch is in ClickHouse: the agent takes events with
`noack_take` and acks them itself after the write. Agent concurrency is 1 per worker
process (faust issue 606: concurrent actors can commit past an in-flight event);
throughput scales with partitions and worker processes in the same consumer group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import faust
import orjson
from tenacity import AsyncRetrying, retry_if_exception, stop_never, wait_exponential

from core import metrics
from core.clock import SYSTEM_CLOCK, Clock
from streams.config import StreamConfig
from streams.schema import Rejection, UsageEvent, parse_message
from streams.sink import ClickHouseSink, WriteRefused, is_refusal

log = logging.getLogger(__name__)


class _FalseFetchStall(logging.Filter):
    """Drop faust's "Aiokafka has not sent fetch request … since start" errors.

    faust-streaming reads a fetch timestamp that aiokafka 0.14 no longer records, so it
    reports a stall at ERROR every few seconds while the consumer fetches normally.
    Real stalls are what /readyz watches (consumer progress against the log end).
    """

    _FALSE = ("Aiokafka has not sent fetch request", "Aiokafka has not received fetch response")

    def filter(self, record: logging.LogRecord) -> bool:
        # faust prefixes its service name ("[^--AIOKafkaConsumerThread]: …").
        text = str(record.msg)
        return not any(false in text for false in self._FALSE)


logging.getLogger("faust.transport.drivers.aiokafka").addFilter(_FalseFetchStall())

TenantCheck = Callable[[str], Awaitable[bool]]


@dataclass
class StreamStats:
    """Counters of one worker, for /metrics and tests."""

    consumed: int = 0
    written: int = 0
    rejected: int = 0
    batches: int = 0
    write_retries: int = 0
    hook_errors: int = 0
    last_batch_at: datetime | None = None
    errors: list[str] = field(default_factory=list)
    # When the batch being handled first failed (a write retried, an unexpected error);
    # None while batches go through. /readyz reports a worker stuck for long as stalled.
    failing_since: datetime | None = None
    # When the batch in hand was taken (None between batches): a write or step that
    # never returns, with no error to show, is a stall too.
    busy_since: datetime | None = None
    # Seconds spent per phase of the batches (parse, write, steps; each step by name),
    # for /metrics and the ingest benchmark's account of where the time goes.
    seconds: dict[str, float] = field(default_factory=dict)
    # {partition of the events topic: consumer lag} of the partitions this worker holds,
    # refreshed by streams.lag.watch.
    lag: dict[int, int] = field(default_factory=dict)

    def spent(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def failing(self, now: datetime, error: str) -> None:
        if self.failing_since is None:
            self.failing_since = now
        self.errors.append(error)
        del self.errors[:-20]

    def stalled_for(self, now: datetime) -> float:
        """Seconds the worker has been on one batch, failing or not returning (0 between
        batches): the consumer makes no progress while its lag can only grow."""
        since = [t for t in (self.failing_since, self.busy_since) if t is not None]
        return 0.0 if not since else (now - min(since)).total_seconds()


@dataclass(frozen=True)
class Outbound:
    """A message a batch step wants on a topic; `ref` is the step's own handle on it."""

    topic: str
    key: bytes
    value: bytes
    ref: Any = None


class BatchHook(Protocol):
    """A step after a batch is stored (quotas): it may ask for messages, which the
    worker produces and confirms with `sent` once Kafka has them."""

    async def after_write(self, events: Sequence[UsageEvent]) -> Sequence[Outbound]: ...

    async def sent(self, messages: Sequence[Outbound]) -> None: ...


@dataclass(frozen=True)
class BatchResult:
    events: list[UsageEvent]
    rejected: list[tuple[str, Rejection, str]]  # (tenant id or "", rejection, raw payload)


TOMBSTONE = Rejection("message has no value (a tombstone): nothing to ingest")


def message_bytes(value: Any) -> bytes | None:
    """A message value as bytes; None for a tombstone (no value at all)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return None


def process_batch(payloads: Sequence[bytes | None], received_at: datetime) -> BatchResult:
    """Parse a batch of messages: valid events (deduplicated within the batch) and
    rejections. A tombstone (a message without a value) is rejected alone."""
    events: list[UsageEvent] = []
    seen: set[tuple[str, str]] = set()
    rejected: list[tuple[str, Rejection, str]] = []
    for payload in payloads:
        if payload is None:
            rejected.append(("", TOMBSTONE, ""))
            continue
        for parsed in parse_message(payload, received_at=received_at):
            if isinstance(parsed, Rejection):
                rejected.append(
                    (_tenant_of(payload), parsed, payload.decode("utf-8", "replace")[:10_000])
                )
                continue
            key = (parsed.tenant_id, parsed.event_id)
            if key in seen:
                continue
            seen.add(key)
            events.append(parsed)
    return BatchResult(events, rejected)


def _tenant_of(payload: bytes) -> str:
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    tenant = raw.get("tenantId") if isinstance(raw, dict) else None
    return tenant if isinstance(tenant, str) else ""


def create_stream_app(
    config: StreamConfig,
    bootstrap: str,
    sink: ClickHouseSink,
    tenant_exists: TenantCheck,
    stats: StreamStats | None = None,
    clock: Clock = SYSTEM_CLOCK,
    hook: BatchHook | None = None,
) -> tuple[faust.App, StreamStats]:
    """Build the Faust app with its ingest agent (started by the caller)."""
    stats = stats or StreamStats()
    app = faust.App(
        config.consumer_group,
        broker=f"kafka://{bootstrap}",
        web_enabled=False,
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=config.topic_partitions,
        topic_replication_factor=1,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=10_000,
        broker_commit_interval=0.5,
        stream_buffer_maxsize=max(4096, config.sink_batch_size),
        producer_acks=-1,
        # A worker killed with -9 leaves the group after this (faust's default is 60 s,
        # so the restarted worker waited more than a minute for its partitions).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_rebalance_timeout=20.0,
        # Never wait for unacked events on shutdown or rebalance: they are simply
        # redelivered, and the sink is idempotent. Waiting would hang a stop while
        # ClickHouse is down, since those events are never acked.
        stream_wait_empty=False,
    )
    events_topic = app.topic(config.events_topic, value_type=bytes, key_type=bytes)
    dlq_topic = app.topic(config.dlq_topic, value_type=bytes, key_type=bytes)

    async def write_with_retry(
        what: str, action: Callable[[], None], *, refusable: bool = False
    ) -> None:
        # ClickHouse down is backpressure: the batch is retried until it is stored and
        # nothing is acked meanwhile, so the consumer stops advancing. With `refusable`,
        # a refusal of the rows (sink.is_refusal) is not retried: it raises WriteRefused.
        def retryable(exc: BaseException) -> bool:
            return not isinstance(exc, WriteRefused)

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(retryable),
            wait=wait_exponential(multiplier=0.2, max=30),
            stop=stop_never,
            reraise=True,
        ):
            with attempt:
                number = attempt.retry_state.attempt_number
                if number > 1:
                    stats.write_retries += 1
                    outcome = attempt.retry_state.outcome
                    error = outcome.exception() if outcome is not None else None
                    stats.failing(clock.now(), f"{what}: {type(error).__name__}: {error}")
                    log.warning("retrying %s (attempt %d)", what, number)
                try:
                    await asyncio.to_thread(action)
                except Exception as exc:
                    if refusable and is_refusal(exc):
                        raise WriteRefused(f"{type(exc).__name__}: {exc}") from exc
                    raise

    async def store(events: list[UsageEvent]) -> list[tuple[UsageEvent, str]]:
        """Write the events; those ClickHouse refuses are found by bisection and
        returned alone with the reason (the others are stored)."""
        if not events:
            return []
        try:
            await write_with_retry(
                "usage_events insert", lambda: sink.write_events(events), refusable=True
            )
            return []
        except WriteRefused as refused:
            if len(events) == 1:
                return [(events[0], str(refused))]
            middle = len(events) // 2
            return await store(events[:middle]) + await store(events[middle:])

    topics: dict[str, Any] = {}

    async def run_hook(events: Sequence[UsageEvent]) -> None:
        # The step never holds the partition: a failure is logged and counted, and what
        # it did not finish is picked up after the next batch (its state is durable).
        assert hook is not None
        try:
            outbound = await hook.after_write(events)
            deliveries = []
            for message in outbound:
                topic = topics.get(message.topic)
                if topic is None:
                    topic = topics[message.topic] = app.topic(
                        message.topic, value_type=bytes, key_type=bytes
                    )
                deliveries.append(await topic.send(key=message.key, value=message.value))
            await asyncio.gather(*deliveries)
            await hook.sent(outbound)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stats.hook_errors += 1
            stats.errors.append(f"batch step: {type(exc).__name__}: {exc}")
            del stats.errors[:-20]
            log.exception("the step after a stored batch failed; the batch stays stored")

    async def handle(batch: Sequence[Any]) -> None:
        now = clock.now()
        payloads = [message_bytes(e.value) for e in batch]
        # Parsing a batch is pure CPU (up to ~0.5 s for 20,000 events): off the event
        # loop, so the API's requests in the same process are served meanwhile.
        began = time.perf_counter()
        result = await asyncio.to_thread(process_batch, payloads, now)
        stats.spent("parse", time.perf_counter() - began)
        known: list[UsageEvent] = []
        rejected = list(result.rejected)
        verdicts: dict[str, bool] = {}
        for event in result.events:
            if event.tenant_id not in verdicts:
                verdicts[event.tenant_id] = await tenant_exists(event.tenant_id)
            if verdicts[event.tenant_id]:
                known.append(event)
            else:
                rejected.append(
                    (
                        event.tenant_id,
                        Rejection("unknown tenantId", event.event_id),
                        event.to_message().decode(),
                    )
                )
        began = time.perf_counter()
        refused = await store(known)
        stats.spent("write", written := time.perf_counter() - began)
        if known:
            metrics.BATCH_WRITE_SECONDS.observe(written)
        if refused:
            # Dead-lettered alone, with the reason; the rest of the batch goes on.
            gone = {(e.tenant_id, e.event_id) for e, _ in refused}
            known = [e for e in known if (e.tenant_id, e.event_id) not in gone]
            rejected.extend(
                (
                    e.tenant_id,
                    Rejection(f"ClickHouse refused the event: {reason}"[:1_000], e.event_id),
                    e.to_message().decode(),
                )
                for e, reason in refused
            )
        if rejected:
            await write_with_retry(
                "rejected_events insert",
                lambda: sink.write_rejections([(t, r, p, "kafka") for t, r, p in rejected]),
            )
            for tenant, rejection, payload in rejected:
                await dlq_topic.send(
                    key=tenant.encode(),
                    value=orjson.dumps(
                        {
                            "reason": rejection.reason,
                            "id": rejection.event_id,
                            "tenantId": tenant,
                            "payload": payload,
                            "rejectedAt": now.isoformat(),
                        }
                    ),
                )
        if hook is not None and known:
            began = time.perf_counter()
            await run_hook(known)
            stats.spent("steps", time.perf_counter() - began)
        stats.consumed += len(batch)
        stats.written += len(known)
        stats.rejected += len(rejected)
        stats.batches += 1
        stats.last_batch_at = now
        stats.failing_since = None

    @app.agent(events_topic, concurrency=1, name="meterline.ingest")
    async def ingest(stream: Any) -> None:
        async for batch in stream.noack_take(
            config.sink_batch_size, within=config.sink_batch_seconds
        ):
            # Nothing crashes the worker: an unexpected error is logged and the same
            # batch is handled again; until then nothing is acked, so nothing is lost.
            attempt = 0
            stats.busy_since = clock.now()
            while True:
                try:
                    await handle(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    attempt += 1
                    stats.failing(clock.now(), f"{type(exc).__name__}: {exc}")
                    log.exception("ingest batch failed (attempt %d); retrying", attempt)
                    await asyncio.sleep(min(0.5 * attempt, 10))
            for event in batch:
                event.ack()
            stats.busy_since = None

    return app, stats
