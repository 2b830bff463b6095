"""The `meterline` command line.

meterline serve                 embedded: Kafka broker + API + stream worker, one process
meterline api / worker          server mode, each part on its own
meterline tenants create NAME   a tenant and its API key
meterline bill-run --period 2026-10
meterline scheduler --once --at 2026-11-01T00:05:00Z   replay period close at a moment
meterline demo                  the whole pipeline on the embedded default
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from meterline.settings import Settings

app = typer.Typer(help="Meterline: usage metering, rating and invoicing.", no_args_is_help=True)
tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
console = Console(stderr=True)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # aiokafka logs transient coordinator errors while a fresh broker elects itself.
    logging.getLogger("aiokafka.consumer.group_coordinator").setLevel(logging.CRITICAL)
    logging.getLogger("aiokafka.cluster").setLevel(logging.CRITICAL)


def _run_uvicorn(
    host: str, port: int, *, with_worker: bool, settings: Settings, front: bool = False
) -> None:
    """Serve the API; with `front`, on a private port behind an ingest front process
    that listens on host:port (see api/front.py)."""
    import uvicorn

    from api.app import create_app
    from meterline import control
    from meterline.runtime import Runtime

    _logging(settings)
    application = create_app(lambda: Runtime.open(settings), with_worker=with_worker)
    main_host, main_port = ("127.0.0.1", _free_port()) if front else (host, port)
    loopback = "127.0.0.1" if main_host in ("0.0.0.0", "::", "") else main_host  # noqa: S104
    channel = control.new_channel(f"http://{loopback}:{main_port}")
    application.include_router(control.router(channel))
    config = uvicorn.Config(
        application,
        host=main_host,
        port=main_port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        child = None
        if server.started and front:
            bootstrap = application.state.runtime.bootstrap
            child = await _start_front(host, port, f"http://{main_host}:{main_port}", bootstrap)
            if child is None:
                server.should_exit = True
        if server.started and not server.should_exit:
            bootstrap = getattr(application.state.runtime, "bootstrap", None)
            console.print(
                f"Meterline listening on http://{host}:{port} "
                f"(data in {settings.data_dir.resolve()}); Ctrl-C stops it"
            )
            # Outside producers may write to usage-events straight (API.md).
            console.print(f"Kafka at {bootstrap} (topic {settings.events_topic})")
            control.publish(settings.data_dir, channel)
        ticker = None
        if server.started and with_worker and settings.scheduler_interval_seconds > 0:
            ticker = asyncio.create_task(
                _scheduler_loop(application.state.runtime, settings.scheduler_interval_seconds)
            )
        try:
            if child is None:
                await task
            else:
                exited = asyncio.create_task(child.wait())
                done, _ = await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
                if exited in done:
                    console.print(f"[red]the ingest front exited ({child.returncode})[/red]")
                    server.should_exit = True
                    await task
        finally:
            control.withdraw(settings.data_dir, channel)
            if ticker is not None:
                ticker.cancel()
            if child is not None and child.returncode is None:
                child.terminate()
                try:
                    await asyncio.wait_for(child.wait(), 15)
                except TimeoutError:
                    child.kill()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it handled, after a graceful shutdown.
        console.print("stopped")
    if not server.started:
        raise typer.Exit(1)


async def _scheduler_loop(runtime: Any, interval: float) -> None:
    """`serve` runs every time-driven job each `interval` seconds, in the bill-run
    executor (one job at a time, beside the bill runs the API starts)."""
    from meterline import jobs

    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            result = await loop.run_in_executor(
                runtime.billing_executor, jobs.scheduler_pass, runtime, runtime.clock.now()
            )
            for line in result.lines:
                logging.getLogger("meterline.scheduler").info(line)
        except asyncio.CancelledError:
            raise
        except Exception:
            logging.getLogger("meterline.scheduler").exception("scheduler pass failed")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_front(
    host: str, port: int, upstream: str, bootstrap: str | None
) -> asyncio.subprocess.Process | None:
    """Start `meterline front` on host:port and wait until it answers; None if it died."""
    import os

    import httpx

    env = {**os.environ, "METERLINE_KAFKA_BOOTSTRAP": bootstrap or ""}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meterline.cli", "front",
        "--host", host, "--port", str(port), "--upstream", upstream,
        env=env,
    )  # fmt: skip
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(600):
            if child.returncode is not None:
                console.print(f"[red]the ingest front exited ({child.returncode})[/red]")
                return None
            try:
                if (await client.get(f"http://{host}:{port}/healthz")).status_code == 200:
                    return child
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    child.kill()
    console.print("[red]the ingest front did not start in 60 s[/red]")
    return None


@app.command(hidden=True)
def front(
    upstream: Annotated[str, typer.Option(help="The main process, http://127.0.0.1:PORT.")],
    host: str = "127.0.0.1",
    port: int = 8080,
) -> None:
    """The ingest front process of `meterline serve` (POST /events; the rest forwarded)."""
    import uvicorn

    from api.front import create_front_app
    from meterline.front import FrontRuntime

    settings = Settings()
    _logging(settings)
    runtime = FrontRuntime.open(settings)
    application = create_front_app(runtime, upstream, runtime.start, runtime.stop)
    uvicorn.run(application, host=host, port=port, log_level="warning", lifespan="on")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Run everything in one process: a local Kafka broker (unless METERLINE_KAFKA_BOOTSTRAP),
    the API and the stream worker. Ctrl-C stops all it started."""
    settings = Settings()
    _run_uvicorn(host, port, with_worker=True, settings=settings, front=settings.ingest_front)


