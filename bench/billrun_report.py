"""What the bill-run benchmark prints and records in bench/RESULTS.md.

Two sections: `billrun` (the 100,000-subscription run on each ledger, `make
bench-billrun`) and `billrun-1m` (the one-off 1,000,000-subscription run on
PostgreSQL), each written only by a run of its own kind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import ROOT, now_text, table, write_section

TARGET_SUBSCRIPTIONS = 100_000
TARGET_SECONDS = 30.0
TARGET_RSS_MIB = 1024.0
TARGET_FLOOR_RATIO = 3.0
BIG = 1_000_000
LEDGER_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

BREAKDOWN_ORDER = (
    "load subscriptions",
    "ClickHouse: stage the run's events (FINAL, once)",
    "ClickHouse: register intervals (insert)",
    "ClickHouse: quantity queries",
    "ClickHouse: drop intervals",
    "ClickHouse: drop the staged events",
    "quantities: result frames → MeteredQuantity (Python)",
    "rating (pipeline)",
    "ledger: write invoices",
    "ledger: settle with effects (one by one)",
    "ledger: bill run progress updates",
    "other (contexts, batching, run rows)",
)
_CLICKHOUSE = (
    "ClickHouse: register intervals (insert)",
    "ClickHouse: quantity queries",
    "ClickHouse: drop intervals",
)


def breakdown(phases: Mapping[str, float], total: float) -> list[tuple[str, float]]:
    """The run's phases (timed from outside) in report order; what is left is "other"."""
    s = dict(phases)
    clickhouse = sum(s.get(k, 0.0) for k in _CLICKHOUSE)
    if "quantities (all)" in s:
        s["quantities: result frames → MeteredQuantity (Python)"] = (
            s.pop("quantities (all)") - clickhouse
        )
    accounted = sum(s.get(k, 0.0) for k in BREAKDOWN_ORDER[:-1])
    s["other (contexts, batching, run rows)"] = total - accounted
    return [(k, s[k]) for k in BREAKDOWN_ORDER if k in s]


def figures(ledger: str, n: int, parts: Mapping[str, Any]) -> dict[str, str]:
    """The `name: value` lines of one ledger."""
    run, floor = parts["run"], parts["floor"]
    ratio = run["runSeconds"] / floor["floorSeconds"] if floor["floorSeconds"] else float("inf")
    return {
        "billrun_ledger": ledger,
        "billrun_subscriptions": str(n),
        "billrun_seconds": f"{run['runSeconds']:.2f}",
        "billrun_peak_rss_mib": f"{run['runPeakRssMib']:.0f}",
        "billrun_floor_seconds": f"{floor['floorSeconds']:.2f}",
        "billrun_floor_ratio": f"{ratio:.2f}",
    }


def _check_text(run: Mapping[str, Any]) -> str:
    problems = run["problems"]
    return (
        f"{run['status']}, {run['invoicesCreated']:,} invoices, {run['failed']} failures; "
        f"{run['sampled']} sampled invoices "
        + ("exact to the cent" if not problems else "WRONG: " + "; ".join(problems[:3]))
    )


def _gc_text(run: Mapping[str, Any]) -> str:
    """The collector's pauses during the run (older run files lack them)."""
    if "gcSeconds" not in run:
        return ""
    return (
        f"; garbage-collector pauses {run['gcSeconds']:.1f} s "
        f"({run['gcFullCollections']} full collections)"
    )


def _load_text(run: Mapping[str, Any]) -> str:
    if "loadAverage" not in run:
        return ""
    start, end = run["loadAverage"]
    return f"; machine load average (1 min) {start:.1f} at the start, {end:.1f} at the end"


def _floor_parts(floor: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    inserted = floor["insertSeconds"]
    rows = floor["insertRows"]
    return [
        (
            "ClickHouse quantity queries, replayed raw",
            floor["querySeconds"],
            f"{len(floor['queries'])} queries",
        ),
        ("bulk insert of the invoices", inserted["invoices"], f"{rows['invoices']:,} rows"),
        ("bulk insert of the lines", inserted["invoice_lines"], f"{rows['invoice_lines']:,} rows"),
    ]


def print_ledger(
    ledger: str, events: Mapping[str, Any], parts: Mapping[str, Any], *, profile: bool
) -> list[str]:
    run, floor, setup = parts["run"], parts["floor"], parts["ledger"]
    lines = [f"{k}: {v}" for k, v in figures(ledger, events["subscriptions"], parts).items()]
    lines.append("floor (measured after the run, in another process):")
    lines += [f"  {name:<55} {s:8.2f} s  {extra}" for name, s, extra in _floor_parts(floor)]
    if not floor["queries"]:
        # The run must read ClickHouse through the client the harness hands it.
        lines.append(
            "  WARNING: no quantity query was recorded: the floor lacks the ClickHouse part"
        )
    lines.append(
        f"setup: events (shared) {events['seconds']:.1f} s, peak {events['peakRssMib']:.0f} MiB; "
        f"this ledger {setup['seconds']:.1f} s, peak {setup['peakRssMib']:.0f} MiB"
    )
    lines.append(
        f"run process: RSS before the run {run['rssBeforeMib']:.0f} MiB, "
        f"CPU during the run {run['cpuSeconds']:.1f} s{_gc_text(run)}{_load_text(run)}"
    )
    lines.append(f"breakdown ({'under cProfile, inflated' if profile else 'wall clock'}):")
    total = run["runSeconds"]
    for name, seconds in run["breakdown"]:
        share = 100 * seconds / total if total else 0.0
        lines.append(f"  {name:<55} {seconds:8.2f} s  {share:5.1f} %")
    lines.append("  ClickHouse queries of the run (one per metric variant):")
    for label, amounts, height, seconds in run["queries"]:
        extra = " + per-event amounts" if amounts else ""
        lines.append(f"    {label + extra:<53} {seconds:8.2f} s  {height:>8} rows")
    lines.append(f"checked: {_check_text(run)}")
    lines += [f"  PROBLEM: {p}" for p in run["problems"][:20]]
    return lines


# -- RESULTS.md --------------------------------------------------------------------------


def _revision() -> str:
    """The commit measured; METERLINE_BENCH_REVISION names it for a tree exported from git."""
    if os.environ.get("METERLINE_BENCH_REVISION"):
        return os.environ["METERLINE_BENCH_REVISION"]
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return found.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else "")


