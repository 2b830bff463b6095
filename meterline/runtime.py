"""What a running Meterline process holds, and how it starts and stops.

Embedded mode (`meterline serve` with no configuration) starts a local Kafka broker,
opens the in-process ClickHouse engine and the SQLite ledger, and runs the API and
the stream worker in one process (one chDB path can be opened by one process only).
Server mode points each part at external services and runs the API and the workers
as separate processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from infra.migrate import migrate_ledger
from invoicing import events as domain_events
from invoicing.alerts import AlertWatch, Trigger
from invoicing.db import make_engine, make_sessionmaker
from invoicing.events import DomainEvent
from invoicing.progressive import ProgressiveWatch
from invoicing.quotas import Crossing, QuotaWatch
from invoicing.tax.service import TaxService
from invoicing.tenants import tenant_exists
from meterline.clickhouse import connect_and_migrate
from meterline.settings import Settings
from streams import lag
from streams.app import Outbound, StreamStats, create_stream_app
from streams.config import StreamConfig
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.topics import ensure_topics
from streams.usage_store import UsageStore

log = logging.getLogger(__name__)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clickhouse: Any
    usage: UsageStore
    # Stage 8's provider, built once from the settings: bill runs and refreshes share
    # its adapter and its 24 h quote cache.
    tax: TaxService = field(default_factory=TaxService)
    # The one source of "now" for the API and the bill runs it starts.
    clock: Clock = SYSTEM_CLOCK
    bootstrap: str | None = None
    producer: AIOKafkaProducer | None = None
    broker: Any = None
    stream_app: Any = None
    stream_stats: StreamStats = field(default_factory=StreamStats)
    timings: dict[str, float] = field(default_factory=dict)
    # Bill runs execute one at a time off the event loop; tasks are kept referenced.
    billing_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="billrun")
    )
    background: set[Any] = field(default_factory=set)
    relay: EventRelay | None = None
    relay_task: asyncio.Task[None] | None = None
    relay_producer: AIOKafkaProducer | None = None  # when the process has no API producer
    deliverer_task: asyncio.Task[None] | None = None
    lag_task: asyncio.Task[None] | None = None  # the worker's consumer lag, for /metrics

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Open the stores (migrating them); Kafka is started by `start`."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # First, so a wrong tax configuration fails at startup (no secret is echoed).
        tax = TaxService.from_config(settings.tax_provider, settings.tax_provider_config)
        t0 = time.perf_counter()
        migrate_ledger(settings.resolved_database_url)
        engine = make_engine(settings.resolved_database_url)
        t1 = time.perf_counter()
        clickhouse = connect_and_migrate(
            settings.resolved_clickhouse_dsn, settings.clickhouse_database
        )
        t2 = time.perf_counter()
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            clickhouse=clickhouse,
            usage=UsageStore(clickhouse, settings.clickhouse_database),
            tax=tax,
        )
        runtime.timings.update(ledger_seconds=t1 - t0, clickhouse_seconds=t2 - t1)
        return runtime

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work commits as one transaction."""
        with self.sessions() as session, session.begin():
            yield session

    # -- Kafka -------------------------------------------------------------------

    def start_local_broker(self) -> str:
        from infra.kafka_local import LocalKafkaBroker, free_port

        # 0 picks a free port (API.md), as does a configured port already taken.
        wanted = self.settings.kafka_port
        port = wanted if wanted and _port_free(wanted) else free_port()
        broker = LocalKafkaBroker(
            self.settings.data_dir / "kafka", port=port, partitions=self.settings.topic_partitions
        )
        t0 = time.perf_counter()
        broker.start()
        self.timings["broker_seconds"] = time.perf_counter() - t0
        self.broker = broker
        return str(broker.bootstrap)

    async def start(self, *, api: bool = True, worker: bool = True) -> None:
        """Connect to (or start) Kafka, create topics, start the producer and the worker."""
        if self.settings.kafka_bootstrap:
            self.bootstrap = self.settings.kafka_bootstrap
        else:
            self.bootstrap = await asyncio.to_thread(self.start_local_broker)
        await ensure_topics(self.settings.stream_config, self.bootstrap)
        if api:
            self.producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_batch_size=1024 * 1024,
                compression_type=None,
            )
            await self.producer.start()
        if worker:
            await self.start_worker()
            self.start_deliverers()
        await self.start_relay()

    def start_deliverers(self) -> None:
        """Email (and later webhooks, ERP sync) sent as soon as they are due."""
        from meterline import deliverers

        interval = self.settings.delivery_interval_seconds
        if interval > 0:
            self.deliverer_task = asyncio.create_task(
                deliverers.run(self, interval), name="deliverers"
            )

    async def start_relay(self) -> None:
        """Relay the domain-event outbox to billing-events from this process."""
        assert self.bootstrap is not None
        producer = self.producer
        if producer is None:
            producer = self.relay_producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
        config = self.settings.stream_config
        self.relay = EventRelay(
            self.sessions,
            producer,
            config.billing_events_topic,
            self.clock,
            AlertWatch(self.sessions, self.usage),
            config.alerts_topic,
        )
        self.relay_task = asyncio.create_task(self.relay.run(), name="domain-event-relay")

    async def start_worker(self) -> None:
        assert self.bootstrap is not None
        sink = ClickHouseSink(self.clickhouse, self.settings.clickhouse_database, self.clock)
        app, self.stream_stats = create_stream_app(
            self.settings.stream_config,
            self.bootstrap,
            sink,
            self.tenant_known,
            self.stream_stats,
            clock=self.clock,
            hook=MeteringSteps(
                QuotaWatch(self.sessions, self.usage),
                AlertWatch(self.sessions, self.usage),
                ProgressiveWatch(
                    self.sessions, self.usage, self.tax, self.settings.invoice_due_days
                ),
                self.settings.stream_config,
                self.clock,
                self.stream_stats,
            ),
        )
        self.stream_app = app
        await app.start()
        config = self.settings.stream_config
        probe = lag.LagProbe(self.bootstrap, config.consumer_group, config.events_topic)
        self.lag_task = asyncio.create_task(
            lag.watch(probe, config.events_topic, lag.faust_assignment(app), self.stream_stats.lag),
            name="consumer-lag",
        )

    async def tenant_known(self, tenant_id: str) -> bool:
        def check() -> bool:
            with self.sessions() as session:
                return tenant_exists(session, tenant_id)

        return await asyncio.to_thread(check)

    async def stop(self) -> None:
        if self.lag_task is not None:
            self.lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.lag_task
            self.lag_task = None
        if self.deliverer_task is not None:
            self.deliverer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.deliverer_task
            self.deliverer_task = None
        if self.relay_task is not None:
            self.relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.relay_task
            self.relay_task = None
        if self.relay_producer is not None:
            await self.relay_producer.stop()
            self.relay_producer = None
        if self.stream_app is not None:
            try:
                await self.stream_app.stop()
            except Exception:  # pragma: no cover - shutdown is best effort
                log.exception("stopping the stream app failed")
            self.stream_app = None
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
            self.broker = None

    def close(self) -> None:
        self.billing_executor.shutdown(wait=True, cancel_futures=True)
        self.tax.close()
        self.engine.dispose()
        close = getattr(self.clickhouse, "close", None)
        if close:
            close()


