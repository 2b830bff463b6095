"""A stream worker killed with SIGKILL mid-stream (issue 7, item 9), as processes:
`meterline worker` (server mode) consumes a backlog from the real broker into its own
ClickHouse engine; it is killed with -9 after some batches are committed and others
are in hand, and restarted on the same data. Every event is stored exactly once
(replayed batches are deduplicated), every offset committed, the sum exact.

One chDB path is one process: the engine is read after the workers exit, by a third
process (`python -c`), never by this one (which holds the session's own engine)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 40_000
PARTITIONS = 4


def _env(data_dir: Path, bootstrap: str, suffix: str) -> dict[str, str]:
    return {
        **os.environ,
        "METERLINE_DATA_DIR": str(data_dir),
        "METERLINE_KAFKA_BOOTSTRAP": bootstrap,
        "METERLINE_EVENTS_TOPIC": f"ev-kill-{suffix}",
        "METERLINE_DLQ_TOPIC": f"dlq-kill-{suffix}",
        "METERLINE_ALERTS_TOPIC": f"alerts-kill-{suffix}",
        "METERLINE_QUOTA_TOPIC": f"quota-kill-{suffix}",
        "METERLINE_BILLING_EVENTS_TOPIC": f"billing-kill-{suffix}",
        "METERLINE_CONSUMER_GROUP": f"grp-kill-{suffix}",
        "METERLINE_TOPIC_PARTITIONS": str(PARTITIONS),
        "METERLINE_SINK_BATCH_SIZE": "500",
    }


def _meterline(*args: str) -> list[str]:
    return [sys.executable, "-m", "meterline.cli", *args]


async def _committed(bootstrap: str, env: dict[str, str]) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=env["METERLINE_CONSUMER_GROUP"],
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topic = env["METERLINE_EVENTS_TOPIC"]
        offsets = [await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)]
        return sum(o or 0 for o in offsets)
    finally:
        await consumer.stop()


async def _produce(bootstrap: str, topic: str, tenant: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for i in range(EVENTS):
            event = {
                "tenantId": tenant,
                "id": f"e{i}",
                "customerId": f"c{i % 50}",
                "metric": "gb",
                "timestamp": "2026-10-05T10:00:00Z",
                "value": "0.25",
            }
            await producer.send(topic, orjson.dumps(event), key=f"c{i % 50}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


def _wait_committed(bootstrap: str, env: dict[str, str], low: int, limit: float) -> int:
    deadline = time.monotonic() + limit
    while True:
        committed = asyncio.run(_committed(bootstrap, env))
        if committed >= low or time.monotonic() > deadline:
            return committed
        time.sleep(0.2)


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _meterline("worker"), env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def test_kill_9_mid_stream_then_restart_stores_every_event_once(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    suffix = os.urandom(4).hex()
    env = _env(tmp_path / "data", kafka_bootstrap, suffix)
    created = subprocess.run(
        _meterline("tenants", "create", "kill", "--json"),
        env=env, cwd=ROOT, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    tenant = json.loads(created.stdout)["tenantId"]
    log = tmp_path / "worker.log"

    # The events topic as the worker would create it, then a backlog to work through.
    asyncio.run(_create_topic(kafka_bootstrap, env["METERLINE_EVENTS_TOPIC"]))
    asyncio.run(_produce(kafka_bootstrap, env["METERLINE_EVENTS_TOPIC"], tenant))
    first = _worker(env, log)
    try:
        done = _wait_committed(kafka_bootstrap, env, 1, limit=120)
        assert done > 0, f"the worker committed nothing: {log.read_text()[-2000:]}"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    at_kill = asyncio.run(_committed(kafka_bootstrap, env))

    second = _worker(env, log)
    try:
        committed = _wait_committed(kafka_bootstrap, env, EVENTS, limit=180)
        assert committed == EVENTS, f"committed {committed}: {log.read_text()[-2000:]}"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)

    count = subprocess.run(
        [sys.executable, "-c", _COUNT, str(tmp_path / "data"), tenant],
        env=env, cwd=ROOT, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    distinct, total = json.loads(count.stdout)
    assert (distinct, total) == (EVENTS, "10000")  # 40,000 × 0.25
    # The kill came mid-stream: part of the backlog was left to the second worker.
    assert at_kill < EVENTS, f"the first worker finished before the kill ({at_kill})"


_COUNT = """
import json, sys
from meterline.settings import Settings
from meterline.clickhouse import connect_and_migrate
settings = Settings(data_dir=sys.argv[1])
client = connect_and_migrate(settings.resolved_clickhouse_dsn, settings.clickhouse_database)
distinct, total = client.query(
    f"SELECT count(), sum(value) FROM {settings.clickhouse_database}.usage_events FINAL "
    "WHERE tenant_id = {t:String}", parameters={"t": sys.argv[2]},
).result_rows[0]
print(json.dumps([int(distinct), format(total.normalize(), "f")]))
"""
