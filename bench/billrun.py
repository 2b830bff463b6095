"""Bill-run benchmark: 100,000 subscriptions over 5 metrics, one bill run, per ledger.

    python -m bench.billrun                          # both ledgers, recorded in bench/RESULTS.md
    python -m bench.billrun --subscriptions 2000     # a quick run (not recorded)
    python -m bench.billrun --ledger postgres --postgres-url postgresql+psycopg://…
    python -m bench.billrun --subscriptions 1000000 --ledger postgres   # the one-off big run
    python -m bench.billrun --profile                # the run under cProfile (not recorded)
    python -m bench.billrun --reuse                  # bill the last setup's data again

Every step runs in its own child process, so each bill run's peak RSS is its own:

1. events (once, shared by the ledgers): the usage events in ClickHouse (chDB) and the
   expected invoices of 20 sampled subscriptions (bench/billrun_setup.py, the catalog
   and the reference pricing in bench/billrun_catalog.py);
2. per ledger (SQLite file; PostgreSQL from --postgres-url or
   METERLINE_BENCH_POSTGRES_URL, a clean schema first): tenant, catalog, customers and
   subscriptions, bulk-inserted in chunks;
3. per ledger, timed: create_bill_run + BillRunner.run for the month; then checked: N
   invoices, no failure, and the sampled invoices equal, line by line and to the cent,
   the totals recomputed from the stored events with rating.pricing directly;
4. per ledger, the floor (bench/billrun_floor.py): the run's own ClickHouse quantity
   queries replayed raw plus a raw bulk insert of the rows it wrote.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pickle
import pstats
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from bench.billrun_floor import RecordingClient, bulk_insert_floor, replay_queries, run_deferred
from bench.billrun_phases import TimedUsageStore, timed_phases
from bench.billrun_report import breakdown, print_ledger, record
from bench.billrun_setup import setup_events, setup_ledger, write_json
from bench.common import ROOT, Phases, cpu_seconds, current_rss_mib, gc_pauses, peak_rss_mib
from invoicing.billing import BillRunner, create_bill_run
from invoicing.db import make_engine
from invoicing.models import BillRunRow, InvoiceLineRow, InvoiceRow
from meterline.clickhouse import connect_and_migrate
from meterline.runtime import Runtime
from meterline.settings import Settings
from rating.model import Period

DEFAULT_SUBSCRIPTIONS = 100_000
DEFAULT_EVENTS_PER_SUBSCRIPTION = 20
DATA_DIR = ROOT / ".meterline" / "bench-billrun"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://meterline:meterline@127.0.0.1:54329/meterline_test"
LEDGERS = ("sqlite", "postgres")

# -- the timed run ------------------------------------------------------------------------


@dataclass
class RunResult:
    run_id: str
    seconds: float
    status: str
    invoices_created: int
    failed: int
    failures: list[Any]
    phases: Phases
    queries: list[tuple[str, bool, int, float]]
    wrapped: list[str]
    rss_before_mib: float
    cpu_seconds: float
    profile_text: str = ""
    gc_seconds: float = 0.0
    gc_full_collections: int = 0


def bill(
    runtime: Runtime, client: Any, tenant_id: str, period: Period, *, profile: bool
) -> RunResult:
    """One bill run of the month, timed; `client` is the ClickHouse client the run uses."""
    phases = Phases()
    usage = TimedUsageStore(client, runtime.settings.clickhouse_database, phases)
    runner = BillRunner(runtime.sessions, usage)
    profiler = cProfile.Profile() if profile else None
    rss_before = current_rss_mib()
    cpu_before = cpu_seconds()
    with timed_phases(phases) as wrapped, gc_pauses() as pauses:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        with runtime.session() as session:
            run_id = create_bill_run(session, tenant_id, period.start, period.end).id
        run = runner.run(run_id)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    text = ""
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(35)
        text = out.getvalue()
        profiler.dump_stats(str(runtime.settings.data_dir / "billrun.prof"))
    return RunResult(
        run_id=run_id,
        seconds=seconds,
        status=run.status,
        invoices_created=run.invoices_created,
        failed=run.failed,
        failures=list(run.failures or [])[:3] + ([run.error] if run.error else []),
        phases=phases,
        queries=usage.queries,
        wrapped=wrapped,
        rss_before_mib=rss_before,
        cpu_seconds=cpu,
        profile_text=text,
        gc_seconds=pauses.seconds,
        gc_full_collections=pauses.full,
    )


def verify(
    runtime: Runtime, run_id: str, tenant_id: str, n: int, expected: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Problems found (empty when the run is right); `expected` is keyed by subscription id,
    its lines by charge id, "base" and "total"."""
    problems: list[str] = []
    with runtime.sessions() as session:
        count = session.execute(
            select(func.count()).select_from(InvoiceRow).where(InvoiceRow.bill_run_id == run_id)
        ).scalar_one()
        if count != n:
            problems.append(f"{count} invoices in the ledger for {n} subscriptions")
        rows = (
            session.execute(
                select(InvoiceRow).where(
                    InvoiceRow.tenant_id == tenant_id,
                    InvoiceRow.subscription_id.in_(list(expected)),
                )
            )
            .unique()
            .scalars()
            .all()
        )
        found = {row.subscription_id: row for row in rows}
        for sub_id, want in expected.items():
            invoice = found.get(sub_id)
            if invoice is None:
                problems.append(f"no invoice for sampled subscription {sub_id}")
                continue
            got = {"total": str(invoice.total)}
            for line in invoice.lines:
                key = line.charge_id or ("base" if line.type == "CHARGE" else line.type)
                got[key] = str(line.amount)
            for key, amount in want.items():
                if Decimal(got.get(key, "NaN")) != Decimal(amount):
                    problems.append(
                        f"{sub_id} {key}: invoice says {got.get(key)}, events say {amount}"
                    )
            if len(invoice.lines) != len(want) - 1:
                problems.append(f"{sub_id}: {len(invoice.lines)} lines, expected {len(want) - 1}")
    return problems


