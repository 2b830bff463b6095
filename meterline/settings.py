"""All configuration, read from the environment with the prefix METERLINE_.

The embedded default needs none: a local Kafka broker started from the official
jars, the in-process ClickHouse engine and a SQLite ledger, all under the data dir.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from invoicing.email.smtp import SmtpConfig
from invoicing.secrets import SecretBox
from streams.config import StreamConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METERLINE_", extra="ignore")

    data_dir: Path = Field(default=Path(".meterline"), description="Where embedded data lives.")
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset = start a local broker."
    )
    kafka_port: int = Field(default=9092, description="Port of the local broker (embedded).")
    clickhouse_dsn: str | None = Field(
        default=None,
        description="e.g. http://default:@localhost:8123/meterline; unset = chdb:///<data_dir>/clickhouse",
    )
    clickhouse_database: str = "meterline"
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the ledger; unset = SQLite in the data dir."
    )

    events_topic: str = "usage-events"
    dlq_topic: str = "usage-events-dlq"
    alerts_topic: str = "usage-alerts"
    quota_topic: str = "quota-exceeded"
    billing_events_topic: str = "billing-events"  # the domain-event outbox, relayed
    topic_partitions: int = 4
    consumer_group: str = "meterline-streams"

    # Sink batching: a batch is written to ClickHouse when it holds this many events
    # or when this many seconds passed since its first event.
    sink_batch_size: int = 20_000
    sink_batch_seconds: float = 0.25

    # Pipeline stage 8: which tax provider rates invoices (docs/tax-providers.md).
    tax_provider: str = Field(
        default="local", description='"local" (each tenant\'s rate table), "avalara" or "vertex".'
    )
    tax_provider_config: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,  # holds license keys and client secrets
        description="The provider's settings as a JSON object (METERLINE_TAX_PROVIDER_CONFIG), "
        'e.g. {"baseUrl": ..., "accountId": ..., "licenseKey": ..., "companyCode": ...}.',
    )

    # `meterline serve`: POST /events in a second process (the ingest front), so the
    # embedded mode uses two cores; the main process keeps ClickHouse and the worker.
    ingest_front: bool = True

    max_events_per_request: int = 10_000
    # A body over this is a 413 (10,000 events of ~1 KB fit with room to spare).
    max_request_bytes: int = 10 * 2**20
    invoice_due_days: int = 30
    # `meterline serve` (and `meterline scheduler`) run every time-driven job this
    # often (API.md: each minute); 0 keeps serve from running them.
    scheduler_interval_seconds: float = 60
    log_level: str = "WARNING"
    # GET /metrics (docs/metrics.md): open unless a token is set, then it wants
    # `Authorization: Bearer <token>`. Processes without the HTTP API (`meterline worker`,
    # `meterline scheduler`) serve it on metrics_host:metrics_port (0: not at all).
    metrics_token: str | None = Field(default=None, repr=False)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100

    # Email (docs/email.md): invoices, credit notes and receipts by SMTP; no host = none.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_from: str = Field(default="billing@localhost", description="The From address.")
    smtp_timeout_seconds: float = 30.0
    # Send the invoice at finalize, the credit note at issue, a receipt per payment
    # (to the customer's email); false leaves only the explicit send requests.
    email_automatic: bool = True
    # Webhooks (docs/webhooks.md): refuse loopback and private destinations.
    webhook_block_private: bool = False
    # Encrypts secrets at rest; unset = a key file in the data dir (set it in server
    # mode: every process must share it).
    secret_key: str | None = Field(default=None, repr=False)
    # How often `serve` (or `worker`) looks for deliveries due; 0 leaves them to the
    # scheduler passes.
    delivery_interval_seconds: float = 1.0
    # Where users reach this server: OAuth callbacks (ERP sync) are built from it.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")

    @property
    def erp_redirect_uri(self) -> str:
        """The OAuth callback ERPs send the user back to."""
        return f"{self.public_url.rstrip('/')}/api/v1/erp/oauth/callback"

    @cached_property
    def resolved_clickhouse_dsn(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ledger.sqlite3').resolve()}"

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def embedded_clickhouse(self) -> bool:
        return self.resolved_clickhouse_dsn.startswith("chdb:")

    @property
    def stream_config(self) -> StreamConfig:
        """What the stream workers and the topic set-up need of these settings."""
        return StreamConfig(
            events_topic=self.events_topic,
            dlq_topic=self.dlq_topic,
            alerts_topic=self.alerts_topic,
            quota_topic=self.quota_topic,
            billing_events_topic=self.billing_events_topic,
            topic_partitions=self.topic_partitions,
            consumer_group=self.consumer_group,
            sink_batch_size=self.sink_batch_size,
            sink_batch_seconds=self.sink_batch_seconds,
        )

    @property
    def smtp(self) -> SmtpConfig | None:
        """The SMTP server email goes through, or None: email is off."""
        if not self.smtp_host:
            return None
        return SmtpConfig(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_from,
            username=self.smtp_username,
            password=self.smtp_password,
            security=self.smtp_security,
            timeout=self.smtp_timeout_seconds,
        )

    @cached_property
    def secrets(self) -> SecretBox:
        """The key that seals the secrets the ledger keeps."""
        if self.secret_key:
            return SecretBox.from_passphrase(self.secret_key)
        return SecretBox.from_key_file(self.data_dir / "secret.key")
