"""Revenue analytics at scale: 100,000 customers and 1,000,000 invoices on SQLite.

    python -m bench.analytics [--customers 100000] [--invoices 1000000] [--runs 3]

Fills a migrated SQLite ledger by bulk insert (one tenant; two currencies; invoices over
the 24 months of 2025–2026, each with one usage line of one of three metrics; payments
of the paid ones; credit notes; a subscription per customer, a tenth of them ended),
then times each analytics query (the domain functions the endpoints call) over the
whole two years, over one year in one currency, and for one customer. Baseline, in the
same run and on the same file: a plain `SELECT count(*) FROM invoices` (which SQLite
answers from its smallest index) and a scan that reads every invoice's amount, SQLite's
own float `SUM`. `--keep PATH` fills that file once and reuses it (for trying indexes).
Prints `name: value` lines (best of `--runs`, warm cache) and writes the `analytics`
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import table, write_section

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2027, 1, 15, tzinfo=UTC)
METRICS = ("api_calls", "storage_gb", "seats")
BATCH = 50_000


def _ts(value: datetime) -> str:
    """An instant as SQLAlchemy's SQLite DATETIME stores it (UTC, no zone)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert(
    db: sqlite3.Connection, table_: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    count = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            db.executemany(f"INSERT INTO {table_} ({names}) VALUES ({marks})", batch)
            count += len(batch)
            batch.clear()
    if batch:
        db.executemany(f"INSERT INTO {table_} ({names}) VALUES ({marks})", batch)
        count += len(batch)
    db.commit()
    return count


