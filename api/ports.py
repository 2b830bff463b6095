"""What the API needs of the running process. `meterline/` builds the object (its
`Runtime`) and hands it to `create_app`; the API never imports the composition root."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from invoicing.email.smtp import SmtpConfig
from invoicing.secrets import SecretBox
from invoicing.tax.service import TaxService
from streams.app import StreamStats
from streams.usage_store import UsageStore


class ApiConfig(Protocol):
    """The settings that change what the API does."""

    @property
    def max_events_per_request(self) -> int: ...
    @property
    def max_request_bytes(self) -> int: ...
    @property
    def events_topic(self) -> str: ...
    @property
    def invoice_due_days(self) -> int: ...
    @property
    def smtp(self) -> SmtpConfig | None: ...
    @property
    def webhook_block_private(self) -> bool: ...
    @property
    def secrets(self) -> SecretBox: ...
    @property
    def erp_redirect_uri(self) -> str: ...
    @property
    def public_url(self) -> str: ...


class IngestRuntime(Protocol):
    """What POST /events needs (and all the ingest front process has): the settings,
    the clock, the ledger (API keys) and a Kafka producer."""

    @property
    def settings(self) -> ApiConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def sessions(self) -> sessionmaker[Session]: ...
    @property
    def producer(self) -> AIOKafkaProducer | None: ...


class ApiRuntime(IngestRuntime, Protocol):
    """The stores, clients and executors that routes use."""

    @property
    def usage(self) -> UsageStore: ...
    @property
    def tax(self) -> TaxService: ...
    @property
    def clickhouse(self) -> Any: ...
    @property
    def bootstrap(self) -> str | None: ...
    @property
    def stream_stats(self) -> StreamStats: ...
    @property
    def billing_executor(self) -> ThreadPoolExecutor: ...
    @property
    def background(self) -> set[Any]: ...

    def session(self) -> AbstractContextManager[Session]:
        """A session whose work commits as one transaction."""
        ...

    async def start(self, *, api: bool = True, worker: bool = True) -> None: ...
    async def stop(self) -> None: ...
    def close(self) -> None: ...
