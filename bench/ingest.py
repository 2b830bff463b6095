"""Ingest benchmark: events over HTTP → Kafka → Faust → ClickHouse, on a real server.

    python -m bench.ingest                    # the recorded figures (bench/RESULTS.md)
    python -m bench.ingest --events 50000     # a quick run (not recorded)
    python -m bench.ingest --profile          # the server under cProfile (not recorded)

Like `meterline demo`, it starts `meterline serve` in a subprocess on a fresh data dir
(a real Kafka broker, the in-process ClickHouse engine, the SQLite ledger, the API and
the stream worker in one process), creates a tenant with `meterline tenants create
--json`, and then measures:

(a) HTTP accept throughput: N events POSTed in batches by a few concurrent
    connections, from the first request until every batch has its 202;
(b) end-to-end throughput: from the first request until GET /api/v1/usage/summary
    counts all N events as stored in ClickHouse;
(c) the latency of one POST of 1,000 events (p50, p99), sequential requests on the
    otherwise idle server, after (b).

Request bodies are built before the clock starts, so the client's own JSON encoding
is not measured; the client does share the machine's CPUs with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import IO

import httpx
import orjson

from bench.common import ROOT, write_section
from bench.ingest_phases import (
    OfferedLoad,
    clickhouse_insert_baseline,
    envelopes,
    kafka_produce_baseline,
    offered_load,
    produce,
    setup_catalog,
)

DEFAULT_EVENTS = 600_000  # over HTTP; as many again straight to Kafka
DEFAULT_BATCH = 1_000
DEFAULT_CONCURRENCY = 8
OFFERED_RATE = 10_000  # events/s offered in the latency phase
OFFERED_SECONDS = 20
OFFERED_BATCH = 1_000  # the batches of the HTTP phase, one every 100 ms
BASELINE_ROWS = 200_000
DATA_DIR = ROOT / ".meterline" / "bench-ingest"
CUSTOMERS = 1_000
LATENCY_BATCH = 1_000


class BenchFailed(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the server --------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: IO[str]
    data_dir: Path

    def stop(self) -> None:
        """SIGINT (a graceful stop of the API, the worker and the broker), then kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def _environment(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "METERLINE_DATA_DIR": str(data_dir),
        "METERLINE_KAFKA_PORT": str(_free_port()),
    }
    for key in ("METERLINE_KAFKA_BOOTSTRAP", "METERLINE_CLICKHOUSE_DSN", "METERLINE_DATABASE_URL"):
        env.pop(key, None)
    return env


