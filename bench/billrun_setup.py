"""The bill-run benchmark's data: catalog, usage events in ClickHouse, and each ledger.

Two steps, each run in its own child process so that its memory never counts towards
the bill run's peak RSS:

- `setup_events` (once per invocation, shared by every ledger): ~20 usage events per
  subscription (`events_per_subscription`, spread uniformly around it) written into
  ClickHouse (chDB) by INSERT … SELECT, chunk by chunk, from deterministic hashes of
  (seed, subscription, event): nothing is held in Python. 0.5 % of the events are
  resent later with another value (duplicates that must not count) and ~3 % lie
  outside the billed month. Then the raw rows of the sampled subscriptions are read
  back and their invoices are recomputed here, in Python, independently of the bill
  run's SQL (first copy of each id, the period, the charge filters, rating.pricing).
- `setup_ledger` (per ledger): a clean ledger (PostgreSQL: a fresh public schema),
  the tenant whose id the events carry, 5 metrics, 5 plans, and N customers with one
  subscription each, bulk-inserted in chunks (COPY on PostgreSQL).

Subscription i (customer `cust_{i:07d}`) has the same plan in every ledger: plans are
drawn from a seeded generator in index order.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table

from bench.common import Phases, peak_rss_mib
from bench.ledger_bulk import clean_postgres, driver_connection, native_rows, raw_insert
from infra.migrate import migrate_ledger
from invoicing.catalog import create_metric, create_plan
from invoicing.db import make_engine, make_sessionmaker
from invoicing.models import CustomerRow, InvoiceSequence, SubscriptionRow, Tenant, new_id
from rating import pricing
from rating.model import Aggregation, Metric, Period
from rating.money import round_money
from streams.schema import UsageEvent

SEED = 2026
SAMPLE_PER_PLAN = 4
DUPLICATE_PER_MILLE = 5  # events resent later with another value: must not count
OUTSIDE_SHARE = 0.03  # events outside the billed month: must not count
EVENT_CHUNK_SUBSCRIPTIONS = 100_000  # ~2M events per INSERT … SELECT at 20 a subscription
LEDGER_CHUNK = 20_000  # customers (and as many subscriptions) per bulk insert

# -- the catalog -------------------------------------------------------------------

METRICS: list[dict[str, Any]] = [
    {"code": "api_calls", "name": "API calls", "aggregation": "count"},
    {"code": "payment_volume", "name": "Payment volume", "aggregation": "sum"},
    {"code": "peak_seats", "name": "Peak seats", "aggregation": "max"},
    {"code": "active_users", "name": "Active users", "aggregation": "unique_count",
     "field": "user"},
    {"code": "storage_gb", "name": "Storage (GB)", "aggregation": "latest"},
]  # fmt: skip

# The share of events of each metric (percent).
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


def last_month(now: datetime) -> Period:
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (this_month - timedelta(days=1)).replace(day=1)
    return Period(start, this_month)


def external_id(index: int) -> str:
    return f"cust_{index:07d}"


# -- who is on which plan, and who is checked ---------------------------------------------


def plan_chunks(n: int, chunk: int) -> Iterator[list[int]]:
    """The plan index of subscriptions 0..n-1, `chunk` at a time (the same in every step)."""
    rng = random.Random(SEED)
    weights = [p["weight"] for p in PLANS]
    for offset in range(0, n, chunk):
        # choices() draws one random() per pick: chunking does not change the sequence.
        yield rng.choices(range(len(PLANS)), weights, k=min(chunk, n - offset))


def sampled(n: int) -> dict[int, int]:
    """{subscription index: plan index} of the invoices checked to the cent, 4 per plan."""
    candidates = sorted(random.Random(SEED + 1).sample(range(n), min(n, 500)))
    chosen: dict[int, int] = {}
    per_plan = [0] * len(PLANS)
    position = 0
    offset = 0
    for plans in plan_chunks(n, 100_000):
        end = offset + len(plans)
        while position < len(candidates) and candidates[position] < end:
            index = candidates[position]
            plan = plans[index - offset]
            if per_plan[plan] < SAMPLE_PER_PLAN:
                per_plan[plan] += 1
                chosen[index] = plan
            position += 1
        offset = end
    return chosen


# -- events (ClickHouse) ----------------------------------------------------------------


def _event_sql(database: str, *, duplicates: bool) -> str:
    """INSERT … SELECT of the events of subscriptions [o, o + n): one row per event.

    Every random choice is a hash of (seed, what, subscription, event), so a chunk is
    the same whenever it is generated. Duplicates reuse the ids (and metrics) of
    1 event in 200 with other values and a timestamp inside the month.
    """
    thresholds, total = [], 0
    for metric, share in EVENT_MIX.items():
        total += share
        thresholds.append(f"m100 < {total}, '{metric}'")
    metric_sql = "multiIf(" + ", ".join(thresholds[:-1]) + f", '{list(EVENT_MIX)[-1]}')"
    salt = 10 if duplicates else 0

    def h(what: int) -> str:
        return f"cityHash64({{seed:UInt64}}, {what}, sub, j)"

    inside = f"{{ps:Int64}} + toInt64({h(3)} % {{span:UInt64}})"
    if duplicates:
        ts = f"{{ps:Int64}} + toInt64({h(3 + salt)} % (24 * 28)) * 3600000"
        keep = f"{h(9)} % 1000 < {DUPLICATE_PER_MILLE}"
    else:
        outside = int(OUTSIDE_SHARE * 1_000_000)
        ts = (
            f"multiIf(roll < {outside // 2}, "
            f"{{ps:Int64}} - 1 - toInt64({h(3)} % {{before:UInt64}}), "
            f"roll < {outside}, {{pe:Int64}} + toInt64({h(3)} % {{after:UInt64}}), {inside})"
        )
        keep = "1"
    return f"""
        INSERT INTO {database}.usage_events
            (tenant_id, event_id, customer_id, metric, ts, value, properties, ingested_at, version)
        SELECT
            {{t:String}},
            concat('e', leftPad(toString(sub), 7, '0'), '_', leftPad(toString(j), 2, '0')),
            concat('cust_', leftPad(toString(sub), 7, '0')),
            metric,
            fromUnixTimestamp64Milli(ts_ms, 'UTC'),
            multiIf(
                metric = 'payment_volume', toDecimal128(100 + h4 % 49901, 12) / 100,
                metric = 'peak_seats', toDecimal128(1 + h4 % 60, 12),
                metric = 'storage_gb', toDecimal128(h4 % 120001, 12) / 100,
                NULL),
            multiIf(
                metric = 'api_calls', map('region', ['eu', 'us', 'ap'][1 + h5 % 3]),
                metric = 'payment_volume', map('currency', 'USD'),
                metric = 'active_users', map('user', concat('u', toString(h5 % 16))),
                CAST(map(), 'Map(String, String)')),
            {{ia:DateTime64(6, 'UTC')}},
            {{v:UInt64}}
        FROM (
            SELECT sub, j,
                   {h(1)} % 100 AS m100,
                   {metric_sql} AS metric,
                   {h(2)} % 1000000 AS roll,
                   {ts} AS ts_ms,
                   {h(4 + salt)} AS h4,
                   {h(5 + salt)} AS h5
            FROM (
                SELECT number AS sub,
                       arrayJoin(range(toUInt64({{lo:UInt64}})
                           + cityHash64({{seed:UInt64}}, 0, number) % {{width:UInt64}})) AS j
                FROM numbers({{o:UInt64}}, {{n:UInt64}})
            )
        )
        WHERE {keep}
    """


def _version(ingested_at: datetime) -> int:
    # As the sink does (streams.sink.event_rows): earlier ingestion, higher version, so
    # ReplacingMergeTree keeps the first copy of an event id.
    return 2**63 - int(ingested_at.timestamp() * 1_000_000)


def events_per_subscription_range(mean: int) -> tuple[int, int]:
    """Events per subscription are uniform in [lo, hi] around the mean (10–30 for 20)."""
    lo = max(1, (mean + 1) // 2)
    return lo, max(lo, 2 * mean - lo)


def setup_events(
    client: Any, database: str, n: int, events_per_subscription: int, now: datetime
) -> dict[str, Any]:
    """Write the events of n subscriptions and compute the sampled invoices (see module)."""
    phases = Phases()
    period = last_month(now)
    tenant_id = new_id("ten")
    lo, hi = events_per_subscription_range(events_per_subscription)
    ms = timedelta(milliseconds=1)
    parameters: dict[str, Any] = {
        "t": tenant_id,
        "seed": SEED,
        "lo": lo,
        "width": hi - lo + 1,
        "ps": int(period.start.timestamp() * 1000),
        "pe": int(period.end.timestamp() * 1000),
        "span": (period.end - period.start) // ms,
        "before": 20 * 86_400_000,
        "after": max(1, (now - period.end) // ms - 60_000),
    }
    for offset in range(0, n, EVENT_CHUNK_SUBSCRIPTIONS):
        count = min(EVENT_CHUNK_SUBSCRIPTIONS, n - offset)
        for duplicates in (False, True):
            # Each INSERT is stored later than the one before: the duplicates of a chunk
            # come after its originals and lose to them.
            ingested_at = datetime.now(UTC)
            with phases.time("write duplicates" if duplicates else "generate + write events"):
                client.command(
                    _event_sql(database, duplicates=duplicates),
                    parameters={
                        **parameters,
                        "o": offset,
                        "n": count,
                        "ia": ingested_at,
                        "v": _version(ingested_at),
                    },
                )
    with phases.time("count events"):
        events, copies = client.query(
            f"SELECT uniqExact(event_id), count() FROM {database}.usage_events "
            "WHERE tenant_id = {t:String}",
            parameters={"t": tenant_id},
        ).result_rows[0]
        parts = client.query(
            "SELECT count(), sum(rows) FROM system.parts WHERE active "
            "AND database = {d:String} AND table = 'usage_events'",
            parameters={"d": database},
        ).result_rows[0]
    with phases.time("expected invoices of the samples (Python)"):
        samples = sampled(n)
        by_customer = _sample_events(client, database, tenant_id, [external_id(i) for i in samples])
        expected = {
            str(index): {
                "plan": PLANS[plan]["code"],
                **expected_invoice(PLANS[plan], by_customer.get(external_id(index), []), period),
            }
            for index, plan in samples.items()
        }
    return {
        "tenantId": tenant_id,
        "periodStart": period.start.isoformat(),
        "periodEnd": period.end.isoformat(),
        "subscriptions": n,
        "eventsPerSubscription": [lo, hi],
        "events": int(events),
        # Rows stored minus distinct events: later copies not yet merged away.
        "duplicates": int(copies) - int(events),
        "parts": [int(parts[0]), int(parts[1])],
        "phases": phases.seconds,
        "expected": expected,
    }


def _sample_events(
    client: Any, database: str, tenant_id: str, customers: Sequence[str]
) -> dict[str, list[UsageEvent]]:
    """The events of these customers as stored, the first copy of each id (highest version)."""
    if not customers:
        return {}
    rows = client.query(
        f"SELECT event_id, customer_id, metric, ts, value, properties, version "
        f"FROM {database}.usage_events WHERE tenant_id = {{t:String}} "
        "AND customer_id IN {c:Array(String)}",
        parameters={"t": tenant_id, "c": list(customers)},
    ).result_rows
    first: dict[str, tuple[int, UsageEvent]] = {}
    for event_id, customer, metric, ts, value, properties, version in rows:
        if event_id in first and first[event_id][0] >= version:
            continue
        first[event_id] = (
            version,
            UsageEvent(
                tenant_id=tenant_id,
                event_id=event_id,
                customer_id=customer,
                metric=metric,
                timestamp=ts if ts.tzinfo else ts.replace(tzinfo=UTC),
                value=None if value is None else Decimal(value),
                properties=dict(properties),
            ),
        )
    out: dict[str, list[UsageEvent]] = {}
    for _, event in first.values():
        out.setdefault(event.customer_id, []).append(event)
    return out


# -- the expected invoices ------------------------------------------------------------------


def _metric_domain(spec: Mapping[str, Any]) -> Metric:
    return Metric(
        code=spec["code"],
        name=spec["name"],
        aggregation=Aggregation(spec["aggregation"]),
        field=spec.get("field", "value"),
    )


def expected_invoice(
    plan: Mapping[str, Any], events: Sequence[UsageEvent], period: Period
) -> dict[str, str]:
    """{"base", "#<charge position>", "total": amount} recomputed from the raw events.

    Written independently of the bill run: the aggregation is done here in Python over
    the events that count (inside the period, first copy of each id, passing the
    charge's filters), then rating.pricing prices it and the line rounds once.
    """
    metrics = {m["code"]: _metric_domain(m) for m in METRICS}
    inside = [e for e in events if period.start <= e.timestamp < period.end]
    lines: dict[str, str] = {"base": str(round_money(Decimal(plan["baseFee"]), "USD"))}
    total = Decimal(plan["baseFee"])
    for position, charge in enumerate(plan["charges"]):
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
        lines[f"#{position}"] = str(amount)
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


# -- the ledger -------------------------------------------------------------------------------


def setup_ledger(url: str, events: Mapping[str, Any], *, postgres: bool) -> dict[str, Any]:
    """Tenant, catalog, customers and subscriptions of the events' data set in one ledger."""
    phases = Phases()
    if postgres:
        with phases.time("clean schema + migrations"):
            clean_postgres(url)
            migrate_ledger(url)
    else:
        with phases.time("migrations"):
            path = Path(url.split("///", 1)[1])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            migrate_ledger(url)
    engine = make_engine(url)
    try:
        tenant_id = events["tenantId"]
        period = Period(
            datetime.fromisoformat(events["periodStart"]),
            datetime.fromisoformat(events["periodEnd"]),
        )
        with phases.time("catalog"), make_sessionmaker(engine)() as session, session.begin():
            # The tenant the events were written for (create_tenant would pick a new id).
            session.add(Tenant(id=tenant_id, name="bench"))
            session.flush()
            session.add(InvoiceSequence(tenant_id=tenant_id, next_value=1))
            for spec in METRICS:
                create_metric(session, tenant_id, spec)
            plans = []
            for spec in PLANS:
                row = create_plan(
                    session, tenant_id, {**spec, "currency": "USD", "interval": "monthly"}
                )
                plans.append(
                    {"code": spec["code"], "id": row.id, "charges": [c["id"] for c in row.charges]}
                )
        samples = {int(i) for i in events["expected"]}
        sample_ids: dict[str, int] = {}
        counts = [0] * len(PLANS)
        with phases.time("customers and subscriptions (bulk insert)"):
            offset = 0
            for plan_of in plan_chunks(int(events["subscriptions"]), LEDGER_CHUNK):
                ids = _insert_chunk(engine, tenant_id, plans, plan_of, offset, period)
                for k, plan in enumerate(plan_of):
                    counts[plan] += 1
                    if offset + k in samples:
                        sample_ids[ids[k]] = offset + k
                offset += len(plan_of)
        with engine.connect() as conn:
            server = (
                "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar())
                if postgres
                else "SQLite " + str(conn.exec_driver_sql("SELECT sqlite_version()").scalar())
            )
    finally:
        engine.dispose()
    return {
        "tenantId": tenant_id,
        "plans": plans,
        "planCounts": {p["code"]: counts[i] for i, p in enumerate(PLANS)},
        "samples": sample_ids,
        "phases": phases.seconds,
        "server": server,
    }


_CUSTOMERS = cast(Table, CustomerRow.__table__)
_SUBSCRIPTIONS = cast(Table, SubscriptionRow.__table__)


def _insert_chunk(
    engine: Any,
    tenant_id: str,
    plans: Sequence[Mapping[str, Any]],
    plan_of: Sequence[int],
    offset: int,
    period: Period,
) -> list[str]:
    """Customers offset.. and one subscription each; returns the subscription ids."""
    start = period.start - timedelta(days=61)
    created = datetime.now(UTC)
    customer_ids = [new_id("cus") for _ in plan_of]
    sub_ids = [new_id("sub") for _ in plan_of]
    customers = [
        {
            "id": customer_ids[k],
            "tenant_id": tenant_id,
            "external_id": external_id(offset + k),
            "name": f"Customer {offset + k}",
            "email": None,
            "currency": "USD",
            "country": "US",
            "region": None,
            "tax_exempt": False,
            "timezone": "UTC",
            "invoice_grace_days": 0,
            "created_at": created,
        }
        for k in range(len(plan_of))
    ]
    subscriptions = [
        {
            "id": sub_ids[k],
            "tenant_id": tenant_id,
            "customer_id": customer_ids[k],
            "plan_id": plans[plan]["id"],
            "start_date": start,
            "end_date": None,
            "status": "active",
            "overrides": {},
            # Distinct creation times: the bill run orders subscriptions by them.
            "created_at": created + timedelta(microseconds=offset + k),
            "terminated_at": None,
        }
        for k, plan in enumerate(plan_of)
    ]
    pooled, connection = driver_connection(engine)
    try:
        for table, rows in ((_CUSTOMERS, customers), (_SUBSCRIPTIONS, subscriptions)):
            columns, values = native_rows(engine, table, rows)
            raw_insert(connection, engine.dialect.name, table.name, columns, values)
    finally:
        pooled.close()
    return sub_ids


def write_json(path: Path, data: Mapping[str, Any], started: float) -> None:
    """Write a step's result with its own duration and peak RSS."""
    payload = {**data, "seconds": time.perf_counter() - started, "peakRssMib": peak_rss_mib()}
    path.write_text(json.dumps(payload, indent=1))
