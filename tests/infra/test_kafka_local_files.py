"""The local Kafka broker's handling of its own folder, without starting Kafka."""

from __future__ import annotations

from pathlib import Path

from infra.kafka_local import LocalKafkaBroker


def test_stop_without_start_is_noop(tmp_path: Path) -> None:
    broker = LocalKafkaBroker(tmp_path)
    broker.stop()
    broker.stop()
    assert not broker.is_running()
