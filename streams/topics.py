"""The Kafka topics of the pipeline, created up front with the configured partitions."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import StreamConfig

log = logging.getLogger(__name__)


async def ensure_topics(config: StreamConfig, bootstrap: str) -> None:
    """Create the pipeline's topics if missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in config.topic_names if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, config.topic_partitions, 1) for name in missing]
                )
    finally:
        await admin.close()
