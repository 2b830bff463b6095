"""The ClickHouse sink: writes validated events, retrying until ClickHouse takes them.

Writing is separate from parsing (streams.schema) and from committing offsets (the
agent acks only after `write` returned), so a crash at any point leaves the events
uncommitted in Kafka; their redelivery is harmless because usage_events collapses
duplicates of (tenant, event id).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.exceptions import DataError, OperationalError, ProgrammingError

from core.clock import SYSTEM_CLOCK, Clock
from streams.schema import Rejection, UsageEvent

EVENT_COLUMNS = [
    "tenant_id", "event_id", "customer_id", "metric", "ts", "value",
    "properties", "ingested_at", "version",
]  # fmt: skip
REJECTED_COLUMNS = ["tenant_id", "event_id", "reason", "payload", "source", "rejected_at"]
_MAX_VERSION = 2**63


def event_rows(events: Sequence[UsageEvent], ingested_at: datetime) -> list[list[Any]]:
    """Rows for usage_events; earlier ingestion gets the higher version (first write wins)."""
    version = _MAX_VERSION - int(ingested_at.timestamp() * 1_000_000)
    return [
        [e.tenant_id, e.event_id, e.customer_id, e.metric, e.timestamp, e.value,
         e.properties, ingested_at, version]
        for e in events
    ]  # fmt: skip


class WriteRefused(Exception):
    """ClickHouse refuses these rows (the same rows would fail again): the worker
    bisects the batch to find them, dead-letters them alone and goes on."""


def is_refusal(exc: BaseException) -> bool:
    """Whether a write failed because of the rows (refused: bisect) rather than because
    of the store (transient: retry, consumption pauses). A connection, timeout or
    server-unavailable error is transient; a conversion or data error is a refusal."""
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return False
    if isinstance(exc, OSError):
        return False
    return isinstance(exc, DataError | ProgrammingError | ValueError | TypeError | OverflowError)


class ClickHouseSink:
    def __init__(self, client: Any, database: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._client = client
        # Stamps ingested_at: late-usage billing compares it with invoice finalization.
        self._clock = clock
        self._events_table = f"{database}.usage_events"
        self._rejected_table = f"{database}.rejected_events"

    def write_events(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        rows = event_rows(events, self._clock.now())
        self._client.insert(self._events_table, rows, column_names=EVENT_COLUMNS)

    def write_rejections(self, rejected: Sequence[tuple[str, Rejection, str, str]]) -> None:
        """(tenant id, rejection, raw payload, source) rows for rejected_events."""
        if not rejected:
            return
        now = self._clock.now()
        rows = [
            [tenant, r.event_id or "", r.reason, payload[:10_000], source, now]
            for tenant, r, payload, source in rejected
        ]
        self._client.insert(self._rejected_table, rows, column_names=REJECTED_COLUMNS)
