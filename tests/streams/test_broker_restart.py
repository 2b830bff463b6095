"""The broker restarts during ingestion (issue 7, item 9): a broker of this test's own
(the session's broker serves the other tests) goes down while the worker consumes and
comes back on the same port and data; the worker reconnects by itself, and every event
produced before and after is stored exactly once, every offset committed."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infra.kafka_local import LocalKafkaBroker
from streams.app import create_stream_app
from streams.config import StreamConfig
from streams.sink import ClickHouseSink
from tests.conftest import CH_DATABASE
from tests.streams.test_ingest_agent import (
    _committed,
    _create_topics,
    _known,
    _produce,
    _stored,
    _wait,
)
from tests.streams.test_ingest_batches import event_messages

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_broker_restart_during_ingestion_loses_and_doubles_nothing(
    tmp_path: Path, clickhouse: Any
) -> None:
    broker = LocalKafkaBroker(tmp_path / "kafka")
    broker.start()
    suffix = os.urandom(4).hex()
    config = StreamConfig(
        events_topic=f"ev-restart-{suffix}",
        dlq_topic=f"dlq-restart-{suffix}",
        consumer_group=f"grp-restart-{suffix}",
        sink_batch_size=100,
        sink_batch_seconds=0.05,
    )
    tenant = f"t_restart_{suffix}"
    messages = event_messages(tenant, 1_000, value="0.01")
    bootstrap = broker.bootstrap

    async def scenario() -> Any:
        await _create_topics(bootstrap, config)
        await _produce(bootstrap, config.events_topic, messages[:500])
        app, stats = create_stream_app(
            config, bootstrap, ClickHouseSink(clickhouse, CH_DATABASE), _known
        )
        await app.start()
        await _wait(lambda: stats.written >= 100, limit=60)
        await asyncio.to_thread(broker.stop)  # down while the worker is consuming
        await asyncio.sleep(3)
        await asyncio.to_thread(broker.start)  # same port, same data
        await _produce(bootstrap, config.events_topic, messages[500:])
        await _wait(lambda: _stored(clickhouse, tenant)[0] >= 1_000, limit=120)
        await _wait(lambda: stats.consumed >= 1_000, limit=60)
        await asyncio.sleep(1.0)  # the commit interval
        committed = await _committed(bootstrap, config)
        await asyncio.wait_for(app.stop(), 30)
        return committed

    try:
        committed = asyncio.run(scenario())
    finally:
        broker.stop()
    assert committed == 1_000
    assert _stored(clickhouse, tenant)[0] == 1_000
    total = clickhouse.query(
        f"SELECT sum(value) FROM {CH_DATABASE}.usage_events FINAL WHERE tenant_id = {{t:String}}",
        parameters={"t": tenant},
    ).result_rows[0][0]
    assert total == Decimal("10")