@app.command()
def api(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Server mode: the API only (events are produced to Kafka for the workers)."""
    settings = Settings()
    if not settings.kafka_bootstrap:
        console.print(
            "[red]meterline api needs METERLINE_KAFKA_BOOTSTRAP; use 'meterline serve' "
            "for the embedded mode[/red]"
        )
        raise typer.Exit(2)
    _run_uvicorn(host, port, with_worker=False, settings=settings)


@app.command()
def worker() -> None:
    """Server mode: one stream worker (scale out with more processes, same consumer group);
    its /metrics on METERLINE_METRICS_HOST:METERLINE_METRICS_PORT (docs/metrics.md)."""
    from meterline import metrics_listener
    from meterline.runtime import Runtime

    settings = Settings()
    if not settings.kafka_bootstrap:
        console.print("[red]meterline worker needs METERLINE_KAFKA_BOOTSTRAP[/red]")
        raise typer.Exit(2)
    _logging(settings)

    async def main() -> None:
        runtime = Runtime.open(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        listener = metrics_listener.start(settings, runtime.stream_stats)
        try:
            await runtime.start(api=False, worker=True)
            console.print(f"worker consuming {settings.events_topic} from {runtime.bootstrap}")
            await stop.wait()
        finally:
            if listener is not None:
                listener.stop()
            await runtime.stop()
            runtime.close()

    asyncio.run(main())


def _parse_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter("use an ISO 8601 instant, e.g. 2026-11-01T00:05:00Z") from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


@app.command()
def scheduler(
    interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between two passes (default: METERLINE_SCHEDULER_INTERVAL_SECONDS, 60)."
        ),
    ] = None,
    once: Annotated[bool, typer.Option(help="Run one pass and exit.")] = False,
    at: Annotated[
        str | None,
        typer.Option(help="Run one pass as of this instant (RFC 3339); implies --once."),
    ] = None,
) -> None:
    """Every time-driven job, for every tenant: period-close bill runs, finalize drafts
    past their grace period (collecting them), OPEN → OVERDUE, due dunning steps,
    OVERDUE → UNCOLLECTIBLE. Each job is idempotent: a second pass at the same --at
    changes nothing. Beside a running `meterline serve` of the same data dir, the pass
    runs in that server (it owns the engine) and prints the same."""
    import time

    from meterline import control, jobs, metrics_listener
    from meterline.runtime import Runtime

    replay = _parse_instant(at)
    settings = Settings()
    _logging(settings)
    pause = settings.scheduler_interval_seconds if interval is None else interval

    def one_pass(runtime: Runtime | None) -> jobs.JobResult:
        when = replay or datetime.now(UTC)
        channel = control.find(settings.data_dir) if runtime is None else None
        if channel is not None:
            return control.hand_over(channel, "scheduler-pass", {"at": when.isoformat()})
        assert runtime is not None
        return jobs.scheduler_pass(runtime, when)

    runtime = None
    if not once and replay is None:  # a long-running scheduler is a scrape target
        metrics_listener.start(settings)
    try:
        while True:
            if runtime is None and control.find(settings.data_dir) is None:
                runtime = Runtime.open(settings)
            result = one_pass(runtime)
            for line in result.lines:
                console.print(line)
            if once or replay is not None:
                if not result.ok:
                    raise typer.Exit(1)
                return
            time.sleep(max(pause, 1.0))
    finally:
        if runtime is not None:
            runtime.close()


@app.command()
def migrate() -> None:
    """Apply the ledger and ClickHouse migrations (idempotent), then exit."""
    from infra.migrate import migrate_ledger
    from meterline.clickhouse import connect_and_migrate

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_ledger(settings.resolved_database_url)
    connect_and_migrate(settings.resolved_clickhouse_dsn, settings.clickhouse_database)
    console.print("migrations applied")


@tenants_app.command("create")
def tenants_create(
    name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False
) -> None:
    """Create a tenant and print its id and API key (the key is shown only once)."""
    from infra.migrate import migrate_ledger
    from invoicing.db import make_engine, make_sessionmaker, transaction
    from invoicing.tenants import create_tenant

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_ledger(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    with transaction(make_sessionmaker(engine)) as session:
        creds = create_tenant(session, name)
    engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps({"tenantId": creds.tenant_id, "apiKey": creds.api_key}) + "\n")
    else:
        console.print(f"tenant [bold]{name}[/bold]")
        console.print(f"  tenant id: {creds.tenant_id}")
        console.print(f"  API key:   {creds.api_key}  (shown once: keep it)")


def _parse_period(period: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM, e.g. 2026-10") from None
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


@app.command("bill-run")
def bill_run(
    period: Annotated[str, typer.Option(help="The month to bill, YYYY-MM.")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant id.")] = None,
) -> None:
    """Rate and invoice every subscription of the period (all tenants unless --tenant).
    Beside a running `meterline serve` of the same data dir, the server runs it."""
    from meterline import control, jobs
    from meterline.runtime import Runtime

    settings = Settings()
    _logging(settings)
    start, end = _parse_period(period)
    channel = control.find(settings.data_dir)
    if channel is not None:  # a running serve owns the engine: it runs the bill run
        result = control.hand_over(
            channel,
            "bill-run",
            {"start": start.isoformat(), "end": end.isoformat(), "tenant": tenant},
        )
    else:
        runtime = Runtime.open(settings)
        try:
            with Progress(
                TextColumn("bill run {task.fields[tenant]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("bill", total=None, tenant="")

                def progress(tenant_id: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total, tenant=tenant_id)

                result = jobs.bill_month(runtime, start, end, tenant, progress)
        finally:
            runtime.close()
    for line in result.lines:
        console.print(line)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="Events to send.")] = 100_000,
    customers: Annotated[int, typer.Option(help="Customers to create.")] = 100,
    data_dir: Annotated[Path, typer.Option(help="Fresh data dir for the demo.")] = Path(
        ".meterline/demo"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo server.")] = 0,
    serve: Annotated[
        bool, typer.Option(help="Leave the server running (dashboard, portal) until Ctrl-C.")
    ] = False,
) -> None:
    """The whole pipeline end to end on the embedded default, with measured throughput;
    ends by printing the dashboard URL and a customer's portal URL."""
    from meterline.demo import run_demo

    raise typer.Exit(
        run_demo(
            events=events,
            customers=customers,
            data_dir=data_dir,
            port=port,
            console=console,
            serve=serve,
        )
    )


if __name__ == "__main__":  # pragma: no cover
    app()
