"""Bill run benchmark: 100,000 subscriptions over 5 metrics, one bill run, timed.

    python -m bench.billrun                       # the recorded figures (bench/RESULTS.md)
    python -m bench.billrun --subscriptions 5000  # a quick run (not recorded)
    python -m bench.billrun --profile             # the same run under cProfile (not recorded)
    python -m bench.billrun --reuse               # bill the data of the last setup again

Setup (not timed) runs in a child process so that its memory does not count towards
the bill run's peak RSS: a fresh data dir, the embedded stores (SQLite ledger, chDB),
one tenant, 5 metrics (count, sum, max, unique_count, latest), 5 plans mixing the
per_unit, graduated, volume, package and percentage models, N customers with one
subscription each (bulk inserts), and ~20 usage events per subscription written
through the ClickHouse sink in chunks of 200,000, a few of them resent later with
other values (duplicates that must not count) and some outside the billed month.

Timed: create_bill_run + BillRunner.run for the month. Then checked: the run created
exactly N invoices with no failure, and 20 sampled invoices (4 per plan) equal, line
by line and to the cent, the totals recomputed here from the generated events with
rating.pricing directly.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import delete, func, insert, select

from api.schemas.catalog import MetricCreate, PlanCreate
from bench.common import (
    ROOT,
    Phases,
    cpu_seconds,
    current_rss_mib,
    now_text,
    peak_rss_mib,
    table,
    write_section,
)
from invoicing.billing import BillRunner, create_bill_run
from invoicing.catalog import create_metric, create_plan
from invoicing.models import (
    BillRunRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    SubscriptionRow,
    new_id,
)
from invoicing.tenants import create_tenant
from meterline.runtime import Runtime
from meterline.settings import Settings
from rating import pricing
from rating.model import Metric, Period
from rating.money import round_money
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import BillingInterval, UsageStore

DEFAULT_SUBSCRIPTIONS = 100_000
DATA_DIR = ROOT / ".meterline" / "bench-billrun"
CHUNK = 200_000
SAMPLE_PER_PLAN = 4
TARGET_SECONDS = 60.0
TARGET_RSS_MIB = 2048.0
DUPLICATE_SHARE = 0.005  # events resent later with another value: must not count
OUTSIDE_SHARE = 0.03  # events outside the billed month: must not count
SEED = 2026

# -- the catalog -------------------------------------------------------------------

METRICS: list[dict[str, Any]] = [
    {"code": "api_calls", "name": "API calls", "aggregation": "count"},
    {"code": "payment_volume", "name": "Payment volume", "aggregation": "sum"},
    {"code": "peak_seats", "name": "Peak seats", "aggregation": "max"},
    {"code": "active_users", "name": "Active users", "aggregation": "unique_count",
     "field": "user"},
    {"code": "storage_gb", "name": "Storage (GB)", "aggregation": "latest"},
]  # fmt: skip

# The share of events of each metric.
EVENT_MIX = {
    "api_calls": 40,
    "payment_volume": 20,
    "peak_seats": 10,
    "active_users": 20,
    "storage_gb": 10,
}


def _tiers(*tiers: tuple[str | None, str, str]) -> dict[str, Any]:
    return {"tiers": [{"upTo": u, "unitAmount": p, "flatAmount": f} for u, p, f in tiers]}


PLANS: list[dict[str, Any]] = [
    {
        "code": "starter", "name": "Starter", "baseFee": "19", "weight": 30,
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "0.25"},
             "includedQuantity": "3"},
            {"metric": "payment_volume", "model": "percentage", "properties": {"rate": "1.5"}},
            {"metric": "peak_seats", "model": "per_unit", "properties": {"unitAmount": "4"}},
            {"metric": "active_users", "model": "package",
             "properties": {"amount": "10", "packageSize": "5", "freeUnits": "2"}},
            {"metric": "storage_gb", "model": "per_unit", "properties": {"unitAmount": "0.023"}},
        ],
    },
    {
        "code": "growth", "name": "Growth", "baseFee": "49", "weight": 25,
        "charges": [
            {"metric": "api_calls", "model": "graduated",
             "properties": _tiers(("5", "0", "0"), ("20", "0.2", "0"), (None, "0.1", "1"))},
            {"metric": "payment_volume", "model": "percentage",
             "properties": {"rate": "2.9", "fixedAmount": "0.30"}},
            {"metric": "peak_seats", "model": "volume",
             "properties": _tiers(("10", "6", "0"), ("40", "5", "0"), (None, "4", "25"))},
            {"metric": "active_users", "model": "per_unit", "properties": {"unitAmount": "3"},
             "includedQuantity": "2"},
            {"metric": "storage_gb", "model": "graduated",
             "properties": _tiers(("100", "0", "0"), ("500", "0.02", "0"), (None, "0.015", "0"))},
        ],
    },
    {
        "code": "scale", "name": "Scale", "baseFee": "199", "weight": 20,
        "charges": [
            {"metric": "api_calls", "model": "volume", "filters": {"region": ["eu", "us"]},
             "properties": _tiers(("8", "0.5", "0"), (None, "0.35", "2"))},
            {"metric": "payment_volume", "model": "graduated",
             "properties": _tiers(("1000", "0.02", "0"), (None, "0.012", "0"))},
            {"metric": "peak_seats", "model": "package",
             "properties": {"amount": "40", "packageSize": "10", "freeUnits": "0"}},
            {"metric": "active_users", "model": "graduated",
             "properties": _tiers(("3", "0", "5"), (None, "2.5", "0"))},
            {"metric": "storage_gb", "model": "volume",
             "properties": _tiers(("250", "0.03", "0"), (None, "0.02", "0"))},
        ],
    },
    {
        "code": "payments", "name": "Payments", "baseFee": "9", "weight": 15,
        "charges": [
            {"metric": "api_calls", "model": "package",
             "properties": {"amount": "1", "packageSize": "10", "freeUnits": "0"}},
            {"metric": "payment_volume", "model": "percentage",
             "properties": {"rate": "2.5", "freeUnitsPerTotalAggregation": "100"}},
            {"metric": "peak_seats", "model": "per_unit", "properties": {"unitAmount": "2"},
             "includedQuantity": "5"},
            {"metric": "active_users", "model": "volume",
             "properties": _tiers(("5", "1", "0"), (None, "0.8", "0"))},
            {"metric": "storage_gb", "model": "package",
             "properties": {"amount": "5", "packageSize": "100", "freeUnits": "50"}},
        ],
    },
    {
        "code": "enterprise", "name": "Enterprise", "baseFee": "999", "weight": 10,
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "0.05"},
             "includedQuantity": "10"},
            {"metric": "payment_volume", "model": "percentage",
             "properties": {"rate": "1", "perTransactionMin": "0.05",
                            "perTransactionMax": "5"}},
            {"metric": "peak_seats", "model": "graduated",
             "properties": _tiers(("20", "3", "0"), (None, "2", "0"))},
            {"metric": "active_users", "model": "per_unit", "properties": {"unitAmount": "1.5"}},
            {"metric": "storage_gb", "model": "per_unit", "properties": {"unitAmount": "0.01"},
             "includedQuantity": "100"},
        ],
    },
]  # fmt: skip

# -- the billed month ----------------------------------------------------------------


def last_month(now: datetime) -> Period:
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (this_month - timedelta(days=1)).replace(day=1)
    return Period(start, this_month)


# -- setup (child process) -------------------------------------------------------------


@dataclass
class Generator:
    """Deterministic usage events of one subscription (a customer) of the month."""

    period: Period
    now: datetime
    rng: random.Random

    def events(self, tenant_id: str, index: int, customer: str) -> list[UsageEvent]:
        rng = self.rng
        span_ms = int((self.period.end - self.period.start) / timedelta(milliseconds=1))
        before_ms = 20 * 86_400_000
        after_ms = max(1, int((self.now - self.period.end) / timedelta(milliseconds=1)) - 60_000)
        metrics = list(EVENT_MIX)
        weights = list(EVENT_MIX.values())
        out: list[UsageEvent] = []
        for j in range(rng.randint(10, 30)):
            metric = rng.choices(metrics, weights)[0]
            roll = rng.random()
            if roll < OUTSIDE_SHARE / 2:
                ts = self.period.start - timedelta(milliseconds=rng.randrange(1, before_ms))
            elif roll < OUTSIDE_SHARE:
                ts = self.period.end + timedelta(milliseconds=rng.randrange(after_ms))
            else:
                ts = self.period.start + timedelta(milliseconds=rng.randrange(span_ms))
            value, properties = self.payload(metric)
            out.append(
                UsageEvent(
                    tenant_id=tenant_id,
                    event_id=f"e{index:07d}_{j:02d}",
                    customer_id=customer,
                    metric=metric,
                    timestamp=ts,
                    value=value,
                    properties=properties,
                )
            )
        return out

    def payload(self, metric: str) -> tuple[Decimal | None, dict[str, str]]:
        rng = self.rng
        if metric == "api_calls":
            return None, {"region": rng.choice(("eu", "us", "ap"))}
        if metric == "payment_volume":
            return Decimal(rng.randint(100, 50_000)).scaleb(-2), {"currency": "USD"}
        if metric == "peak_seats":
            return Decimal(rng.randint(1, 60)), {}
        if metric == "active_users":
            return None, {"user": f"u{rng.randint(0, 15)}"}
        return Decimal(rng.randint(0, 120_000)).scaleb(-2), {}


def _metric_domain(spec: Mapping[str, Any]) -> Metric:
    from rating.model import Aggregation

    return Metric(
        code=spec["code"],
        name=spec["name"],
        aggregation=Aggregation(spec["aggregation"]),
        field=spec.get("field", "value"),
    )


def expected_invoice(
    plan: Mapping[str, Any], events: Sequence[UsageEvent], period: Period
) -> dict[str, str]:
    """{charge id or "base": rounded line amount, "total": total} from the raw events.

    Written independently of the bill run: the aggregation is done here in Python over
    the events that count (inside the period, first copy of each id, passing the
    charge's filters), then rating.pricing prices it and the line rounds once.
    """
    metrics = {m["code"]: _metric_domain(m) for m in METRICS}
    inside = [e for e in events if period.start <= e.timestamp < period.end]
    lines: dict[str, str] = {"base": str(round_money(Decimal(plan["baseFee"]), "USD"))}
    total = Decimal(plan["baseFee"])
    for charge in plan["charges"]:
        metric = metrics[charge["metric"]]
        rows = [
            e
            for e in inside
            if e.metric == metric.code
            and all(e.properties.get(k) in v for k, v in (charge.get("filters") or {}).items())
        ]
        quantity = _aggregate(metric, rows)
        billable = max(quantity - Decimal(charge.get("includedQuantity") or 0), Decimal(0))
        needs = pricing.needs_event_amounts(charge["model"], charge["properties"])
        amounts = (
            tuple(
                e.value or Decimal(0) for e in sorted(rows, key=lambda e: (e.timestamp, e.event_id))
            )
            if needs
            else ()
        )
        priced = pricing.price(
            charge["model"],
            charge["properties"],
            pricing.ChargeUsage(quantity=billable, event_count=len(rows), event_amounts=amounts),
        )
        amount = round_money(priced.amount, "USD")
        lines[charge["id"]] = str(amount)
        total += amount
    lines["total"] = str(total)
    return lines


def _aggregate(metric: Metric, rows: Sequence[UsageEvent]) -> Decimal:
    match metric.aggregation.value:
        case "count":
            return Decimal(len(rows))
        case "sum":
            return sum((e.value or Decimal(0) for e in rows), Decimal(0))
        case "max":
            return max((e.value for e in rows if e.value is not None), default=Decimal(0))
        case "unique_count":
            return Decimal(len({e.properties[metric.field] for e in rows}))
        case "latest":
            if not rows:
                return Decimal(0)
            last = max(rows, key=lambda e: (e.timestamp, e.event_id))
            return last.value or Decimal(0)
    raise ValueError(metric.aggregation)


def setup(data_dir: Path, n_subscriptions: int) -> None:
    """Build the data set (runs in its own process); writes setup.json for the run."""
    started = time.perf_counter()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    settings = _settings(data_dir)
    runtime = Runtime.open(settings)
    phases = Phases()
    now = datetime.now(UTC)
    period = last_month(now)
    rng = random.Random(SEED)
    try:
        with phases.time("catalog"), runtime.session() as session:
            tenant_id = create_tenant(session, "bench").tenant_id
            for spec in METRICS:
                create_metric(session, tenant_id, MetricCreate.model_validate(spec).to_spec())
            plans = []
            for spec in PLANS:
                body = PlanCreate.model_validate({**spec, "currency": "USD", "interval": "monthly"})
                row = create_plan(session, tenant_id, body.to_spec())
                plans.append({**spec, "id": row.id, "charges": row.charges})
        plan_of = rng.choices(range(len(plans)), [p["weight"] for p in plans], k=n_subscriptions)
        with phases.time("customers and subscriptions (bulk insert)"):
            sub_ids = _insert_subscriptions(runtime, tenant_id, plans, plan_of, period)
        samples = _sample(rng, plan_of, len(plans))
        generator = Generator(period, now, rng)
        sink = ClickHouseSink(runtime.clickhouse, settings.clickhouse_database)
        pending: list[UsageEvent] = []
        duplicates: list[UsageEvent] = []
        expected: dict[str, dict[str, str]] = {}
        written = 0
        for index in range(n_subscriptions):
            with phases.time("generate events"):
                events = generator.events(tenant_id, index, _external_id(index))
                if index in samples:
                    expected[sub_ids[index]] = expected_invoice(
                        plans[plan_of[index]], events, period
                    )
                for event in events:
                    if rng.random() < DUPLICATE_SHARE:
                        value, properties = generator.payload(event.metric)
                        duplicates.append(
                            replace(
                                event,
                                value=value,
                                properties=properties,
                                timestamp=period.start + timedelta(hours=rng.randrange(24 * 28)),
                            )
                        )
                pending.extend(events)
            if len(pending) >= CHUNK:
                with phases.time("write events (ClickHouseSink.write_events)"):
                    sink.write_events(pending)
                written += len(pending)
                pending = []
        with phases.time("write events (ClickHouseSink.write_events)"):
            if pending:
                sink.write_events(pending)
                written += len(pending)
            # Later copies of accepted events: ReplacingMergeTree keeps the first.
            sink.write_events(duplicates)
        parts = runtime.clickhouse.query(
            "SELECT count(), sum(rows) FROM system.parts WHERE active "
            "AND database = {d:String} AND table = 'usage_events'",
            parameters={"d": settings.clickhouse_database},
        ).result_rows[0]
    finally:
        runtime.close()
    info = {
        "tenantId": tenant_id,
        "periodStart": period.start.isoformat(),
        "periodEnd": period.end.isoformat(),
        "subscriptions": n_subscriptions,
        "events": written,
        "duplicates": len(duplicates),
        "parts": [int(parts[0]), int(parts[1])],
        "plans": {p["code"]: sum(1 for i in plan_of if plans[i] is p) for p in plans},
        "setupSeconds": time.perf_counter() - started,
        "phases": phases.seconds,
        "expected": expected,
    }
    (data_dir / "setup.json").write_text(json.dumps(info, indent=1))


def _external_id(index: int) -> str:
    return f"cust_{index:07d}"


def _sample(rng: random.Random, plan_of: Sequence[int], n_plans: int) -> set[int]:
    by_plan: dict[int, list[int]] = defaultdict(list)
    for index, plan in enumerate(plan_of):
        by_plan[plan].append(index)
    chosen: set[int] = set()
    for plan in range(n_plans):
        members = by_plan.get(plan, [])
        chosen.update(rng.sample(members, min(SAMPLE_PER_PLAN, len(members))))
    return chosen


def _insert_subscriptions(
    runtime: Runtime,
    tenant_id: str,
    plans: Sequence[Mapping[str, Any]],
    plan_of: Sequence[int],
    period: Period,
) -> list[str]:
    """N customers and one subscription each, many rows per INSERT statement."""
    start = period.start - timedelta(days=61)
    created = datetime.now(UTC)
    customer_ids = [new_id("cus") for _ in plan_of]
    sub_ids = [new_id("sub") for _ in plan_of]
    batch = 10_000
    with runtime.session() as session:
        for offset in range(0, len(plan_of), batch):
            rows = range(offset, min(offset + batch, len(plan_of)))
            session.execute(
                insert(CustomerRow),
                [
                    {
                        "id": customer_ids[i],
                        "tenant_id": tenant_id,
                        "external_id": _external_id(i),
                        "name": f"Customer {i}",
                        "email": None,
                        "currency": "USD",
                        "country": "US",
                        "region": None,
                        "tax_exempt": False,
                        "timezone": "UTC",
                        "invoice_grace_days": 0,
                        "created_at": created,
                    }
                    for i in rows
                ],
            )
            session.execute(
                insert(SubscriptionRow),
                [
                    {
                        "id": sub_ids[i],
                        "tenant_id": tenant_id,
                        "customer_id": customer_ids[i],
                        "plan_id": plans[plan_of[i]]["id"],
                        "start_date": start,
                        "end_date": None,
                        "status": "active",
                        "overrides": {},
                        "created_at": created + timedelta(microseconds=i),
                        "terminated_at": None,
                    }
                    for i in rows
                ],
            )
    return sub_ids


def _settings(data_dir: Path) -> Settings:
    # The embedded stores, whatever the environment says.
    return Settings(data_dir=data_dir, clickhouse_dsn=None, database_url=None, kafka_bootstrap=None)


# -- the timed run ------------------------------------------------------------------------


class TimedUsageStore(UsageStore):
    """The usage store, timing its ClickHouse calls."""

    def __init__(self, client: Any, database: str, phases: Phases) -> None:
        super().__init__(client, database)
        self.phases = phases
        self.queries: list[tuple[str, bool, int, float]] = []

    def register_intervals(self, tenant_id: str, intervals: Sequence[BillingInterval]) -> str:
        with self.phases.time("ClickHouse: register intervals (insert)"):
            return super().register_intervals(tenant_id, intervals)

    def interval_quantities(
        self,
        tenant_id: str,
        run_key: str,
        metric: Metric,
        extra_filters: Mapping[str, Sequence[str]],
        window_start: datetime,
        window_end: datetime,
        *,
        with_amounts: bool = False,
    ) -> pl.DataFrame:
        started = time.perf_counter()
        frame = super().interval_quantities(
            tenant_id,
            run_key,
            metric,
            extra_filters,
            window_start,
            window_end,
            with_amounts=with_amounts,
        )
        seconds = time.perf_counter() - started
        self.phases.add("ClickHouse: quantity queries", seconds)
        label = metric.code + (" (filtered)" if extra_filters else "")
        self.queries.append((label, with_amounts, frame.height, seconds))
        return frame

    def drop_intervals(self, run_key: str) -> None:
        with self.phases.time("ClickHouse: drop intervals"):
            super().drop_intervals(run_key)


# What is timed from outside: (module, attribute path, phase). The bill run's own code
# runs unchanged; each of these is replaced by a timing wrapper for the run only.
# Entries that do not resolve (the code moved on) are skipped; nested entries of one
# phase are counted once (the outermost call).
TIMED: list[tuple[str, str, str]] = [
    ("invoicing.billing.loading", "_page", "load subscriptions"),
    ("invoicing.billing.loading", "invoiced_keys", "load subscriptions"),
    ("streams.usage_store", "UsageStore.metered_quantities", "quantities (all)"),
    ("invoicing.tax.service", "TaxService.rate", "rating (pipeline)"),
    ("invoicing.billing.runner", "BillRunner._write", "ledger: write invoices"),
    ("invoicing.billing.runner", "update_run", "ledger: bill run progress updates"),
]


def _resolve(module_name: str, path: str) -> tuple[object, str, Any] | None:
    try:
        owner: object = importlib.import_module(module_name)
    except ImportError:
        return None
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return None
    # A method is taken from its own class (not inherited), a function from its module.
    found = vars(owner) if isinstance(owner, type) else owner.__dict__
    original = found.get(name)
    return None if original is None else (owner, name, original)


def _timing(phases: Phases, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    depth = {"n": 0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        depth["n"] += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            depth["n"] -= 1
            if depth["n"] == 0:
                phases.add(phase, time.perf_counter() - started)

    return timed


@contextmanager
def timed_phases(phases: Phases) -> Iterator[list[str]]:
    """Wrap the TIMED functions with timers while the block runs; yields what was wrapped."""
    restore: list[tuple[object, str, Any]] = []
    wrapped: list[str] = []
    try:
        for module_name, path, phase in TIMED:
            found = _resolve(module_name, path)
            if found is None:
                continue
            owner, name, original = found
            restore.append((owner, name, original))
            wrapped.append(f"{module_name}.{path}")
            setattr(owner, name, _timing(phases, phase, original))
        yield wrapped
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


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


def bill(runtime: Runtime, tenant_id: str, period: Period, *, profile: bool) -> RunResult:
    phases = Phases()
    usage = TimedUsageStore(runtime.clickhouse, runtime.settings.clickhouse_database, phases)
    runner = BillRunner(runtime.sessions, usage)
    profiler = cProfile.Profile() if profile else None
    rss_before = current_rss_mib()
    cpu_before = cpu_seconds()
    with timed_phases(phases) as wrapped:
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
    )


def verify(
    runtime: Runtime, run_id: str, tenant_id: str, n: int, expected: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Problems found (empty when the run is right)."""
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


# -- report -------------------------------------------------------------------------------


BREAKDOWN_ORDER = (
    "load subscriptions",
    "ClickHouse: register intervals (insert)",
    "ClickHouse: quantity queries",
    "ClickHouse: drop intervals",
    "quantities: result frames → MeteredQuantity (Python)",
    "rating (pipeline)",
    "ledger: write invoices",
    "ledger: bill run progress updates",
    "other (contexts, batching, run rows)",
)


def breakdown(result: RunResult) -> list[tuple[str, float]]:
    s = dict(result.phases.seconds)
    clickhouse = sum(
        s.get(k, 0.0)
        for k in (
            "ClickHouse: register intervals (insert)",
            "ClickHouse: quantity queries",
            "ClickHouse: drop intervals",
        )
    )
    s["quantities: result frames → MeteredQuantity (Python)"] = s.pop("quantities (all)", 0.0) - (
        clickhouse
    )
    accounted = sum(s.get(k, 0.0) for k in BREAKDOWN_ORDER[:-1])
    s["other (contexts, batching, run rows)"] = result.seconds - accounted
    return [(k, s.get(k, 0.0)) for k in BREAKDOWN_ORDER]


def _print_breakdown(result: RunResult) -> list[str]:
    lines = []
    for name, seconds in breakdown(result):
        share = 100 * seconds / result.seconds if result.seconds else 0.0
        lines.append(f"  {name:<55} {seconds:8.2f} s  {share:5.1f} %")
    lines.append("  ClickHouse queries (one per metric variant, over every subscription):")
    for label, amounts, height, seconds in result.queries:
        extra = " + per-event amounts" if amounts else ""
        lines.append(f"    {label + extra:<53} {seconds:8.2f} s  {height:>8} rows")
    return lines


def _markdown(
    info: Mapping[str, Any],
    result: RunResult,
    peak: float,
    problems: Sequence[str],
    command: str,
) -> str:
    n = result.invoices_created
    ok = result.seconds <= TARGET_SECONDS and peak <= TARGET_RSS_MIB
    rows = [
        (name, f"{seconds:.2f}", f"{100 * seconds / result.seconds:.1f} %")
        for name, seconds in breakdown(result)
    ]
    queries = [
        (label + (" + per-event amounts" if amounts else ""), f"{seconds:.2f}", f"{height:,}")
        for label, amounts, height, seconds in result.queries
    ]
    setup_rows = [(k, f"{v:.1f}") for k, v in info["phases"].items()]
    plans = ", ".join(f"{code} {count:,}" for code, count in info["plans"].items())
    return "\n".join(
        [
            "## Bill run (`make bench-billrun`)",
            "",
            f"Last run {now_text()}: `{command}`",
            "",
            "```",
            f"billrun_subscriptions: {info['subscriptions']}",
            f"billrun_seconds: {result.seconds:.2f}",
            f"billrun_peak_rss_mib: {peak:.0f}",
            "```",
            "",
            f"Target: {DEFAULT_SUBSCRIPTIONS:,} subscriptions in ≤ {TARGET_SECONDS:.0f} s and "
            f"≤ 2 GiB: **{'met' if ok else 'missed'}**. Result: {result.status}, "
            f"{n:,} invoices, {result.failed} failures; sampled invoices "
            f"{'exact to the cent' if not problems else 'WRONG: ' + '; '.join(problems[:3])}.",
            "",
            f"Data: {info['subscriptions']:,} subscriptions ({plans}), one customer each; "
            f"{info['events']:,} events in ClickHouse ({info['duplicates']:,} more are later "
            f"copies of accepted ids, ~{OUTSIDE_SHARE:.0%} lie outside the month), "
            f"{info['parts'][0]} parts; billed month {info['periodStart'][:7]}. "
            f"Peak RSS is the bill-run process (setup runs in a child process); "
            f"RSS before the run {result.rss_before_mib:.0f} MiB. CPU time of the process "
            f"during the run: {result.cpu_seconds:.1f} s (user + system; the machine has "
            f"{os.cpu_count()} CPUs, shared with other work while measured).",
            "",
            "Where the time goes (phases timed from outside, same code):",
            "",
            table(rows, ("phase", "seconds", "share")),
            "",
            "ClickHouse queries (one per metric variant, each over every subscription):",
            "",
            table(queries, ("query", "seconds", "rows")),
            "",
            f"Setup (not timed): {info['setupSeconds']:.1f} s",
            "",
            table(setup_rows, ("setup step", "seconds")),
        ]
    )


# -- main ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.billrun", description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=DEFAULT_SUBSCRIPTIONS)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument(
        "--reuse", action="store_true", help="bill the last setup's data again (no setup)"
    )
    parser.add_argument("--record", action="store_true", help="write RESULTS.md even when quick")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    if args.setup_only:
        setup(data_dir, args.subscriptions)
        return 0

    info_path = data_dir / "setup.json"
    if not args.reuse:
        print(f"setup: {args.subscriptions:,} subscriptions in {data_dir} (child process)")
        command = [sys.executable, "-m", "bench.billrun", "--setup-only"]
        command += ["--subscriptions", str(args.subscriptions), "--data-dir", str(data_dir)]
        subprocess.run(command, check=True, cwd=ROOT)
    info = json.loads(info_path.read_text())
    print(f"setup_seconds: {info['setupSeconds']:.1f}")
    for name, seconds in info["phases"].items():
        print(f"  {name:<55} {seconds:8.1f} s")
    print(
        f"  {info['events']:,} events (+{info['duplicates']:,} duplicates) in "
        f"{info['parts'][0]} parts; plans {info['plans']}"
    )

    runtime = Runtime.open(_settings(data_dir))
    try:
        tenant_id = info["tenantId"]
        period = Period(
            datetime.fromisoformat(info["periodStart"]), datetime.fromisoformat(info["periodEnd"])
        )
        if args.reuse:
            _reset_ledger(runtime, tenant_id)
        result = bill(runtime, tenant_id, period, profile=args.profile)
        peak = peak_rss_mib()
        problems = verify(
            runtime, result.run_id, tenant_id, info["subscriptions"], info["expected"]
        )
    finally:
        runtime.close()
    if result.status != "completed" or result.failed:
        problems.insert(0, f"run {result.status} with {result.failed} failures {result.failures}")
    if result.invoices_created != info["subscriptions"]:
        problems.insert(0, f"{result.invoices_created} invoices created")

    print(f"billrun_subscriptions: {info['subscriptions']}")
    print(f"billrun_seconds: {result.seconds:.2f}")
    print(f"billrun_peak_rss_mib: {peak:.0f}")
    print(f"cpu seconds of the bill-run process during the run: {result.cpu_seconds:.1f}")
    print(f"breakdown ({'under cProfile, inflated' if args.profile else 'wall clock'}):")
    print("\n".join(_print_breakdown(result)))
    print(
        f"checked: {result.invoices_created:,} invoices, {result.failed} failures, "
        f"{len(info['expected'])} sampled invoices "
        + ("exact to the cent" if not problems else "WRONG")
    )
    for problem in problems[:20]:
        print(f"  PROBLEM: {problem}")
    if result.profile_text:
        print(result.profile_text)
    quick = args.subscriptions != DEFAULT_SUBSCRIPTIONS
    if not args.no_record and not args.profile and (args.record or not quick):
        shown = "python -m bench.billrun" + (
            f" --subscriptions {args.subscriptions}" if quick else ""
        )
        write_section("billrun", _markdown(info, result, peak, problems, shown))
        print("recorded in bench/RESULTS.md")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
