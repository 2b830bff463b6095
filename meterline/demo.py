"""`meterline demo`: the whole pipeline on the embedded default, through real HTTP.

It starts `meterline serve` on a fresh data dir (which starts a real Kafka broker and
the in-process ClickHouse engine), creates a tenant, a catalog and customers, sends
events over HTTP, waits until ClickHouse has them all, runs the bill run for last
month, checks every invoice against the amounts expected from the events sent, prints
the invoices and the measured throughput, and stops the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rating.money import round_money

BATCH = 2_000
CONCURRENCY = 4
API_CALL_PRICE = Decimal("0.0015")
BASE_FEE = Decimal("29")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _last_month(now: datetime) -> tuple[datetime, datetime]:
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (this_month - timedelta(days=1)).replace(day=1)
    return start, this_month


class DemoFailed(Exception):
    pass


def run_demo(
    *,
    events: int,
    customers: int,
    data_dir: Path,
    port: int,
    console: Console,
    serve: bool = False,
) -> int:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    port = port or _free_port()
    env = {
        **os.environ,
        "METERLINE_DATA_DIR": str(data_dir.resolve()),
        "METERLINE_KAFKA_PORT": str(_free_port()),
        # Links the server makes (the portal's) point at this demo server.
        "METERLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    for key in ("METERLINE_KAFKA_BOOTSTRAP", "METERLINE_CLICKHOUSE_DSN", "METERLINE_DATABASE_URL"):
        env.pop(key, None)
    cli = [sys.executable, "-m", "meterline.cli"]
    created = subprocess.run(
        [*cli, "tenants", "create", "demo", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    creds = json.loads(created.stdout)
    console.print(f"tenant {creds['tenantId']} created")
    log = (data_dir / "serve.log").open("w")
    started = time.perf_counter()
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server, timeout=300)
        console.print(
            f"server up in {time.perf_counter() - started:.1f}s "
            f"(Kafka broker, ClickHouse engine, ledger, API, stream worker)"
        )
        result = asyncio.run(_drive(base, creds, events, customers, console))
        if result == 0:
            _print_urls(base, creds, "cust_0000", console)
        if result == 0 and serve:
            console.print("serving until Ctrl-C")
            try:
                server.wait()
            except KeyboardInterrupt:
                console.print("stopping")
        return result
    except DemoFailed as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        console.print(f"server log: {data_dir / 'serve.log'}")
        return 1
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _print_urls(base: str, creds: dict[str, str], customer: str, console: Console) -> None:
    """Where to look next: the operator dashboard (signed in with the demo tenant's key)
    and one customer's portal (a link valid for an hour)."""
    headers = {"Authorization": f"Bearer {creds['apiKey']}", "X-Tenant-Id": creds["tenantId"]}
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as client:
        portal = _check(
            client.post(f"/customers/{customer}/portal-url", json={}), "make a portal URL"
        )
    # print(), not the console: a URL wrapped at the terminal's width cannot be opened.
    print(f"dashboard: {base}/dashboard")
    print(f"  sign in with tenant id {creds['tenantId']} and API key {creds['apiKey']}")
    print(f"portal of {customer} (until {portal['expiresAt']}):")
    print(f"  {portal['url']}")


def _wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoFailed(f"meterline serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoFailed("the server did not become ready in time")


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise DemoFailed(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def _drive(
    base: str, creds: dict[str, str], n_events: int, n_customers: int, console: Console
) -> int:
    headers = {"Authorization": f"Bearer {creds['apiKey']}", "X-Tenant-Id": creds["tenantId"]}
    now = datetime.now(UTC)
    period_start, period_end = _last_month(now)
    rng = random.Random(2026)
    limits = httpx.Limits(max_connections=CONCURRENCY + 2)
    async with httpx.AsyncClient(
        base_url=f"{base}/api/v1", headers=headers, timeout=120, limits=limits
    ) as client:
        _check(
            await client.post(
                "/metrics", json={"code": "api_calls", "name": "API calls", "aggregation": "count"}
            ),
            "create metric",
        )
        _check(
            await client.post(
                "/plans",
                json={
                    "code": "usage_pro",
                    "name": "Usage Pro",
                    "currency": "USD",
                    "interval": "monthly",
                    "baseFee": str(BASE_FEE),
                    "charges": [
                        {
                            "metric": "api_calls",
                            "model": "per_unit",
                            "properties": {"unitAmount": str(API_CALL_PRICE)},
                        }
                    ],
                },
            ),
            "create plan",
        )
        ids = [f"cust_{i:04d}" for i in range(n_customers)]
        for external_id in ids:
            _check(
                await client.post(
                    "/customers",
                    json={
                        "externalId": external_id,
                        "name": f"Customer {external_id}",
                        "currency": "USD",
                        "country": "US",
                    },
                ),
                "create customer",
            )
            _check(
                await client.post(
                    "/subscriptions",
                    json={
                        "customerId": external_id,
                        "planCode": "usage_pro",
                        "startDate": period_start.isoformat(),
                    },
                ),
                "create subscription",
            )
        console.print(
            f"catalog: 1 metric, 1 plan, {n_customers} customers subscribed "
            f"from {period_start:%Y-%m-%d}"
        )

        # Events spread over last month; a Zipf-like skew gives customers different bills.
        weights = [1 / (i + 1) ** 0.6 for i in range(n_customers)]
        span = (period_end - period_start).total_seconds()
        expected: dict[str, int] = defaultdict(int)
        batches: list[list[dict[str, Any]]] = []
        batch: list[dict[str, Any]] = []
        for i in range(n_events):
            customer = rng.choices(ids, weights)[0]
            expected[customer] += 1
            ts = period_start + timedelta(seconds=rng.random() * span)
            batch.append(
                {
                    "id": f"evt_{i:08d}",
                    "customerId": customer,
                    "metric": "api_calls",
                    "timestamp": ts.isoformat().replace("+00:00", "Z"),
                    "properties": {"region": rng.choice(["eu", "us", "ap"])},
                }
            )
            if len(batch) == BATCH:
                batches.append(batch)
                batch = []
        if batch:
            batches.append(batch)

        accepted = 0
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        for b in batches:
            queue.put_nowait(b)
        t0 = time.perf_counter()
        with Progress(
            TextColumn("sending events"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("send", total=n_events)

            async def sender() -> None:
                nonlocal accepted
                while not queue.empty():
                    chunk = queue.get_nowait()
                    body = _check(
                        await client.post("/events", json={"events": chunk}), "send events"
                    )
                    if body["rejected"]:
                        raise DemoFailed(f"events rejected: {body['rejected'][:3]}")
                    accepted += body["accepted"]
                    bar.advance(task, len(chunk))

            await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
        send_seconds = time.perf_counter() - t0
        # The same first batch again: duplicates must not count twice.
        _check(await client.post("/events", json={"events": batches[0]}), "resend events")

        stored = 0
        hours = int((now - period_start).total_seconds() // 3600) + 2
        while stored < n_events:
            summary = _check(await client.get("/usage/summary", params={"hours": hours}), "summary")
            stored = sum(row["events"] for row in summary["data"])
            if time.perf_counter() - t0 > 600:
                raise DemoFailed(f"only {stored} of {n_events} events queryable after 600s")
            if stored < n_events:
                await asyncio.sleep(0.25)
        queryable_seconds = time.perf_counter() - t0
        console.print(
            f"{stored} events queryable in ClickHouse "
            f"({queryable_seconds:.1f}s after the first was sent)"
        )

        t1 = time.perf_counter()
        run = _check(
            await client.post(
                "/bill-runs",
                json={"periodStart": period_start.isoformat(), "periodEnd": period_end.isoformat()},
            ),
            "bill run",
        )
        while run["status"] in ("pending", "running"):
            await asyncio.sleep(0.2)
            run = _check(await client.get(f"/bill-runs/{run['id']}"), "bill run status")
        bill_seconds = time.perf_counter() - t1
        if run["status"] != "completed" or run["failed"]:
            raise DemoFailed(f"bill run ended {run['status']} with failures {run['failures'][:3]}")

        invoices: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = _check(await client.get("/invoices", params=params), "list invoices")
            invoices.extend(page["data"])
            cursor = page["nextCursor"]
            if not cursor:
                break

    mismatches = []
    for invoice in invoices:
        calls = expected[invoice["customerId"]]
        want = BASE_FEE + round_money(API_CALL_PRICE * calls, "USD")
        if Decimal(invoice["total"]) != want:
            mismatches.append((invoice["customerId"], invoice["total"], str(want)))
    _print_invoices(console, invoices)
    grand = sum(Decimal(i["total"]) for i in invoices)
    console.print(
        f"{len(invoices)} invoices, {grand} USD in all; bill run took {bill_seconds:.2f}s"
    )
    if len(invoices) != n_customers or mismatches:
        raise DemoFailed(
            f"{len(invoices)} invoices for {n_customers} customers; mismatches {mismatches[:3]}"
        )
    console.print("every invoice matches the events sent, to the cent")
    print(
        f"throughput: {accepted} events accepted over HTTP in {send_seconds:.2f}s = "
        f"{accepted / send_seconds:,.0f} events/s; all queryable after {queryable_seconds:.2f}s "
        f"= {n_events / queryable_seconds:,.0f} events/s end to end"
    )
    return 0


def _print_invoices(console: Console, invoices: list[dict[str, Any]]) -> None:
    table = Table(title="Invoices (DRAFT), ten largest")
    for column in ("customer", "period", "api calls", "usage fee", "base fee", "total"):
        table.add_column(column, justify="right" if column != "customer" else "left")
    ordered = sorted(invoices, key=lambda i: Decimal(i["total"]), reverse=True)
    for invoice in ordered[:10]:
        usage = next((ln for ln in invoice["lines"] if ln["type"] == "USAGE_FEE"), None)
        base = next((ln for ln in invoice["lines"] if ln["type"] == "CHARGE"), None)
        table.add_row(
            invoice["customerId"],
            invoice["periodStart"][:10],
            usage["quantity"] if usage else "0",
            usage["amount"] if usage else "0",
            base["amount"] if base else "0",
            f"{invoice['total']} {invoice['currency']}",
        )
    Console().print(table)