def create_tenant(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    created = subprocess.run(
        [sys.executable, "-m", "meterline.cli", "tenants", "create", "bench", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    creds: dict[str, str] = json.loads(created.stdout)
    return creds


def start_server(data_dir: Path, env: dict[str, str], *, profile: bool) -> Server:
    port = _free_port()
    command = [sys.executable]
    if profile:
        command += ["-m", "cProfile", "-o", str(data_dir / "serve.prof")]
    command += ["-m", "meterline.cli", "serve", "--port", str(port)]
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(process, f"http://127.0.0.1:{port}", log, data_dir)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchFailed(f"meterline serve exited with {process.returncode}")
            try:
                if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BenchFailed("the server did not become ready in 300 s")
    except BaseException:
        server.stop()
        raise


def _process_tree(pid: int) -> list[int]:
    """The pid and its descendants (the server and the Kafka broker it started)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found.extend(int(c) for c in children if int(c) not in found)
    return found


def cpu_of(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of the server process and of its children by name."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: dict[str, float] = {}
    for index, proc in enumerate(_process_tree(pid)):
        try:
            stat = Path(f"/proc/{proc}/stat").read_text()
            comm = Path(f"/proc/{proc}/comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        name = "server (python)" if index == 0 else f"{comm} (child)"
        result[name] = result.get(name, 0.0) + seconds
    return result


# -- the load ----------------------------------------------------------------------


def make_bodies(n: int, batch: int, prefix: str, now: datetime) -> list[bytes]:
    """Request bodies of `batch` events each (N in all), events of the last hour."""
    rng = random.Random(2026)
    bodies = []
    for offset in range(0, n, batch):
        events = []
        for i in range(offset, min(offset + batch, n)):
            ts = now - timedelta(milliseconds=rng.randrange(3_600_000))
            events.append(
                {
                    "id": f"{prefix}{i:09d}",
                    "customerId": f"cust_{rng.randrange(CUSTOMERS):05d}",
                    "metric": "api_calls" if i % 4 else "storage_gb",
                    "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "value": None if i % 4 else str(rng.randint(1, 10_000)),
                    "properties": {"region": rng.choice(("eu", "us", "ap")), "plan": "pro"},
                }
            )
        bodies.append(orjson.dumps({"events": events}))
    return bodies


@dataclass
class Measured:
    events: int
    batch: int
    concurrency: int
    http_seconds: float = 0.0
    end_to_end_seconds: float = 0.0
    written_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    stats_after_load: dict[str, float] = field(default_factory=dict)
    cpu_load: dict[str, float] = field(default_factory=dict)
    cpu_drain: dict[str, float] = field(default_factory=dict)
    poll_ms: list[float] = field(default_factory=list)
    kafka_events: int = 0
    kafka_seconds: float = 0.0
    kafka_produce_msgs_per_s: float = 0.0
    kafka_produce_events_per_s: float = 0.0
    clickhouse_insert_rows_per_s: float = 0.0
    offered: OfferedLoad | None = None

    @property
    def kafka_rate(self) -> float:
        return self.kafka_events / self.kafka_seconds

    @property
    def http_rate(self) -> float:
        return self.events / self.http_seconds

    @property
    def end_to_end_rate(self) -> float:
        return self.events / self.end_to_end_seconds


async def _post(client: httpx.AsyncClient, body: bytes, expect: int) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/api/v1/events", content=body, headers={"Content-Type": "application/json"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise BenchFailed(f"POST /events: HTTP {response.status_code} {response.text[:300]}")
    answer = response.json()
    if answer["accepted"] != expect or answer["rejected"]:
        raise BenchFailed(f"POST /events: {answer['accepted']} accepted, {answer['rejected'][:3]}")
    return elapsed


async def _stored(client: httpx.AsyncClient, hours: int) -> int:
    response = await client.get("/api/v1/usage/summary", params={"hours": hours})
    if response.status_code != 200:
        raise BenchFailed(f"GET /usage/summary: HTTP {response.status_code} {response.text[:300]}")
    return sum(int(row["events"]) for row in response.json()["data"])


async def _wait_stored(client: httpx.AsyncClient, hours: int, total: int, within: float) -> None:
    deadline = time.perf_counter() + within
    stored = await _stored(client, hours)
    while stored < total:
        if time.perf_counter() > deadline:
            raise BenchFailed(f"only {stored} of {total} events queryable after {within:.0f} s")
        await asyncio.sleep(0.2)
        stored = await _stored(client, hours)


async def _metrics(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            out[name.removeprefix("meterline_stream_").removesuffix("_total")] = float(value)
    return out


async def drive(
    server: Server,
    creds: dict[str, str],
    n: int,
    batch: int,
    concurrency: int,
    latency_n: int,
    bootstrap: str,
    topic: str,
) -> Measured:
    headers = {"Authorization": f"Bearer {creds['apiKey']}", "X-Tenant-Id": creds["tenantId"]}
    now = datetime.now(UTC)
    measured = Measured(events=n, batch=batch, concurrency=concurrency)
    bodies = make_bodies(n, batch, "evt_", now)
    kafka_messages = envelopes(make_bodies(n, batch, "kfk_", now), creds["tenantId"])
    offered_bodies = make_bodies(OFFERED_RATE * OFFERED_SECONDS, OFFERED_BATCH, "off_", now)
    latency_bodies = make_bodies(latency_n * LATENCY_BATCH, LATENCY_BATCH, "lat_", now)
    warmup = make_bodies(100, 100, "warm_", now)
    hours = 3
    limits = httpx.Limits(
        max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2
    )
    async with httpx.AsyncClient(
        base_url=server.base, headers=headers, timeout=120, limits=limits
    ) as client:
        # Quotas and alerts on: capped charges and an alert on the customers' plan.
        await setup_catalog(client, CUSTOMERS)
        # One small request first: producer metadata, tenant cache, first ClickHouse write.
        await _post(client, warmup[0], 100)
        baseline = 100
        await _wait_stored(client, hours, baseline, within=120)

        queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
        for index, body in enumerate(bodies):
            queue.put_nowait((body, min(batch, n - index * batch)))

        async def sender() -> None:
            while not queue.empty():
                body, count = queue.get_nowait()
                measured.request_ms.append(1000 * await _post(client, body, count))

        cpu_start = cpu_of(server.process.pid)
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        measured.http_seconds = time.perf_counter() - started
        cpu_accepted = cpu_of(server.process.pid)
        measured.stats_after_load = await _metrics(client)
        # The worker's counter is free to read; the summary is a ClickHouse query that
        # shares the engine with the sink's inserts, so it is polled only at the end.
        written = measured.stats_after_load.get("written", 0.0)
        while written < baseline + n:
            if time.perf_counter() - started > 600:
                raise BenchFailed(f"the worker wrote {written:.0f} of {n} events in 600 s")
            await asyncio.sleep(0.05)
            written = (await _metrics(client)).get("written", 0.0)
        measured.written_seconds = time.perf_counter() - started
        while True:
            poll_started = time.perf_counter()
            stored = await _stored(client, hours) - baseline
            measured.poll_ms.append(1000 * (time.perf_counter() - poll_started))
            if stored >= n:
                break
            if time.perf_counter() - started > 600:
                raise BenchFailed(f"only {stored} of {n} events queryable after 600 s")
            await asyncio.sleep(0.05)
        measured.end_to_end_seconds = time.perf_counter() - started
        cpu_stored = cpu_of(server.process.pid)
        measured.cpu_load = {k: v - cpu_start.get(k, 0.0) for k, v in cpu_accepted.items()}
        measured.cpu_drain = {k: v - cpu_accepted.get(k, 0.0) for k, v in cpu_stored.items()}
        if stored != n:
            raise BenchFailed(f"{stored} events stored for {n} sent")

        for body in latency_bodies:
            measured.latencies_ms.append(1000 * await _post(client, body, LATENCY_BATCH))
        total = baseline + n + latency_n * LATENCY_BATCH
        await _wait_stored(client, hours, total, within=300)
        measured.stats_after_load |= {f"final_{k}": v for k, v in (await _metrics(client)).items()}

        # Straight to Kafka: the baseline (a scratch topic), then usage-events.
        measured.kafka_produce_msgs_per_s = await kafka_produce_baseline(bootstrap, kafka_messages)
        measured.kafka_produce_events_per_s = measured.kafka_produce_msgs_per_s * batch
        measured.kafka_events = n
        started = time.perf_counter()
        await produce(bootstrap, topic, kafka_messages)
        total += n
        await _wait_stored(client, hours, total, within=600)
        measured.kafka_seconds = time.perf_counter() - started

        # A steady 10,000 events/s with quota checks and usage read-outs meanwhile.
        async def stored() -> int:
            return await _stored(client, hours)

        # Its own connections: a slow answer must not hold back the schedule.
        async with httpx.AsyncClient(
            base_url=server.base,
            headers=headers,
            timeout=120,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        ) as offered_client:
            measured.offered = await offered_load(
                offered_client, offered_bodies, OFFERED_BATCH, OFFERED_RATE, total, stored
            )
    return measured


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- report --------------------------------------------------------------------------


def _cpu_rows(cpu: dict[str, float], seconds: float) -> str:
    parts = [f"{name} {value:.1f} s ({100 * value / seconds:.0f} % of one CPU)" for name, value in
             sorted(cpu.items(), key=lambda kv: -kv[1]) if value >= 0.05]  # fmt: skip
    return ", ".join(parts) or "none"


def report_lines(m: Measured) -> list[str]:
    p50 = percentile(m.latencies_ms, 50)
    p99 = percentile(m.latencies_ms, 99)
    lines = [
        f"http_e2e_events_per_s: {m.end_to_end_rate:.0f}",
        f"kafka_e2e_events_per_s: {m.kafka_rate:.0f}",
    ]
    if m.offered is not None:
        o = m.offered
        lines += [
            f"event_to_queryable_p99_ms: {percentile(o.queryable_ms, 99):.0f}",
            f"quota_check_p99_ms: {percentile(o.quota_ms, 99):.1f}",
            f"usage_query_p99_ms: {percentile(o.usage_ms, 99):.1f}",
        ]
    lines += [
        f"clickhouse_insert_rows_per_s: {m.clickhouse_insert_rows_per_s:.0f}",
        f"kafka_produce_msgs_per_s: {m.kafka_produce_msgs_per_s:.0f}",
        "http_e2e_over_clickhouse_insert: "
        f"{m.end_to_end_rate / m.clickhouse_insert_rows_per_s:.3f}",
        f"kafka_e2e_over_kafka_produce: {m.kafka_rate / m.kafka_produce_events_per_s:.3f}",
        f"ingest_http_events_per_s: {m.http_rate:.0f}",
        f"ingest_post_1000_p50_ms: {p50:.1f}",
        f"ingest_post_1000_p99_ms: {p99:.1f}",
    ]
    return lines


def details(m: Measured) -> list[str]:
    batches = m.stats_after_load.get("final_batches", 0.0)
    written = m.stats_after_load.get("final_written", 0.0)
    drain = m.end_to_end_seconds - m.http_seconds
    return [
        f"{m.events:,} events in batches of {m.batch:,} over {m.concurrency} connections: "
        f"all 202 after {m.http_seconds:.2f} s, all queryable after "
        f"{m.end_to_end_seconds:.2f} s (the stream needed {drain:.2f} s more; its counter "
        f"reached N after {m.written_seconds:.2f} s)",
        f"POST of {m.batch:,} events under load: p50 {percentile(m.request_ms, 50):.0f} ms, "
        f"p99 {percentile(m.request_ms, 99):.0f} ms; POST of {LATENCY_BATCH:,} alone: "
        f"{len(m.latencies_ms)} sequential requests, mean "
        f"{statistics.fmean(m.latencies_ms):.1f} ms",
        f"stream worker: {written:,.0f} events written (both phases) in {batches:,.0f} "
        f"ClickHouse batches (mean {written / max(batches, 1):,.0f} events per batch); when the "
        f"last 202 came it had written {m.stats_after_load.get('written', 0):,.0f} of "
        f"{m.events:,}",
        _worker_time(m),
        f"CPU while sending ({m.http_seconds:.1f} s): {_cpu_rows(m.cpu_load, m.http_seconds)}",
        f"CPU while draining ({drain:.1f} s): {_cpu_rows(m.cpu_drain, max(drain, 1e-9))}",
        f"GET /usage/summary (the end-to-end check): {len(m.poll_ms)} polls, median "
        f"{percentile(m.poll_ms, 50):.0f} ms",
        f"straight to Kafka: {m.kafka_events:,} events in envelopes of {m.batch:,} queryable "
        f"after {m.kafka_seconds:.2f} s; the same envelopes to a scratch topic: "
        f"{m.kafka_produce_msgs_per_s:,.0f} messages/s ({m.kafka_produce_events_per_s:,.0f} "
        "events/s)",
        f"baseline insert: {BASELINE_ROWS:,} of the same rows into a fresh engine of the "
        f"bench process, batches of 20,000: {m.clickhouse_insert_rows_per_s:,.0f} rows/s",
        *_offered_lines(m.offered),
    ]


def _worker_time(m: Measured) -> str:
    """Where the worker's time went in the HTTP phase (its /metrics phase counters)."""

    def spent(phase: str) -> float:
        return m.stats_after_load.get(f'final_seconds_total{{phase="{phase}"}}', 0.0)

    return (
        f"stream worker time per phase (HTTP phase and POST latency, "
        f"{m.stats_after_load.get('final_written', 0):,.0f} events): parse "
        f"{spent('parse'):.2f} s, ClickHouse insert {spent('write'):.2f} s, metering steps "
        f"{spent('steps'):.2f} s (quotas {spent('step:quotas'):.2f}, alerts "
        f"{spent('step:alerts'):.2f}, progressive billing {spent('step:progressive'):.2f})"
    )


def _offered_lines(o: OfferedLoad | None) -> list[str]:
    if o is None:
        return []
    return [
        f"offered load: {o.rate:,} events/s for {o.seconds:.0f} s in POSTs of "
        f"{OFFERED_BATCH} ({o.behind} sends behind schedule); event to queryable p50 "
        f"{percentile(o.queryable_ms, 50):.0f} ms, p99 {percentile(o.queryable_ms, 99):.0f} ms "
        f"({len(o.queryable_ms)} batches); GET …/quota/api_calls p50 "
        f"{percentile(o.quota_ms, 50):.1f} ms ({len(o.quota_ms)} calls); GET …/usage p50 "
        f"{percentile(o.usage_ms, 50):.1f} ms ({len(o.usage_ms)} calls)",
    ]


def markdown(m: Measured, command: str) -> str:
    from bench.common import now_text

    return "\n".join(
        [
            "## Ingest (`make bench-ingest`)",
            "",
            f"Last run {now_text()}: `{command}`",
            "",
            "```",
            *report_lines(m),
            "```",
            "",
            "`meterline serve` as shipped: the ingest front process answers POST /events, the",
            "main process holds the broker client, the ClickHouse engine, the stream worker and",
            "the rest of the API. Quotas, alerts and progressive billing are on (a hard cap",
            "and a usage threshold on every customer's plan, an alert on one; none reached).",
            "",
            "- http_e2e: N events POSTed in batches of 1,000 over 8 connections / time from the",
            "  first request until `GET /api/v1/usage/summary` counts all N in ClickHouse;",
            "- kafka_e2e: as many events produced straight to usage-events in envelopes of",
            "  1,000 / time until all are queryable;",
            "- event_to_queryable: 10,000 events/s offered for 20 s (a POST of 1,000 every",
            "  100 ms); a batch is queryable when the stored count reaches it; meanwhile",
            "  GET …/quota/{metric} and GET …/usage run in loops (quota_check, usage_query);",
            "- baselines in the same run: the raw insert of the same rows into a fresh engine",
            "  (clickhouse_insert) and the same envelopes produced to a scratch topic",
            "  (kafka_produce); the ratios divide by them;",
            "- ingest_http = N / time until every POST had its 202 (in Kafka, acks=all);",
            "  ingest_post_1000 = one POST of 1,000 at a time after the load.",
            "",
            "Targets (issue 7, on this 2-core machine): http_e2e ≥ 50,000, kafka_e2e ≥",
            "100,000, event_to_queryable p99 ≤ 1,000 ms, quota_check and usage_query p99 ≤",
            "50 ms, http_e2e / clickhouse_insert ≥ 0.25.",
            "",
            *(f"- {line}" for line in details(m)),
        ]
    )


def profile_text(path: Path) -> str:
    out = StringIO()
    stats = pstats.Stats(str(path), stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="events per request")
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="concurrent connections"
    )
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--profile", action="store_true", help="the server under cProfile")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    env = _environment(data_dir)
    creds = create_tenant(data_dir, env)
    print("baseline: raw ClickHouse insert ...")
    insert_rate = clickhouse_insert_baseline(
        make_bodies(BASELINE_ROWS, args.batch, "base_", datetime.now(UTC)), creds["tenantId"]
    )
    started = time.perf_counter()
    server = start_server(data_dir, env, profile=args.profile)
    print(f"server up in {time.perf_counter() - started:.1f} s ({server.base}, data {data_dir})")
    try:
        measured = asyncio.run(
            drive(
                server,
                creds,
                args.events,
                args.batch,
                args.concurrency,
                args.latency_requests,
                f"127.0.0.1:{env['METERLINE_KAFKA_PORT']}",
                "usage-events",
            )
        )
        measured.clickhouse_insert_rows_per_s = insert_rate
    except BenchFailed as exc:
        print(f"bench failed: {exc}; server log: {data_dir / 'serve.log'}")
        return 1
    finally:
        server.stop()
    print("\n".join(report_lines(measured)))
    for line in details(measured):
        print(f"  {line}")
    if args.profile:
        prof = data_dir / "serve.prof"
        if prof.exists():
            print(profile_text(prof))
        else:
            print(f"no profile written ({prof})")
    quick = (
        args.events != DEFAULT_EVENTS
        or args.batch != DEFAULT_BATCH
        or args.concurrency != DEFAULT_CONCURRENCY
    )
    if not args.no_record and not args.profile and not quick:
        write_section("ingest", markdown(measured, "python -m bench.ingest"))
        print("recorded in bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
