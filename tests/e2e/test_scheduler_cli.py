"""`meterline scheduler --once --at` and `meterline bill-run` as users run them: beside
a running `meterline serve` of the same data dir (which owns the engine, so the
commands hand their job to it over the local control channel) and alone once the
server has stopped. Time travels with `--at`; a second pass at the same instant
changes nothing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.serve import serve_env, wait_ready
from tests.helpers.smtp_server import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "meterline.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    # rich wraps long lines at the terminal width: compare on joined words
    return " ".join((done.stdout + done.stderr).split())


def test_scheduler_and_bill_run_beside_serve_then_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mail = SmtpServer()
    mail.start()
    smtp = {f"METERLINE_{key.upper()}": str(value) for key, value in mail.settings().items()}
    # this test drives every pass itself with --at (deliveries included)
    env = serve_env(
        data,
        METERLINE_SCHEDULER_INTERVAL_SECONDS="0",
        METERLINE_DELIVERY_INTERVAL_SECONDS="0",
        COLUMNS="200",
        **smtp,
    )
    creds = json.loads(_cli(env, "tenants", "create", "sched", "--json"))
    tenant = creds["tenantId"]
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "meterline.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {creds['apiKey']}", "X-Tenant-Id": tenant}
    client = httpx.Client(base_url=base, headers=headers, timeout=60)

    def ok(method: str, url: str, **kwargs: Any) -> Any:
        response = client.request(method, url, **kwargs)
        assert response.status_code < 300, f"{method} {url}: {response.text}"
        return response.json()

    try:
        wait_ready(serve, port, tmp_path / "serve.log")
        control = data / "control.json"
        assert control.exists() and (control.stat().st_mode & 0o777) == 0o600
        ok("POST", "/customers", json={"externalId": "acme", "name": "Acme", "currency": "USD",
                                       "netPaymentTermDays": 10,
                                       "email": "ap@acme.test"})  # fmt: skip
        ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "count"})
        ok("POST", "/plans", json={"code": "base", "name": "Base", "currency": "USD",
                                   "interval": "monthly", "baseFee": "49.00",
                                   "charges": []})  # fmt: skip
        ok("POST", "/subscriptions", json={"customerId": "acme", "planCode": "base",
                                           "startDate": "2026-10-01T00:00:00Z"})  # fmt: skip

        # bill-run beside serve: the server runs it and the command prints its result
        out = _cli(env, "bill-run", "--period", "2026-10", "--tenant", tenant)
        assert ": completed, 1 invoices, 0 failed" in out, out
        [draft] = ok("GET", "/invoices")["data"]
        assert (draft["status"], draft["total"]) == ("DRAFT", "49.00")

        # period close a few minutes into November: October is billed already, the
        # draft's grace period (0 days) is over, so it is finalized as of --at
        out = _cli(env, "scheduler", "--once", "--at", "2026-11-01T00:05:00Z")
        assert f"{tenant}: finalized 1 invoices" in out and "email: 1 sent" in out, out
        [email] = mail.received
        assert email.rcpt_tos == ["ap@acme.test"]
        assert email.message["Date"] == "Sun, 01 Nov 2026 00:05:00 +0000"  # as of --at
        invoice = ok("GET", f"/invoices/{draft['id']}")
        assert (invoice["status"], invoice["issuedAt"], invoice["dueAt"]) == (
            "OPEN", "2026-11-01T00:05:00Z", "2026-11-11T00:05:00Z",
        )  # fmt: skip

        # one day after dueAt: OVERDUE and dunning step 1; the same --at again: nothing
        at = "2026-11-12T00:05:00Z"
        out = _cli(env, "scheduler", "--once", "--at", at)
        assert f"{tenant}: 1 invoices overdue" in out and f"{tenant}: 1 dunning steps" in out, out
        assert "nothing to do" in _cli(env, "scheduler", "--once", "--at", at)
        assert ok("GET", f"/invoices/{draft['id']}")["status"] == "OVERDUE"
        steps = ok("GET", f"/invoices/{draft['id']}/dunning")["data"]
        assert [(s["step"], s["at"], s["result"]) for s in steps] == [(1, at, "reminded")]
    finally:
        mail.stop()
        client.close()
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert not (data / "control.json").exists()  # withdrawn on a clean stop

    # alone (the server stopped): the command opens the stores itself
    out = _cli(env, "scheduler", "--once", "--at", "2026-12-11T00:05:00Z")
    assert f"{tenant}: 1 invoices uncollectible" in out, out
    assert "4 dunning steps" in out, out
