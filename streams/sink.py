"""The ClickHouse sink: writes validated events, retrying until ClickHouse takes them.

Writing is separate from parsing (streams.schema) and from committing offsets (the
agent acks only after `write` returned), so a crash at any point leaves the events
uncommitted in Kafka; their redelivery is harmless because usage_events collapses
duplicates of (tenant, event id).
"""

from __future__ import annotations

import re
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


# ClickHouse error codes that are about the rows themselves: the same rows fail again.
# Anything else the server says (too many parts, memory, disk, read-only) is about the
# store and passes: it is retried, never blamed on the events.
_DATA_ERROR_CODES = frozenset({
    6,  # CANNOT_PARSE_TEXT
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    407,  # DECIMAL_OVERFLOW
})  # fmt: skip
_CODE = re.compile(r"Code: (\d+)")


def is_refusal(exc: BaseException) -> bool:
    """Whether a write failed because of the rows (refused: bisect) rather than because
    of the store (transient: retry while consumption pauses). Refusals: the client could
    not convert a row (ValueError, TypeError, OverflowError, clickhouse-connect's
    DataError/ProgrammingError), or the server names a data error code. Everything else,
    known or not, is retried: a store in trouble never dead-letters good events."""
    if isinstance(exc, OperationalError | OSError | TimeoutError):
        return False
    if isinstance(exc, DataError | ProgrammingError | ValueError | TypeError | OverflowError):
        return True
    codes = {int(code) for code in _CODE.findall(str(exc))}
    return bool(codes) and codes <= _DATA_ERROR_CODES


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
