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
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
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
    from meterline.runtime import Runtime

    _logging(settings)
    application = create_app(lambda: Runtime.open(settings), with_worker=with_worker)
    main_host, main_port = ("127.0.0.1", _free_port()) if front else (host, port)
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
    """Server mode: one stream worker (scale out with more processes, same consumer group)."""
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
        try:
            await runtime.start(api=False, worker=True)
            console.print(f"worker consuming {settings.events_topic} from {runtime.bootstrap}")
            await stop.wait()
        finally:
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
    interval: Annotated[float, typer.Option(help="Seconds between two passes.")] = 300,
    once: Annotated[bool, typer.Option(help="Run one pass and exit.")] = False,
    at: Annotated[
        str | None,
        typer.Option(help="Replay one pass at this instant (ISO 8601, UTC); implies --once."),
    ] = None,
) -> None:
    """Period close on a timer: bill last month for every tenant (idempotent: a month
    already billed creates nothing), then finalize drafts whose grace period is over."""
    import time

    from core.clock import SYSTEM_CLOCK, Clock, FrozenClock
    from invoicing.billing import BillRunner
    from invoicing.billing.scheduler import close_period
    from meterline.runtime import Runtime

    replay = _parse_instant(at)
    settings = Settings()
    _logging(settings)
    runtime = Runtime.open(settings)
    clock: Clock = SYSTEM_CLOCK if replay is None else FrozenClock(replay)
    runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, clock)
    try:
        while True:
            for close in close_period(
                runtime.sessions, runner, clock.now(), settings.invoice_due_days
            ):
                if close.bill_run_id:
                    console.print(
                        f"{close.tenant_id}: bill run {close.bill_run_id} {close.status}, "
                        f"{close.invoices_created} invoices"
                    )
                if close.finalized:
                    console.print(f"{close.tenant_id}: finalized {close.finalized} invoices")
            if once or replay is not None:
                return
            time.sleep(interval)
    finally:
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
    """Rate and invoice every subscription of the period (all tenants unless --tenant)."""
    from sqlalchemy import select

    from invoicing.billing import BillRunner, create_bill_run
    from invoicing.models import Tenant
    from meterline.runtime import Runtime

    settings = Settings()
    _logging(settings)
    start, end = _parse_period(period)
    runtime = Runtime.open(settings)
    try:
        with runtime.session() as session:
            tenant_ids = [tenant] if tenant else list(session.execute(select(Tenant.id)).scalars())
        runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, runtime.clock)
        for tenant_id in tenant_ids:
            with runtime.session() as session:
                run_id = create_bill_run(session, tenant_id, start, end).id
            with Progress(
                TextColumn(f"bill run {tenant_id}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("bill", total=None)

                def progress(done: int, total: int, _task: TaskID = task) -> None:
                    bar.update(_task, completed=done, total=total)

                result = runner.run(run_id, progress)
            console.print(
                f"{run_id}: {result.status}, {result.invoices_created} invoices, "
                f"{result.failed} failed"
            )
            if result.status != "completed":
                raise typer.Exit(1)
    finally:
        runtime.close()


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="Events to send.")] = 100_000,
    customers: Annotated[int, typer.Option(help="Customers to create.")] = 100,
    data_dir: Annotated[Path, typer.Option(help="Fresh data dir for the demo.")] = Path(
        ".meterline/demo"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo server.")] = 0,
) -> None:
    """The whole pipeline end to end on the embedded default, with measured throughput."""
    from meterline.demo import run_demo

    raise typer.Exit(
        run_demo(events=events, customers=customers, data_dir=data_dir, port=port, console=console)
    )


if __name__ == "__main__":  # pragma: no cover
    app()