def _command(args: argparse.Namespace, ledgers: Sequence[str]) -> str:
    shown = "python -m bench.billrun"
    if args.subscriptions != TARGET_SUBSCRIPTIONS:
        shown += f" --subscriptions {args.subscriptions}"
    if args.events_per_subscription != 20:
        shown += f" --events-per-subscription {args.events_per_subscription}"
    if len(ledgers) == 1:
        shown += f" --ledger {ledgers[0]}"
    return shown


def _data_text(events: Mapping[str, Any], setup: Mapping[str, Any]) -> str:
    plans = ", ".join(f"{code} {count:,}" for code, count in setup["planCounts"].items())
    lo, hi = events["eventsPerSubscription"]
    return (
        f"Data: {events['subscriptions']:,} subscriptions ({plans}), one customer each; "
        f"{events['events']:,} events in ClickHouse ({lo}–{hi} per subscription; "
        f"{events['duplicates']:,} more rows are later copies of accepted ids, ~3 % lie "
        f"outside the month), {events['parts'][0]} parts after setup; billed month "
        f"{events['periodStart'][:7]}."
    )


def _ledger_block(ledger: str, events: Mapping[str, Any], parts: Mapping[str, Any]) -> list[str]:
    run, floor, setup = parts["run"], parts["floor"], parts["ledger"]
    values = figures(ledger, events["subscriptions"], parts)
    summary = [
        ("bill run seconds", values["billrun_seconds"]),
        ("peak RSS of the bill-run process (MiB)", values["billrun_peak_rss_mib"]),
        ("floor seconds", values["billrun_floor_seconds"]),
        ("ratio run / floor", values["billrun_floor_ratio"]),
    ]
    summary += [(f"floor: {name} ({extra})", f"{s:.2f}") for name, s, extra in _floor_parts(floor)]
    total = run["runSeconds"]
    phases = [
        (name, f"{seconds:.2f}", f"{100 * seconds / total:.1f} %" if total else "")
        for name, seconds in run["breakdown"]
    ]
    queries = [
        (label + (" + per-event amounts" if amounts else ""), f"{seconds:.2f}", f"{height:,}")
        for label, amounts, height, seconds in run["queries"]
    ]
    server = f" ({setup['server']})" if setup.get("server") else ""
    return [
        f"### {LEDGER_NAMES[ledger]} ledger{server}",
        "",
        "```",
        *(f"{k}: {v}" for k, v in values.items()),
        "```",
        "",
        table(summary, ("measure", "value")),
        "",
        f"Result: {_check_text(run)}. RSS before the run {run['rssBeforeMib']:.0f} MiB; CPU "
        f"time of the process during the run {run['cpuSeconds']:.1f} s (user + system)"
        f"{_gc_text(run)}"
        f"{_load_text(run)}.",
        "",
        "Where the time goes (phases timed from outside, same code):",
        "",
        table(phases, ("phase", "seconds", "share")),
        "",
        "ClickHouse queries of the run (one per metric variant, each over every subscription):",
        "",
        table(queries, ("query", "seconds", "rows")),
        "",
        f"Setup of this ledger (not timed): {setup['seconds']:.1f} s, peak RSS "
        f"{setup['peakRssMib']:.0f} MiB — "
        + ", ".join(f"{k} {v:.1f} s" for k, v in setup["phases"].items())
        + ".",
    ]


def _met(parts: Mapping[str, Any]) -> bool:
    run, floor = parts["run"], parts["floor"]
    ratio = run["runSeconds"] / floor["floorSeconds"] if floor["floorSeconds"] else float("inf")
    return (
        not run["problems"]
        and run["runSeconds"] <= TARGET_SECONDS
        and run["runPeakRssMib"] <= TARGET_RSS_MIB
        and ratio <= TARGET_FLOOR_RATIO
    )