def fill(path: str, customers: int, invoices: int) -> str:
    """The ledger at `path`, migrated and filled; returns the tenant id."""
    from infra.migrate import migrate_ledger
    from invoicing.db import make_engine, make_sessionmaker, transaction
    from invoicing.tenants import create_tenant

    url = f"sqlite:///{path}"
    migrate_ledger(url)
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        tenant = create_tenant(session, "bench").tenant_id
    engine.dispose()
    rng = random.Random(42)
    created = _ts(START)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")

    def currency(c: int) -> str:
        return "EUR" if c % 4 == 0 else "USD"

    _insert(db, "customers",
            ["id", "tenant_id", "external_id", "name", "currency", "tax_exempt", "timezone",
             "invoice_grace_days", "created_at"],
            ((f"cus_{c:07d}", tenant, f"c{c}", f"Customer {c}", currency(c), 0, "UTC", 0, created)
             for c in range(customers)))  # fmt: skip
    plans = [
        ("plan_usd_m", "USD", "monthly", "49.00"),
        ("plan_usd_y", "USD", "yearly", "490.00"),
        ("plan_eur_m", "EUR", "monthly", "39.00"),
        ("plan_eur_q", "EUR", "quarterly", "99.00"),
    ]
    _insert(db, "plans",
            ["id", "tenant_id", "code", "name", "currency", "interval", "base_fee",
             "pay_in_advance", "trial_days", "charges", "fixed_charges", "usage_thresholds",
             "created_at"],
            ((pid, tenant, pid, pid, cur, interval, fee, 0, 0, "[]", "[]", "[]", created)
             for pid, cur, interval, fee in plans))  # fmt: skip

    def subscriptions() -> Iterator[tuple[Any, ...]]:
        for c in range(customers):
            cur = currency(c)
            plan = plans[(0 if cur == "USD" else 2) + (c % 3 == 0)][0]
            start = START + timedelta(days=rng.randrange(0, 700))
            end = _ts(start + timedelta(days=rng.randrange(30, 300))) if c % 10 == 0 else None
            yield (f"sub_{c:07d}", tenant, f"cus_{c:07d}", plan, _ts(start), end,
                   "active" if end is None else "terminated", "{}", created)  # fmt: skip

    _insert(db, "subscriptions",
            ["id", "tenant_id", "customer_id", "plan_id", "start_date", "end_date", "status",
             "overrides", "created_at"], subscriptions())  # fmt: skip

    span = (NOW - START).total_seconds() - 86_400 * 15
    statuses = ("PAID",) * 12 + ("OPEN",) * 4 + ("OVERDUE",) * 2 + ("VOID", "UNCOLLECTIBLE")
    payments: list[tuple[Any, ...]] = []
    notes: list[tuple[Any, ...]] = []

    def invoice_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(invoices):
            c = rng.randrange(customers)
            issued = START + timedelta(seconds=rng.random() * span)
            cents = rng.randrange(100, 100_000)
            total = f"{cents // 100}.{cents % 100:02d}"
            status = statuses[i % len(statuses)]
            paid = total if status == "PAID" else "0"
            due = "0" if status in ("PAID", "VOID") else total
            inv = f"inv_{i:08d}"
            if status == "PAID":
                payments.append((f"pay_{i:08d}", tenant, inv, total, currency(c),
                                 _ts(issued + timedelta(days=rng.randrange(0, 20)))))  # fmt: skip
            if i % 50 == 0 and status != "VOID":
                at = _ts(issued + timedelta(days=3))
                notes.append((f"cn_{i:08d}", tenant, inv, f"cus_{c:07d}", f"CN-{i}", "APPLIED",
                               "offset", "1.00", currency(c), "OTHER", "0", at, at))  # fmt: skip
            yield (inv, tenant, f"cus_{c:07d}", f"INV-{i}", status, currency(c), _ts(issued),
                   _ts(issued), _ts(issued), _ts(issued + timedelta(days=30)), total, "0", "0",
                   "0", total, paid, due, _ts(issued), _ts(issued), "subscription", 0)  # fmt: skip

    _insert(db, "invoices",
            ["id", "tenant_id", "customer_id", "number", "status", "currency", "period_start",
             "period_end", "issued_at", "due_at", "subtotal", "discount_total", "tax_total",
             "credit_total", "total", "amount_paid", "amount_due", "created_at", "updated_at",
             "type", "revision"], invoice_rows())  # fmt: skip
    _insert(db, "invoice_lines",
            ["id", "invoice_id", "position", "type", "description", "metric", "group_values",
             "quantity", "unit_amount", "amount", "discount_amount", "tax_rate", "tax_amount"],
            ((f"ln_{i:08d}", f"inv_{i:08d}", 0, "USAGE_FEE", "usage", METRICS[i % 3], "{}",
              "1", "1.25", "1.25", "0", "0", "0") for i in range(invoices)))  # fmt: skip
    _insert(db, "payments", ["id", "tenant_id", "invoice_id", "amount", "currency", "created_at"],
            iter(payments))  # fmt: skip
    _insert(db, "credit_notes",
            ["id", "tenant_id", "invoice_id", "customer_id", "number", "status", "type", "amount",
             "currency", "reason", "balance", "created_at", "issued_at"], iter(notes))  # fmt: skip
    db.execute("ANALYZE")
    db.commit()
    db.close()
    return tenant


