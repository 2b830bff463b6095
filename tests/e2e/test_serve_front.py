"""`meterline serve` as users run it (issue 7, speed: both cores in the embedded mode):
the main process (broker, ClickHouse engine, worker, API) behind the ingest front,
a second process on the public port that answers POST /api/v1/events itself and
forwards every other request. Through the one public port: events accepted and
rejected alone, stored and read back, auth and error answers from either process, the
body limit at the front, and a clean stop of both processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.serve import serve_env, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_answers_through_the_ingest_front(tmp_path: Path) -> None:
    env = serve_env(tmp_path / "data")
    created = subprocess.run(
        [sys.executable, "-m", "meterline.cli", "tenants", "create", "front", "--json"],
        env=env, cwd=ROOT, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    creds = json.loads(created.stdout)
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "meterline.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {creds['apiKey']}", "X-Tenant-Id": creds["tenantId"]}
    try:
        wait_ready(serve, port, tmp_path / "serve.log")
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            events = [
                {"id": "f1", "customerId": "acme", "metric": "calls",
                 "timestamp": "2026-10-05T10:00:00Z"},
                {"id": "f2", "customerId": "acme", "metric": "calls"},
                {"id": "f3", "customerId": "", "metric": "calls"},
            ]  # fmt: skip
            accepted = client.post("/api/v1/events", json={"events": events})
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["accepted"] == 2
            assert [r["index"] for r in accepted.json()["rejected"]] == [2]

            # Forwarded to the main process: the stored events, a 404, a created metric.
            deadline = time.monotonic() + 60
            while True:
                summary = client.get("/api/v1/usage/summary", params={"hours": 24 * 92})
                assert summary.status_code == 200, summary.text
                if sum(row["events"] for row in summary.json()["data"]) >= 1:
                    break  # f2 (now) is in the window; f1 is older
                assert time.monotonic() < deadline, summary.text
                time.sleep(0.3)
            missing = client.get("/api/v1/customers/nope")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
            metric = client.post(
                "/api/v1/metrics", json={"code": "calls", "name": "Calls", "aggregation": "count"}
            )
            assert metric.status_code == 201, metric.text
            assert client.get("/api/v1/metrics/calls").json()["code"] == "calls"
            assert client.get("/api/v1/customers", params={"limit": 5}).json()["data"] == []

            # Auth is checked by each process: the front for events, the main for the rest.
            wrong = {"Authorization": "Bearer nope", "X-Tenant-Id": creds["tenantId"]}
            assert (
                client.post("/api/v1/events", json={"events": []}, headers=wrong).status_code == 401
            )
            assert client.get("/api/v1/metrics", headers=wrong).status_code == 401
            # The body limit holds at the front.
            big = b'{"events": [' + b" " * (11 * 2**20) + b"]}"
            too_big = client.post(
                "/api/v1/events", content=big, headers={"content-type": "application/json"}
            )
            assert too_big.status_code == 413
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(90)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert serve.returncode == 0, output[-3000:]
    # The embedded broker's address, for producers outside (API.md).
    assert "Kafka at 127.0.0.1:" in output and "(topic usage-events)" in output
    assert not _listening(port)  # the front stopped with it
