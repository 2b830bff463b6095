"""GET /metrics of the processes that serve no HTTP API: `meterline worker` and
`meterline scheduler` listen on METERLINE_METRICS_HOST:METERLINE_METRICS_PORT
(127.0.0.1:9100 by default; the compose stack opens it to its network). The listener
runs in a thread of its own, so a busy event loop or a long scheduler pass never
makes a scrape time out; it reads the worker's stats as they stand.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from api.metrics import metrics_app
from meterline.settings import Settings
from streams.app import StreamStats

log = logging.getLogger(__name__)


@dataclass
class Listener:
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)


def start(settings: Settings, stats: StreamStats | None = None) -> Listener | None:
    """Serve /metrics in a daemon thread; None when metrics_port is 0."""
    if not settings.metrics_port:
        return None
    import uvicorn

    app = metrics_app(settings.metrics_token, stats, settings.events_topic)
    config = uvicorn.Config(
        app,
        host=settings.metrics_host,
        port=settings.metrics_port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except SystemExit:  # uvicorn exits when the port is taken: the process goes on
            log.warning(
                "no /metrics listener: %s:%d is not free",
                settings.metrics_host,
                settings.metrics_port,
            )

    thread = threading.Thread(target=run, name="metrics-listener", daemon=True)
    thread.start()
    return Listener(server, thread)
