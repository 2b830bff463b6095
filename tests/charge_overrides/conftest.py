"""A tenant's client over a fresh ledger (SQLite and PostgreSQL) whose usage store is
the session's in-process ClickHouse engine, a second tenant over the same ledger, and
`send` storing events with properties."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.stack import CH_DATABASE

OCT_16_NOON = datetime(2026, 10, 16, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[ApiClient]:
    (tmp_path / "a").mkdir()
    with ledger_api(
        ledger_url, tmp_path / "a", now=OCT_16_NOON, secret_key="charge-overrides-tests"
    ) as client:
        client.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        yield client


@pytest.fixture
def other(ledger_url: str, tmp_path: Path, api: ApiClient) -> Iterator[ApiClient]:
    (tmp_path / "b").mkdir()
    with ledger_api(ledger_url, tmp_path / "b", now=OCT_16_NOON) as client:
        yield client


def send(
    api: ApiClient,
    clickhouse: Any,
    customer: str,
    metric: str,
    *events: tuple[str, str, dict[str, str]],
) -> None:
    """Store `customer`'s events of `metric` as (id, value, properties), on Oct 2-9,
    stamped with the API's clock as their ingestion time."""
    rows = [
        UsageEvent(
            api.tenant_id,
            f"{customer}-{event_id}",
            customer,
            metric,
            datetime(2026, 10, 2 + i, tzinfo=UTC),
            Decimal(value),
            properties,
        )
        for i, (event_id, value, properties) in enumerate(events)
    ]
    ClickHouseSink(clickhouse, CH_DATABASE, clock=api.clock).write_events(rows)
