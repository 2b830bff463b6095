"""The Kafka topics of the pipeline, created up front with the configured partitions."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from meterline.settings import Settings

log = logging.getLogger(__name__)


def topic_names(settings: Settings) -> list[str]:
    return [settings.events_topic, settings.dlq_topic, settings.alerts_topic, settings.quota_topic]


async def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create the pipeline's topics if missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, 1) for name in missing]
                )
    finally:
        await admin.close()