def _reset_ledger(runtime: Runtime, tenant_id: str) -> None:
    """Forget earlier runs' invoices (for --reuse): a bill run skips invoiced periods."""
    with runtime.session() as session:
        invoice_ids = select(InvoiceRow.id).where(InvoiceRow.tenant_id == tenant_id)
        session.execute(delete(InvoiceLineRow).where(InvoiceLineRow.invoice_id.in_(invoice_ids)))
        session.execute(delete(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id))
        session.execute(delete(BillRunRow).where(BillRunRow.tenant_id == tenant_id))


def expected_by_subscription(
    events: Mapping[str, Any], ledger: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """The sampled invoices keyed as `verify` reads them: subscription id, charge id."""
    charges = {p["code"]: p["charges"] for p in ledger["plans"]}
    out: dict[str, dict[str, str]] = {}
    for sub_id, index in ledger["samples"].items():
        want = dict(events["expected"][str(index)])
        ids = charges[want.pop("plan")]
        out[sub_id] = {
            (ids[int(key[1:])] if key.startswith("#") else key): amount
            for key, amount in want.items()
        }
    return out


# -- the steps (each in its own process) ------------------------------------------------


def _settings(data_dir: Path, url: str | None) -> Settings:
    # The embedded ClickHouse (chDB) and the given ledger, whatever the environment says.
    return Settings(data_dir=data_dir, clickhouse_dsn=None, database_url=url, kafka_bootstrap=None)


def _ledger_url(args: argparse.Namespace, ledger: str) -> str:
    if ledger == "postgres":
        return str(args.postgres_url)
    return f"sqlite:///{args.data_dir / 'ledger.sqlite3'}"


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def step_events(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    data_dir: Path = args.data_dir
    if data_dir.exists():
        import shutil

        shutil.rmtree(data_dir)
    settings = _settings(data_dir, None)
    data_dir.mkdir(parents=True)
    client = connect_and_migrate(settings.resolved_clickhouse_dsn, settings.clickhouse_database)
    try:
        info = setup_events(
            client,
            settings.clickhouse_database,
            args.subscriptions,
            args.events_per_subscription,
            datetime.now(UTC),
        )
    finally:
        client.close()
    write_json(data_dir / "events.json", info, started)


def step_ledger(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    events = _read(args.data_dir / "events.json")
    url = _ledger_url(args, args.ledger)
    info = setup_ledger(url, events, postgres=args.ledger == "postgres")
    write_json(args.data_dir / f"ledger-{args.ledger}.json", info, started)


def step_run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    data_dir: Path = args.data_dir
    events = _read(data_dir / "events.json")
    ledger = _read(data_dir / f"ledger-{args.ledger}.json")
    runtime = Runtime.open(_settings(data_dir, _ledger_url(args, args.ledger)))
    recorder = RecordingClient(runtime.clickhouse)
    try:
        tenant_id = events["tenantId"]
        period = Period(
            datetime.fromisoformat(events["periodStart"]),
            datetime.fromisoformat(events["periodEnd"]),
        )
        if args.reuse:
            _reset_ledger(runtime, tenant_id)
        # The machine is shared: a busy one stretches wall time, not CPU time or memory.
        load_before = os.getloadavg()[0]
        result = bill(runtime, recorder, tenant_id, period, profile=args.profile)
        load_after = os.getloadavg()[0]
        # The run's own peak, before the check reads anything back.
        peak = peak_rss_mib()
        expected = expected_by_subscription(events, ledger)
        problems = verify(runtime, result.run_id, tenant_id, events["subscriptions"], expected)
    finally:
        runtime.close()
    if result.status != "completed" or result.failed:
        problems.insert(0, f"run {result.status} with {result.failed} failures {result.failures}")
    if result.invoices_created != events["subscriptions"]:
        problems.insert(0, f"{result.invoices_created} invoices created")
    with (data_dir / f"run-{args.ledger}.pkl").open("wb") as out:
        pickle.dump({"queries": recorder.queries, "deferred": recorder.deferred}, out)
    if result.profile_text:
        print(result.profile_text)
    info = {
        "runId": result.run_id,
        "runSeconds": result.seconds,
        "runPeakRssMib": peak,
        "status": result.status,
        "invoicesCreated": result.invoices_created,
        "failed": result.failed,
        "failures": [str(f) for f in result.failures],
        "breakdown": breakdown(result.phases.seconds, result.seconds),
        "queries": result.queries,
        "wrapped": result.wrapped,
        "rssBeforeMib": result.rss_before_mib,
        "cpuSeconds": result.cpu_seconds,
        "gcSeconds": result.gc_seconds,
        "gcFullCollections": result.gc_full_collections,
        "loadAverage": [load_before, load_after],
        "problems": problems,
        "sampled": len(expected),
    }
    write_json(data_dir / f"run-{args.ledger}.json", info, started)


def step_floor(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    data_dir: Path = args.data_dir
    run = _read(data_dir / f"run-{args.ledger}.json")
    with (data_dir / f"run-{args.ledger}.pkl").open("rb") as source:
        recorded = pickle.load(source)
    settings = _settings(data_dir, _ledger_url(args, args.ledger))
    client = connect_and_migrate(settings.resolved_clickhouse_dsn, settings.clickhouse_database)
    try:
        query_seconds, each = replay_queries(client, recorded["queries"])
        run_deferred(client, recorded["deferred"])
    finally:
        client.close()
    engine = make_engine(settings.resolved_database_url)
    try:
        inserted = bulk_insert_floor(engine, run["runId"])
    finally:
        engine.dispose()
    info = {
        "querySeconds": query_seconds,
        "queries": each,
        "insertSeconds": inserted["seconds"],
        "insertRows": inserted["rows"],
        "floorSeconds": query_seconds + sum(inserted["seconds"].values()),
    }
    write_json(data_dir / f"floor-{args.ledger}.json", info, started)


STEPS: dict[str, Callable[[argparse.Namespace], None]] = {
    "events": step_events,
    "ledger": step_ledger,
    "run": step_run,
    "floor": step_floor,
}


def _child(args: argparse.Namespace, step: str, ledger: str | None = None) -> None:
    command = [sys.executable, "-m", "bench.billrun", "--step", step]
    command += ["--subscriptions", str(args.subscriptions), "--data-dir", str(args.data_dir)]
    command += ["--events-per-subscription", str(args.events_per_subscription)]
    command += ["--postgres-url", args.postgres_url]
    if ledger:
        command += ["--ledger", ledger]
    if args.reuse:
        command.append("--reuse")
    if args.profile:
        command.append("--profile")
    subprocess.run(command, check=True, cwd=ROOT)


# -- main ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.billrun",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--subscriptions", type=int, default=DEFAULT_SUBSCRIPTIONS)
    parser.add_argument(
        "--events-per-subscription",
        type=int,
        default=DEFAULT_EVENTS_PER_SUBSCRIPTION,
        help="mean events per subscription (uniform in [mean/2, 3·mean/2]; default 20)",
    )
    parser.add_argument("--ledger", choices=(*LEDGERS, "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("METERLINE_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
        help="SQLAlchemy URL of the PostgreSQL ledger; its schema (public, or the first of "
        "the URL's search_path: ?options=-csearch_path%%3Dname) is dropped first. "
        "Default: $METERLINE_BENCH_POSTGRES_URL, else infra/postgres.sh's database",
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument(
        "--reuse", action="store_true", help="bill the last setup's data again (no setup)"
    )
    parser.add_argument("--record", action="store_true", help="write RESULTS.md even when quick")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--step", choices=tuple(STEPS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    if args.step:
        STEPS[args.step](args)
        return 0

    ledgers = list(LEDGERS) if args.ledger == "both" else [args.ledger]
    started = time.perf_counter()
    if not args.reuse:
        print(f"setup: {args.subscriptions:,} subscriptions in {args.data_dir} (child processes)")
        _child(args, "events")
        for ledger in ledgers:
            _child(args, "ledger", ledger)
    missing = [
        name
        for name in ("events.json", *(f"ledger-{ledger}.json" for ledger in ledgers))
        if not (args.data_dir / name).exists()
    ]
    if missing:
        print(f"--reuse: no earlier setup in {args.data_dir} ({', '.join(missing)})")
        return 2
    events = _read(args.data_dir / "events.json")
    if events["subscriptions"] != args.subscriptions:
        print(f"note: the data set has {events['subscriptions']:,} subscriptions (--reuse)")
        args.subscriptions = events["subscriptions"]
    measured: dict[str, dict[str, Any]] = {}
    for ledger in ledgers:
        print(f"bill run on {ledger} (child process), then its floor (another child)")
        _child(args, "run", ledger)
        _child(args, "floor", ledger)
        measured[ledger] = {
            name: _read(args.data_dir / f"{name}-{ledger}.json")
            for name in ("ledger", "run", "floor")
        }
    print(f"total wall time (setup, runs, floors): {time.perf_counter() - started:.1f} s")
    failed = False
    for ledger, parts in measured.items():
        print()
        print("\n".join(print_ledger(ledger, events, parts, profile=args.profile)))
        failed = failed or bool(parts["run"]["problems"])
    record(args, events, measured, ledgers)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
