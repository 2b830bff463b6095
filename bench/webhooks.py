"""Webhook soak: 10,000 domain events to 3 endpoints, one failing half the time, across
a kill -9 of the deliverer; every delivery checked against its signature.

    python -m bench.webhooks [--events 10000] [--kill-after N] [--postgres-url URL]

A real ledger (a SQLite file; the PostgreSQL of --postgres-url instead), a tenant and
three webhook endpoints (`invoicing.webhooks.endpoints.create`) pointing at three
receivers on loopback in this process (threaded `http.server`, HTTP/1.1 keep-alive).
Each receiver checks every request the way docs/webhooks.md tells a receiver to: the
HMAC-SHA256 of the raw body with its endpoint's secret, the headers, the body's `id`
and `type`; and it keeps, per event id, how many attempts it saw and how many it
accepted. Receiver #3 answers 500 to the 1st, 3rd … attempt of each event and 204 to
the 2nd, 4th …: half of its requests fail, and each of its deliveries needs the
product's first retry (after 6.4–8 s: the backoff base is a constant, not a setting,
so the bench lives with it rather than shrinking it).

The outbox gets `quota.exceeded` events (their `data` is their own fields, no object to
render) through `invoicing.events.record`, 100 per transaction; 90 % before the
deliverer starts, 10 % while it is dead. The deliverer is a real `meterline worker`
process (the continuous sender of `serve` / `worker`, on a local Kafka broker it needs
for its stream worker and relay), killed with SIGKILL once the receivers accepted
`--kill-after` deliveries, then started again. What was in flight at the kill is taken
over when its 60 s lease runs out (again the product's constant): the restart costs
up to a minute.

Baseline, measured in the same run: plain signed POSTs of bodies of the same size to
the same receivers from one separate process, 8 in flight per receiver (the sender's
`PER_ENDPOINT`). Prints `name: value` lines, writes the `webhooks` section of
bench/RESULTS.md, and exits 1 if an event is lost, a signature or a body is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from bench.common import ROOT, machine_lines, table, write_section

EVENT_TYPE = "quota.exceeded"
SECRET_KEY = "bench-webhooks-sealing-key"  # METERLINE_SECRET_KEY of the bench and its workers
BATCH = 100  # events per transaction
LATE_SHARE = 0.1  # of the events, written while the deliverer is dead
PER_RECEIVER = 8  # the sender's PER_ENDPOINT: the baseline's concurrency per receiver
COMPLETE_WITHIN = 240.0  # seconds after the restart
BASELINE_POSTS = 3_000  # per receiver


class BenchFailed(Exception):
    pass


# -- the receivers ------------------------------------------------------------------


@dataclass
class Receiver:
    """One tenant's webhook receiver: checks each request, keeps what it accepted."""

    name: str
    secret: str
    flaky: bool  # odd attempts of each event answered 500
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # per event id
    accepted: Counter[str] = field(default_factory=Counter)
    digests: dict[str, bytes] = field(default_factory=dict)  # of the first body per id
    data: dict[str, Any] = field(default_factory=dict)  # `data` of the first body per id
    bad_signatures: int = 0
    bad_requests: int = 0  # headers or body not as documented
    changed_bodies: int = 0  # an attempt whose bytes differ from the first attempt's
    cut_off_requests: int = 0  # the connection closed before the whole body came
    failed_answers: int = 0
    first_at: float | None = None
    last_new_at: float | None = None  # when an event was accepted for the first time

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        """The status to answer."""
        from invoicing.webhooks.signing import verify

        now = time.perf_counter()
        good = verify(self.secret, body, headers.get("x-meterline-signature", ""))
        try:
            parsed = orjson.loads(body)
            event_id, type_ = str(parsed["id"]), str(parsed["type"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            parsed, event_id, type_ = None, "", ""
        shaped = (
            parsed is not None
            and set(parsed) == {"id", "type", "createdAt", "data"}
            and headers.get("content-type") == "application/json"
            and headers.get("x-meterline-event") == type_
            and headers.get("x-meterline-delivery", "").startswith("whd_")
            and headers.get("user-agent") == "Meterline-Webhooks/1"
        )
        digest = hashlib.sha256(body).digest()
        with self.lock:
            self.requests += 1
            if self.first_at is None:
                self.first_at = now
            if not good:
                self.bad_signatures += 1
                return 401
            if not shaped:
                self.bad_requests += 1
                return 400
            self.attempts[event_id] += 1
            first = self.digests.setdefault(event_id, digest)
            if first != digest:
                self.changed_bodies += 1
            if self.flaky and self.attempts[event_id] % 2 == 1:
                self.failed_answers += 1
                return 500
            if not self.accepted[event_id]:
                self.last_new_at = now
                assert parsed is not None
                self.data[event_id] = parsed["data"]
            self.accepted[event_id] += 1
            return 204

    def cut_off(self) -> None:
        with self.lock:
            self.requests += 1
            self.cut_off_requests += 1

    def delivered(self) -> int:
        with self.lock:
            return len(self.accepted)

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.accepted.values() if n > 1)

    def reset(self) -> None:
        with self.lock:
            self.requests = self.bad_signatures = self.bad_requests = 0
            self.changed_bodies = self.failed_answers = self.cut_off_requests = 0
            self.attempts.clear()
            self.accepted.clear()
            self.digests.clear()
            self.data.clear()
            self.first_at = self.last_new_at = None


@contextmanager
def receivers_running(receivers: Sequence[Receiver]) -> Iterator[None]:
    servers = []
    for receiver in receivers:
        servers.append(_serve(receiver))
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the killed worker dropped is expected; anything else is shown."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

        def do_POST(self) -> None:  # http.server's hook name
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: nothing to answer
                receiver.cut_off()
                self.close_connection = True
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.send_response(receiver.handle(headers, body))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = _QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/{receiver.name}"
    threading.Thread(target=server.serve_forever, daemon=True, name=receiver.name).start()
    return server


# -- the ledger ---------------------------------------------------------------------


@dataclass
class Ledger:
    url: str
    tenant_id: str
    endpoint_ids: list[str]


def set_up(url: str, receivers: Sequence[Receiver]) -> Ledger:
    """Migrate, a tenant, one endpoint per receiver (secrets sealed with SECRET_KEY)."""
    from infra.migrate import migrate_ledger
    from invoicing.db import make_engine, make_sessionmaker, transaction
    from invoicing.secrets import SecretBox
    from invoicing.tenants import create_tenant
    from invoicing.webhooks import endpoints

    migrate_ledger(url)
    engine = make_engine(url)
    box = SecretBox.from_passphrase(SECRET_KEY)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            tenant_id = create_tenant(session, "webhook soak").tenant_id
            now = datetime.now(UTC)
            ids = [
                endpoints.create(
                    session,
                    tenant_id,
                    endpoints.EndpointSpec(
                        url=r.url, secret=r.secret, events=[EVENT_TYPE], description=r.name
                    ),
                    box,
                    now,
                ).id
                for r in receivers
            ]
    finally:
        engine.dispose()
    return Ledger(url, tenant_id, ids)


def write_events(ledger: Ledger, first: int, count: int) -> None:
    """`count` quota.exceeded events into the outbox, BATCH per transaction."""
    from invoicing import events
    from invoicing.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(ledger.url)
    sessions = make_sessionmaker(engine)
    try:
        for start in range(first, first + count, BATCH):
            with transaction(sessions) as session:
                now = datetime.now(UTC)
                for n in range(start, min(start + BATCH, first + count)):
                    crossing = f"qc_soak_{n:06d}"
                    data = {
                        "id": crossing,
                        "tenantId": ledger.tenant_id,
                        "subscriptionId": f"sub_soak_{n % 500:04d}",
                        "customerId": f"cus_soak_{n % 500:04d}",
                        "metric": "api_calls",
                        "cap": "100000",
                        "used": f"{100000 + n}",
                        "periodStart": "2026-11-01T00:00:00Z",
                        "at": now.isoformat().replace("+00:00", "Z"),
                    }
                    events.record(session, ledger.tenant_id, EVENT_TYPE, crossing, data, now)
    finally:
        engine.dispose()


def outbox(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Every event of the tenant: id → data."""
    from sqlalchemy import select

    from invoicing.db import make_engine, make_sessionmaker
    from invoicing.models import DomainEventRow

    engine = make_engine(ledger.url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(DomainEventRow.id, DomainEventRow.data).where(
                    DomainEventRow.tenant_id == ledger.tenant_id
                )
            ).all()
    finally:
        engine.dispose()
    return {row.id: dict(row.data) for row in rows}


def delivery_log(ledger: Ledger) -> tuple[Counter[str], int]:
    """The ledger's deliveries: count per status, and attempts in all."""
    from sqlalchemy import func, select

    from invoicing.db import make_engine, make_sessionmaker
    from invoicing.models import WebhookDeliveryRow

    engine = make_engine(ledger.url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(
                    WebhookDeliveryRow.status,
                    func.count(),
                    func.sum(WebhookDeliveryRow.attempts),
                )
                .where(WebhookDeliveryRow.tenant_id == ledger.tenant_id)
                .group_by(WebhookDeliveryRow.status)
            ).all()
    finally:
        engine.dispose()
    return Counter({r[0]: int(r[1]) for r in rows}), sum(int(r[2] or 0) for r in rows)


# -- the deliverer ------------------------------------------------------------------


@dataclass
class Deliverer:
    """`meterline worker` in its own process, its output in a log file."""

    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"worker-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meterline.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchFailed(
                f"meterline worker exited with {self.process.returncode}; "
                f"log: {self.log_dir / f'worker-{self.starts}.log'}"
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, whatever was in flight stays leased."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def worker_env(url: str, bootstrap: str, data_dir: Path, tag: str) -> dict[str, str]:
    """The worker's settings (METERLINE_*): this ledger and broker, topics of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    env.update(
        METERLINE_DATA_DIR=str(data_dir),
        METERLINE_DATABASE_URL=url,
        METERLINE_KAFKA_BOOTSTRAP=bootstrap,
        METERLINE_SECRET_KEY=SECRET_KEY,
        METERLINE_TOPIC_PARTITIONS="1",
        METERLINE_CONSUMER_GROUP=f"soak-{tag}",
        METERLINE_LOG_LEVEL="WARNING",
    )
    for topic in ("events", "dlq", "alerts", "quota", "billing_events"):
        env[f"METERLINE_{topic.upper()}_TOPIC"] = f"soak-{tag}-{topic}"
    return env


# -- the soak -----------------------------------------------------------------------


@dataclass
class SoakResult:
    events: int
    endpoints: int
    kill_after: int
    delivered_before_kill: int
    steady_seconds: float  # first request → the kill
    restart_seconds: float  # the kill → the first new acceptance after it
    soak_seconds: float  # first request → the last event's first acceptance
    lost: int  # (endpoint, event) pairs never accepted
    duplicates: int
    failed_attempts: int  # 500s answered
    bad_signatures: int
    bad_requests: int
    changed_bodies: int
    wrong_data: int  # accepted bodies whose `data` is not the outbox's
    cut_off: int  # requests the kill cut short (fewer bytes than Content-Length)
    requests: int
    ledger_statuses: dict[str, int]
    ledger_attempts: int
    per_receiver: list[dict[str, int]]

    @property
    def pairs(self) -> int:
        return self.events * self.endpoints

    @property
    def steady_per_s(self) -> float:
        return self.delivered_before_kill / self.steady_seconds

    @property
    def overall_per_s(self) -> float:
        return (self.pairs - self.lost) / self.soak_seconds

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.bad_signatures
            or self.bad_requests
            or self.changed_bodies
            or self.wrong_data
        )


def make_receivers() -> list[Receiver]:
    return [
        Receiver("receiver-1", "whsec_soak_one_" + "a" * 16, flaky=False),
        Receiver("receiver-2", "whsec_soak_two_" + "b" * 16, flaky=False),
        Receiver("receiver-3", "whsec_soak_three_" + "c" * 16, flaky=True),
    ]


def soak(
    receivers: Sequence[Receiver],
    url: str,
    bootstrap: str,
    work_dir: Path,
    *,
    events: int,
    kill_after: int,
    complete_within: float = COMPLETE_WITHIN,
    progress: Callable[[str], None] = lambda line: None,
) -> SoakResult:
    """The soak, on running receivers: set up, deliver, kill -9 midway, restart, check."""
    ledger = set_up(url, receivers)
    late = int(events * LATE_SHARE)
    started = time.perf_counter()
    write_events(ledger, 0, events - late)
    progress(f"{events - late} events written in {time.perf_counter() - started:.1f} s")
    tag = hashlib.sha256(f"{url}{time.time_ns()}".encode()).hexdigest()[:10]
    deliverer = Deliverer(worker_env(url, bootstrap, work_dir / "worker", tag), work_dir)
    deliverer.start()
    try:
        deadline = time.monotonic() + complete_within
        while sum(r.delivered() for r in receivers) < kill_after:
            deliverer.check()
            if time.monotonic() > deadline:
                raise BenchFailed(f"fewer than {kill_after} deliveries in {complete_within} s")
            time.sleep(0.02)
        deliverer.kill()
        killed_at = time.perf_counter()
        delivered_before_kill = sum(r.delivered() for r in receivers)
        progress(f"killed the worker after {delivered_before_kill} deliveries")
        write_events(ledger, events - late, late)
        deliverer.start()
        total = events * len(receivers)
        restarted_at = None
        deadline = time.monotonic() + complete_within
        while time.monotonic() < deadline:
            deliverer.check()
            delivered = sum(r.delivered() for r in receivers)
            if restarted_at is None and delivered > delivered_before_kill:
                restarted_at = time.perf_counter()
            if delivered >= total:
                statuses, _ = delivery_log(ledger)
                if statuses.get("succeeded", 0) >= total:
                    break
            time.sleep(0.2)
        deliverer.stop()
    finally:
        deliverer.kill()
    expected = outbox(ledger)
    statuses, attempts = delivery_log(ledger)
    first = min(r.first_at for r in receivers if r.first_at is not None)
    last = max(r.last_new_at for r in receivers if r.last_new_at is not None)
    lost = sum(1 for r in receivers for event_id in expected if not r.accepted[event_id])
    wrong = sum(
        1 for r in receivers for event_id, data in r.data.items() if expected.get(event_id) != data
    )
    return SoakResult(
        events=len(expected),
        endpoints=len(receivers),
        kill_after=kill_after,
        delivered_before_kill=delivered_before_kill,
        steady_seconds=killed_at - first,
        restart_seconds=(restarted_at or time.perf_counter()) - killed_at,
        soak_seconds=last - first,
        lost=lost,
        duplicates=sum(r.duplicates() for r in receivers),
        failed_attempts=sum(r.failed_answers for r in receivers),
        bad_signatures=sum(r.bad_signatures for r in receivers),
        bad_requests=sum(r.bad_requests for r in receivers),
        changed_bodies=sum(r.changed_bodies for r in receivers),
        wrong_data=wrong,
        cut_off=sum(r.cut_off_requests for r in receivers),
        requests=sum(r.requests for r in receivers),
        ledger_statuses=dict(statuses),
        ledger_attempts=attempts,
        per_receiver=[
            {
                "delivered": r.delivered(),
                "requests": r.requests,
                "failed": r.failed_answers,
                "duplicates": r.duplicates(),
            }
            for r in receivers
        ],
    )


# -- the baseline -------------------------------------------------------------------


def baseline(receivers: Sequence[Receiver], per_receiver: int) -> float:
    """Plain signed POSTs per second from one other process, 8 in flight per receiver."""
    targets = [f"{r.url}\n{r.secret}" for r in receivers]
    done = subprocess.run(
        [sys.executable, "-m", "bench.webhooks", "baseline", str(per_receiver), *targets],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    rate: float = json.loads(done.stdout)["posts_per_s"]
    for receiver in receivers:
        receiver.reset()
    return rate


def _post_plainly(per_receiver: int, targets: Sequence[str]) -> None:
    import httpx

    from invoicing.webhooks.signing import signature

    async def one_receiver(client: httpx.AsyncClient, url: str, secret: str) -> None:
        queue = list(range(per_receiver))

        async def lane() -> None:
            while queue:
                n = queue.pop()
                body = orjson.dumps(
                    {
                        "id": f"evt_baseline_{n:06d}_{url[-1]}",
                        "type": EVENT_TYPE,
                        "createdAt": "2026-11-03T00:00:00Z",
                        "data": {
                            "id": f"qc_baseline_{n:06d}",
                            "tenantId": "ten_baseline00000000000000",
                            "subscriptionId": "sub_soak_0000",
                            "customerId": "cus_soak_0000",
                            "metric": "api_calls",
                            "cap": "100000",
                            "used": f"{100000 + n}",
                            "periodStart": "2026-11-01T00:00:00Z",
                            "at": "2026-11-03T00:00:00.000000Z",
                        },
                    }
                )
                await client.post(
                    url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "Meterline-Webhooks/1",
                        "X-Meterline-Event": EVENT_TYPE,
                        "X-Meterline-Delivery": f"whd_baseline{n:06d}",
                        "X-Meterline-Signature": signature(secret, body),
                    },
                )

        await asyncio.gather(*(lane() for _ in range(PER_RECEIVER)))

    async def main() -> float:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            started = time.perf_counter()
            await asyncio.gather(*(one_receiver(client, *t.split("\n", 1)) for t in targets))
            return per_receiver * len(targets) / (time.perf_counter() - started)

    print(json.dumps({"posts_per_s": asyncio.run(main())}))


# -- the report ---------------------------------------------------------------------


def report_lines(result: SoakResult, baseline_per_s: float) -> list[str]:
    return [
        f"webhooks_events: {result.events}",
        f"webhooks_endpoints: {result.endpoints}",
        f"webhooks_delivered: {result.pairs - result.lost}",
        f"webhooks_delivered_per_s: {result.overall_per_s:.0f}",
        f"webhooks_first_worker_per_s: {result.steady_per_s:.0f}",
        f"webhooks_soak_seconds: {result.soak_seconds:.1f}",
        f"webhooks_restart_seconds: {result.restart_seconds:.1f}",
        f"webhooks_requests: {result.requests}",
        f"webhooks_failed_attempts: {result.failed_attempts}",
        f"webhooks_bad_signatures: {result.bad_signatures}",
        f"webhooks_bad_requests: {result.bad_requests}",
        f"webhooks_changed_bodies: {result.changed_bodies}",
        f"webhooks_wrong_data: {result.wrong_data}",
        f"webhooks_cut_off_by_kill: {result.cut_off}",
        f"webhooks_duplicates_after_restart: {result.duplicates}",
        f"webhooks_restart_lost: {result.lost}",
        f"baseline_posts_per_s: {baseline_per_s:.0f}",
        f"webhooks_vs_baseline_ratio: {result.overall_per_s / baseline_per_s:.2f}",
    ]


def _git_head() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + (" (with local changes)" if dirty else "")


def section(result: SoakResult, baseline_per_s: float, ledger: str, total_seconds: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        [
            f"receiver-{n + 1}" + (" (500 to every other attempt)" if n == 2 else ""),
            f"{r['delivered']:,}",
            f"{r['requests']:,}",
            f"{r['failed']:,}",
            f"{r['duplicates']:,}",
        ]
        for n, r in enumerate(result.per_receiver)
    ]
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(result.ledger_statuses.items()))
    return (
        "## Webhook soak (`make bench-webhooks`)\n\n"
        f"Last run {stamp}, code {_git_head()}: `python -m bench.webhooks` "
        f"({ledger} ledger), {total_seconds:.0f} s in all, on this machine:\n\n"
        + "\n".join(line for line in machine_lines() if line.startswith(("- CPU", "- Python")))
        + "\n\n"
        f"{result.events:,} `quota.exceeded` events to 3 endpoints on loopback receivers "
        "that verify each signature; the third answers 500 to the odd attempts of each "
        "event. The deliverer (`meterline worker`) is killed with SIGKILL after "
        f"{result.delivered_before_kill:,} deliveries were accepted and started again; "
        f"{int(result.events * LATE_SHARE):,} events are written while it is dead.\n\n"
        "```\n"
        + "\n".join(report_lines(result, baseline_per_s))
        + "\n```\n\n"
        + table(rows, ["receiver", "events accepted", "requests", "500s", "duplicates"])
        + "\n\n"
        f"`webhooks_delivered_per_s` is every (endpoint, event) pair over the whole soak, "
        f"from the first request to the last event's first acceptance "
        f"({result.soak_seconds:.1f} s), with the restart in it: "
        f"{result.restart_seconds:.1f} s from the kill to the next new delivery (a fresh "
        "process: imports, ledger, chDB, Kafka clients), the 60 s lease of what was in "
        "flight at the kill, and the 6.4–8 s first retry of each of the failing "
        "endpoint's deliveries. `webhooks_first_worker_per_s`: the first worker alone, "
        f"from the first request to the kill ({result.steady_seconds:.1f} s), while it "
        "also dispatches the outbox. "
        "Baseline: plain signed POSTs of the same bodies from one process, 8 in flight per "
        "receiver, to the same receivers. Ledger at the end: "
        f"{statuses}; {result.ledger_attempts:,} attempts recorded for "
        f"{result.requests:,} requests received (an attempt in flight at the kill is "
        "counted by the ledger when it is claimed, by the receiver only if it arrived).\n"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "baseline":
        _post_plainly(int(sys.argv[2]), sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--kill-after", type=int, help="deliveries (default: --events)")
    parser.add_argument("--postgres-url", default=os.environ.get("METERLINE_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-results", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    from infra.kafka_local import LocalKafkaBroker

    began = time.perf_counter()
    receivers = make_receivers()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp, receivers_running(receivers):
        work = Path(tmp)
        if args.postgres_url:
            from tests.helpers.ledger import empty_postgres_schema

            empty_postgres_schema(args.postgres_url)
            url, ledger = args.postgres_url, "PostgreSQL"
        else:
            url, ledger = f"sqlite:///{work / 'ledger.sqlite3'}", "SQLite"
        print(f"baseline: {BASELINE_POSTS} plain signed POSTs per receiver ...")
        baseline_per_s = baseline(receivers, BASELINE_POSTS)
        broker = LocalKafkaBroker(work / "kafka", partitions=1)
        broker.start()
        print(f"local Kafka broker at {broker.bootstrap}")
        try:
            result = soak(
                receivers,
                url,
                broker.bootstrap,
                work,
                events=args.events,
                kill_after=args.kill_after or args.events,
                progress=print,
            )
        except BenchFailed as exc:
            print(f"bench failed: {exc}")
            for log in sorted(work.glob("worker-*.log")):
                print(f"--- {log.name}\n{log.read_text()[-3000:]}")
            return 1
        finally:
            broker.stop()
    print("\n".join(report_lines(result, baseline_per_s)))
    if not args.no_results:
        write_section(
            "webhooks", section(result, baseline_per_s, ledger, time.perf_counter() - began)
        )
        print("recorded in bench/RESULTS.md")
    if not result.ok:
        print("FAILED: an event was lost, or a signature, a body or its data was wrong")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