class MeteringSteps:
    """The worker's steps after each stored batch: quotas (`invoicing.quotas`), alerts
    (`invoicing.alerts`) and progressive billing (`invoicing.progressive`); the
    crossings and triggers they recorded are produced to quota-exceeded and
    usage-alerts, then marked published (the ledger rows are the outbox). Their domain
    events go out through the `EventRelay`."""

    def __init__(
        self,
        quotas: QuotaWatch,
        alerts: AlertWatch,
        progressive: ProgressiveWatch,
        config: StreamConfig,
        clock: Clock,
        stats: StreamStats | None = None,
    ) -> None:
        self._stats = stats
        self._quotas = quotas
        self._alerts = alerts
        self._progressive = progressive
        self._config = config
        self._clock = clock

    async def after_write(self, events: Sequence[UsageEvent]) -> Sequence[Outbound]:
        now = self._clock.now()
        began = time.perf_counter()
        crossings = await asyncio.to_thread(self._quotas.after_write, events, now)
        quotas_done = time.perf_counter()
        triggers = await asyncio.to_thread(self._alerts.after_write, events, now)
        alerts_done = time.perf_counter()
        await asyncio.to_thread(self._progressive.after_write, events, now)
        if self._stats is not None:
            self._stats.spent("step:quotas", quotas_done - began)
            self._stats.spent("step:alerts", alerts_done - quotas_done)
            self._stats.spent("step:progressive", time.perf_counter() - alerts_done)
        return [
            *(Outbound(self._config.quota_topic, c.key, c.message(), c) for c in crossings),
            *(Outbound(self._config.alerts_topic, t.key, t.message(), t) for t in triggers),
        ]

    async def sent(self, messages: Sequence[Outbound]) -> None:
        now = self._clock.now()
        crossings = [m.ref for m in messages if isinstance(m.ref, Crossing)]
        triggers = [m.ref for m in messages if isinstance(m.ref, Trigger)]
        await asyncio.to_thread(self._quotas.published, crossings, now)
        await asyncio.to_thread(self._alerts.published, triggers, now)


