"""Pytest plugin: one real Kafka broker per test session.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.kafka_plugin"]``.

Set ``METERLINE_KAFKA_BOOTSTRAP`` to run against an existing broker instead (e.g. one
from ``infra/kafka.sh start``); otherwise the first test that asks for Kafka starts a
``LocalKafkaBroker`` on free ports in a temporary folder, and the session stops it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka_local import LocalKafkaBroker

BOOTSTRAP_ENV = "METERLINE_KAFKA_BOOTSTRAP"

T = TypeVar("T")


def run_sync(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    # Called from an async test: its loop is busy, so use a loop in another thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaBroker | None]:
    """The session's own broker, or None when METERLINE_KAFKA_BOOTSTRAP names one."""
    if os.environ.get(BOOTSTRAP_ENV):
        yield None
        return
    broker = LocalKafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafkaBroker | None) -> str:
    """``host:port`` of a running Kafka broker."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        return external
    assert kafka_broker is not None
    return kafka_broker.bootstrap


async def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name=name, num_partitions=partitions, replication_factor=1)]
        )
        for topic, code, *message in response.topic_errors:
            if code != 0:
                raise RuntimeError(f"creating topic {topic!r} failed: error {code} {message}")
        # Creation is acknowledged before every partition has a leader; producers and
        # consumers started right away would otherwise race the broker.
        while True:
            described = await admin.describe_topics([name])
            ready = [
                part
                for info in described
                if info["error_code"] == 0
                for part in info["partitions"]
                if part["error_code"] == 0 and part["leader"] >= 0
            ]
            if len(ready) == partitions:
                return
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names, timeout_ms=10_000)
    finally:
        await admin.close()


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory ``kafka_topic(partitions=4, prefix="test")`` -> name of a new, empty topic.

    Topics are deleted again when the test ends (best effort), which matters when the
    broker is shared through METERLINE_KAFKA_BOOTSTRAP.
    """
    created: list[str] = []

    def create(partitions: int = 4, prefix: str = "test", timeout: float = 30) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        run_sync(
            lambda: asyncio.wait_for(_create_topic(kafka_bootstrap, name, partitions), timeout)
        )
        created.append(name)
        return name

    yield create
    if created:
        with contextlib.suppress(Exception):
            run_sync(lambda: _delete_topics(kafka_bootstrap, created))
