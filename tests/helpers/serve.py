"""`meterline serve` as a subprocess, for the tests that run the product as users do:
an environment of the embedded default on a data dir, and the wait until it is ready."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment for the embedded default under `data_dir` (a free
    Kafka port, no external stores), with `extra` settings on top."""
    env = {**os.environ, "METERLINE_DATA_DIR": str(data_dir), "METERLINE_KAFKA_PORT": "0"}
    for key in ("METERLINE_KAFKA_BOOTSTRAP", "METERLINE_CLICKHOUSE_DSN", "METERLINE_DATABASE_URL"):
        env.pop(key, None)
    env.update(extra)
    return env


def wait_ready(serve: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 180) -> None:
    """Until `GET /readyz` on `port` answers 200; fails with the server's log if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        assert serve.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "meterline serve did not become ready"
        time.sleep(0.3)