RELAY_INTERVAL_SECONDS = 0.5
RELAY_TRIGGERS_AFTER_SECONDS = 3.0


class EventRelay:
    """Produces the domain-event outbox (`invoicing.events`) to `billing-events`.

    Every running process relays: each half second the unpublished events, oldest
    first, are sent (keyed by event id, acks=all) and then marked published. A crash
    between the two sends them again: consumers drop an id they have seen."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        producer: AIOKafkaProducer,
        topic: str,
        clock: Clock,
        alerts: AlertWatch | None = None,
        alerts_topic: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._producer = producer
        self._topic = topic
        self._clock = clock
        self._alerts = alerts
        self._alerts_topic = alerts_topic
        self.relayed = 0

    async def relay_once(self) -> int:
        """Send what is pending; the number sent."""
        await self._relay_triggers()
        batch = await asyncio.to_thread(domain_events.pending, self._sessions)
        if not batch:
            return 0
        await self._send(self._topic, batch)
        await asyncio.to_thread(domain_events.published, self._sessions, batch, self._clock.now())
        self.relayed += len(batch)
        return len(batch)

    async def _relay_triggers(self) -> None:
        """Alert triggers recorded outside a stream batch (a bill run's wallet debits)
        go to usage-alerts from here; the worker sends those of its batches itself."""
        if self._alerts is None or self._alerts_topic is None:
            return
        triggers = await asyncio.to_thread(self._alerts.pending, None)
        # A trigger of a stream batch is sent by the worker right after the batch: only
        # those still unsent after a few seconds are this relay's (no routine repeats).
        settled = self._clock.now() - timedelta(seconds=RELAY_TRIGGERS_AFTER_SECONDS)
        triggers = [t for t in triggers if t.at <= settled]
        if not triggers:
            return
        await self._send(self._alerts_topic, triggers)
        await asyncio.to_thread(self._alerts.published, triggers, self._clock.now())

    async def _send(self, topic: str, items: Sequence[DomainEvent | Trigger]) -> None:
        """Produce each item's message under its key and wait until Kafka has them all."""
        futures = [await self._producer.send(topic, i.message(), key=i.key) for i in items]
        await asyncio.gather(*futures)

    async def run(self) -> None:
        while True:
            try:
                while await self.relay_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relaying domain events failed; retrying")
            await asyncio.sleep(RELAY_INTERVAL_SECONDS)