def best(runs: int, call: Callable[[], object]) -> float:
    """The fastest of `runs` calls, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--keep", metavar="PATH", help="fill this file once and reuse it on later runs"
    )
    args = parser.parse_args()

    from sqlalchemy import text

    from invoicing import analytics
    from invoicing.db import make_engine, make_sessionmaker

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or f"{tmp}/analytics.sqlite3"
        if args.keep and Path(path).exists():
            from infra.migrate import migrate_ledger

            migrate_ledger(f"sqlite:///{path}")  # indexes of a newer migration
            with sqlite3.connect(path) as db:
                tenant = db.execute("SELECT id FROM tenants").fetchone()[0]
        else:
            started = time.perf_counter()
            tenant = fill(path, args.customers, args.invoices)
            print(f"fill_seconds: {time.perf_counter() - started:.1f}")
        engine = make_engine(f"sqlite:///{path}")
        sessions = make_sessionmaker(engine)
        two_years = analytics.Window(analytics.Month(2025, 1), analytics.Month(2026, 12))
        one_year = analytics.Window(analytics.Month(2026, 1), analytics.Month(2026, 12))
        every = analytics.Scope(tenant)
        usd = analytics.Scope(tenant, currency="USD")
        one = analytics.Scope(tenant, customer_external_id=f"c{args.customers // 2 + 1}")
        cases: list[tuple[str, Callable[[Any], object]]] = [
            ("mrr_24m", lambda s: analytics.mrr(s, every, two_years)),
            ("mrr_12m_usd", lambda s: analytics.mrr(s, usd, one_year)),
            ("gross_revenue_24m", lambda s: analytics.gross_revenue(s, every, two_years)),
            ("gross_revenue_12m_usd", lambda s: analytics.gross_revenue(s, usd, one_year)),
            ("gross_revenue_24m_customer", lambda s: analytics.gross_revenue(s, one, two_years)),
            ("invoice_collections_24m",
             lambda s: analytics.invoice_collections(s, every, two_years)),
            ("invoice_collections_24m_customer",
             lambda s: analytics.invoice_collections(s, one, two_years)),
            ("invoiced_usage_24m", lambda s: analytics.invoiced_usage(s, every, two_years)),
            ("invoiced_usage_12m_usd", lambda s: analytics.invoiced_usage(s, usd, one_year)),
            ("overdue_balances", lambda s: analytics.overdue_balances(s, every, NOW)),
            ("overdue_balances_customer", lambda s: analytics.overdue_balances(s, one, NOW)),
        ]  # fmt: skip
        with sessions() as session:
            baseline = best(
                args.runs,
                lambda: session.execute(text("SELECT count(*) FROM invoices")).scalar_one(),
            )
            print(f"baseline_count_star_invoices_seconds: {baseline:.3f}")
            # A scan that reads every invoice's amount: SQLite's own (float) SUM.
            scan = best(
                args.runs,
                lambda: session.execute(
                    text("SELECT sum(CAST(total AS REAL)) FROM invoices")
                ).scalar_one(),
            )
            print(f"baseline_float_sum_invoices_seconds: {scan:.3f}")
            rows = []
            for name, case in cases:
                seconds = best(args.runs, lambda case=case: case(session))  # type: ignore[misc]
                print(f"{name}_seconds: {seconds:.3f}")
                print(f"{name}_vs_count_star: {seconds / baseline:.1f}")
                print(f"{name}_vs_float_sum_scan: {seconds / scan:.2f}")
                rows.append(
                    [name, f"{seconds * 1000:.0f}", f"{seconds / baseline:.0f}",
                     f"{seconds / scan:.2f}"]
                )  # fmt: skip
        engine.dispose()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python -m bench.analytics --customers {args.customers} --invoices {args.invoices}"
    sqlite = sqlite3.sqlite_version
    body = (
        "## Revenue analytics (`make bench-analytics`)\n\n"
        f"Last run {stamp}: `{command}` (SQLite {sqlite}, one tenant, warm cache, best of "
        f"{args.runs})\n\n"
        f"{args.customers:,} customers with one subscription each, {args.invoices:,} invoices "
        "over 24 months with one usage line each, payments of the paid ones, a credit note "
        "on every 50th. Each figure is one call of the domain query an endpoint makes "
        "(`invoicing/analytics.py`), over the whole range unless named. Baseline, same "
        f"run and file: `SELECT count(*) FROM invoices` took {baseline * 1000:.0f} ms (SQLite "
        "counts the smallest index, no row is read); `SELECT sum(CAST(total AS REAL)) FROM "
        f"invoices`, a scan that reads every invoice's amount, took {scan * 1000:.0f} ms.\n\n"
        + table(rows, ["query", "ms", "× count(*)", "× float-sum scan"])
        + "\n"
    )
    write_section("analytics", body)


if __name__ == "__main__":
    main()
