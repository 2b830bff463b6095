"""What the stream layer needs to know, built by the composition root from the settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamConfig:
    """Topics, partitions, consumer group and sink batching of the stream workers."""

    events_topic: str = "usage-events"
    dlq_topic: str = "usage-events-dlq"
    alerts_topic: str = "usage-alerts"
    quota_topic: str = "quota-exceeded"
    billing_events_topic: str = "billing-events"
    topic_partitions: int = 4
    consumer_group: str = "meterline-streams"
    sink_batch_size: int = 20_000
    sink_batch_seconds: float = 0.25

    @property
    def topic_names(self) -> list[str]:
        return [
            self.events_topic,
            self.dlq_topic,
            self.alerts_topic,
            self.quota_topic,
            self.billing_events_topic,
        ]