_FLOOR_TEXT = (
    "Floor = the run's own ClickHouse quantity queries replayed verbatim (same SQL and "
    "parameters on the same billing intervals, results fetched as bytes, not decoded) "
    "+ a raw bulk insert of the invoice and line rows the run wrote into scratch copies "
    "of `invoices` / `invoice_lines` (same keys, indexes and foreign keys; COPY via "
    "psycopg's `cursor.copy` on PostgreSQL, `executemany` on SQLite; 10,000 rows per "
    "transaction), measured after the run in another process, so it adds nothing to the "
    "run's peak RSS. The run's billing-interval deletes (a lightweight ClickHouse "
    "mutation) are deferred until the floor has replayed the queries."
)


def _main_section(
    args: argparse.Namespace,
    events: Mapping[str, Any],
    measured: Mapping[str, Mapping[str, Any]],
    ledgers: Sequence[str],
) -> str:
    rows = []
    for ledger in ledgers:
        values = figures(ledger, events["subscriptions"], measured[ledger])
        rows.append(
            (
                LEDGER_NAMES[ledger],
                values["billrun_seconds"],
                values["billrun_peak_rss_mib"],
                values["billrun_floor_seconds"],
                values["billrun_floor_ratio"],
                "met" if _met(measured[ledger]) else "not met",
            )
        )
    met = all(_met(measured[ledger]) for ledger in ledgers)
    first = measured[ledgers[0]]["ledger"]
    lines = [
        "## Bill run (`make bench-billrun`)",
        "",
        f"Last run {now_text()}, code {_revision()}: `{_command(args, ledgers)}`",
        "",
        f"Target: {TARGET_SUBSCRIPTIONS:,} subscriptions in ≤ {TARGET_SECONDS:.0f} s and "
        f"≤ 1 GiB peak on each ledger, floor ratio ≤ {TARGET_FLOOR_RATIO:.0f}: "
        f"**{'met' if met else 'not met'}**.",
        "",
        table(rows, ("ledger", "seconds", "peak MiB", "floor seconds", "ratio", "target")),
        "",
        _data_text(events, first),
        f"Events setup (shared by the ledgers, not timed): {events['seconds']:.1f} s, peak RSS "
        f"{events['peakRssMib']:.0f} MiB — "
        + ", ".join(f"{k} {v:.1f} s" for k, v in events["phases"].items())
        + ".",
        "",
        "Peak RSS is the bill-run process's own: every setup step, each run and each floor "
        f"is a separate child process. The machine has {os.cpu_count()} CPUs, shared with "
        "other work while measured.",
        "",
        _FLOOR_TEXT,
    ]
    for ledger in ledgers:
        lines += ["", *_ledger_block(ledger, events, measured[ledger])]
    return "\n".join(lines)


def _big_section(
    args: argparse.Namespace, events: Mapping[str, Any], parts: Mapping[str, Any]
) -> str:
    run, setup = parts["run"], parts["ledger"]
    values = figures("postgres", events["subscriptions"], parts)
    rows = [
        ("setup: events in ClickHouse", f"{events['seconds']:.1f}", f"{events['peakRssMib']:.0f}"),
        ("setup: PostgreSQL ledger", f"{setup['seconds']:.1f}", f"{setup['peakRssMib']:.0f}"),
        ("bill run", values["billrun_seconds"], values["billrun_peak_rss_mib"]),
        ("floor", values["billrun_floor_seconds"], f"{parts['floor']['peakRssMib']:.0f}"),
    ]
    total = run["runSeconds"]
    phases = [
        (name, f"{seconds:.2f}", f"{100 * seconds / total:.1f} %" if total else "")
        for name, seconds in run["breakdown"]
    ]
    return "\n".join(
        [
            f"## Bill run, {BIG:,} subscriptions on PostgreSQL (one-off)",
            "",
            f"Last run {now_text()}, code {_revision()}: `{_command(args, ['postgres'])}` "
            "(written only by such a run).",
            "",
            "```",
            *(f"{k}: {v}" for k, v in values.items()),
            "```",
            "",
            table(rows, ("step (each its own process)", "seconds", "peak RSS MiB")),
            "",
            f"Result: {_check_text(run)}.",
            "",
            _data_text(events, setup),
            "",
            table(phases, ("phase", "seconds", "share")),
        ]
    )


def record(
    args: argparse.Namespace,
    events: Mapping[str, Any],
    measured: Mapping[str, Mapping[str, Any]],
    ledgers: Sequence[str],
) -> None:
    """Write the section this run owns, if any (quick runs only with --record)."""
    if args.no_record or args.profile:
        return
    if args.subscriptions == BIG and list(ledgers) == ["postgres"]:
        write_section("billrun-1m", _big_section(args, events, measured["postgres"]))
        print("recorded in bench/RESULTS.md (billrun-1m)")
    elif args.subscriptions == TARGET_SUBSCRIPTIONS or args.record:
        write_section("billrun", _main_section(args, events, measured, ledgers))
        print("recorded in bench/RESULTS.md")
