"""The ingest front's process (`meterline front`, started by `meterline serve`).

See api/front.py: POST /api/v1/events here, everything else forwarded to the main
process. This holds what that route needs: the settings, the clock, the ledger (API
keys; SQLite in WAL mode is shared safely with the main process) and a producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from invoicing.db import make_engine, make_sessionmaker
from meterline.settings import Settings


@dataclass
class FrontRuntime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = SYSTEM_CLOCK
    producer: AIOKafkaProducer | None = field(default=None)

    @classmethod
    def open(cls, settings: Settings) -> FrontRuntime:
        engine = make_engine(settings.resolved_database_url)
        return cls(settings=settings, engine=engine, sessions=make_sessionmaker(engine))

    async def start(self) -> None:
        if not self.settings.kafka_bootstrap:
            raise RuntimeError("the ingest front needs METERLINE_KAFKA_BOOTSTRAP")
        # The same producer settings as the main process's (meterline.runtime).
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=1024 * 1024,
            compression_type=None,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        self.engine.dispose()
