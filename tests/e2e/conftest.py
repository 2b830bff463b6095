"""The live stack of the end-to-end tests: API + stream worker on real Kafka and chDB.

The stack lives for the e2e package only. Its threads (uvicorn, the Faust worker and
aiokafka's fetcher, which reshuffles the global `random` on every fetch) must not run
during the rest of the suite: besides taking CPU, they change the global random state
while hypothesis draws examples, which hypothesis reports as a strategy using the
`random` module (HypothesisDeprecationWarning) in tests that never touch it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CH_DATABASE, Stack


@pytest.fixture(scope="package")
def stack(
    kafka_bootstrap: str, chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    import socket

    import uvicorn

    from api.app import create_app
    from meterline.runtime import Runtime
    from meterline.settings import Settings

    data_dir = tmp_path_factory.mktemp("stack")
    suffix = os.urandom(3).hex()
    settings = Settings(
        data_dir=data_dir,
        kafka_bootstrap=kafka_bootstrap,
        clickhouse_dsn=f"chdb://{chdb_dir}",
        clickhouse_database=CH_DATABASE,
        database_url=f"sqlite:///{data_dir / 'ledger.sqlite3'}",
        # Own topics and group per test session: a shared external broker stays clean.
        events_topic=f"usage-events-{suffix}",
        dlq_topic=f"usage-events-dlq-{suffix}",
        alerts_topic=f"usage-alerts-{suffix}",
        quota_topic=f"quota-exceeded-{suffix}",
        consumer_group=f"meterline-test-{suffix}",
        sink_batch_seconds=0.05,
    )
    runtime = Runtime.open(settings)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive(), "the API server died while starting"
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    yield Stack(f"http://127.0.0.1:{port}", runtime, data_dir)
    server.should_exit = True
    thread.join(timeout=30)
    runtime.close()
