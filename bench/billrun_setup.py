"""The bill-run benchmark's data: usage events in ClickHouse, and each ledger's rows.

Two steps, each run in its own child process so that its memory never counts towards
the bill run's peak RSS:

- `setup_events` (once per invocation, shared by every ledger): ~20 usage events per
  subscription (`events_per_subscription`, spread uniformly around it) written into
  ClickHouse (chDB) by INSERT … SELECT, chunk by chunk, from deterministic hashes of
  (seed, subscription, event): nothing is held in Python. 0.5 % of the events are
  resent later with another value (duplicates that must not count) and ~3 % lie
  outside the billed month (the hourly rollup's view is detached meanwhile: the bill
  run does not read it). Then the raw rows of the sampled subscriptions are read
  back and their invoices are recomputed in Python, independently of the bill run's
  SQL (bench/billrun_catalog.py: first copy of each id, the period, the charge
  filters, rating.pricing).
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

from api.schemas.catalog import MetricCreate, PlanCreate
from bench.billrun_catalog import (
    EVENT_MIX,
    METRICS,
    OUTSIDE_SHARE,
    PLANS,
    expected_invoice,
    external_id,
    last_month,
)
from bench.common import Phases, peak_rss_mib
from bench.ledger_bulk import clean_postgres, driver_connection, native_rows, raw_insert
from infra.migrate import migrate_ledger
from invoicing.catalog import create_metric, create_plan
from invoicing.db import make_engine, make_sessionmaker
from invoicing.models import CustomerRow, InvoiceSequence, SubscriptionRow, Tenant, new_id
from rating.model import Period
from streams.schema import UsageEvent

SEED = 2026
SAMPLE_PER_PLAN = 4
DUPLICATE_PER_MILLE = 5  # events resent later with another value: must not count
EVENT_CHUNK_SUBSCRIPTIONS = 100_000  # ~2M events per INSERT … SELECT at 20 a subscription
LEDGER_CHUNK = 20_000  # customers (and as many subscriptions) per bulk insert

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
    # The hourly rollup's materialized view is detached while the events are written: it
    # would triple the setup's time, and a bill run reads only the raw events.
    views = _materialized_views(client, database)
    for view in views:
        client.command(f"DETACH TABLE {database}.{view}")
    try:
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
    finally:
        for view in views:
            client.command(f"ATTACH TABLE {database}.{view}")
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


def _materialized_views(client: Any, database: str) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = {d:String} "
        "AND engine = 'MaterializedView'",
        parameters={"d": database},
    ).result_rows
    return [str(r[0]) for r in rows]


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
                create_metric(session, tenant_id, MetricCreate.model_validate(spec).to_spec())
            plans = []
            for spec in PLANS:
                body = PlanCreate.model_validate({**spec, "currency": "USD", "interval": "monthly"})
                row = create_plan(session, tenant_id, body.to_spec())
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
