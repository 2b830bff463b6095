"""The invoice CSV export: its server's memory stays flat from 10,000 to 1,000,000 lines.

    python -m bench.csv_export [--lines 1000000] [--postgres-url URL]

Fills a ledger (SQLite file; PostgreSQL too with --postgres-url) with invoices of ten
lines each by bulk insert, then, for a small export (10,000 lines) and the full one,
starts a fresh API server process (uvicorn over the ledger alone), streams
`GET /api/v1/invoices/export.csv` from it over HTTP and reads the server's peak
resident memory (VmHWM) against its resident memory just before the export. The
baseline, measured in the same run: the time of a plain SELECT of the same rows.
Prints `name: value` lines and writes the `csv-export` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.common import table, write_section

LINES_PER_INVOICE = 10
START = datetime(2026, 11, 1, tzinfo=UTC)


def fill(url: str, lines: int) -> tuple[str, str]:
    """A tenant with one customer and `lines` invoice lines; (tenant id, api key)."""
    from infra.migrate import migrate_ledger
    from invoicing import catalog
    from invoicing.billing.writer import INVOICE_LINES, INVOICES, bulk_insert
    from invoicing.db import make_engine, make_sessionmaker, transaction
    from invoicing.specs import CustomerSpec
    from invoicing.tenants import create_tenant

    migrate_ledger(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        creds = create_tenant(session, "bench")
        customer = catalog.create_customer(
            session, creds.tenant_id, CustomerSpec(external_id="acme", name="Acme", currency="USD")
        )
        customer_id = customer.id
    invoices = lines // LINES_PER_INVOICE
    batch = 5_000
    for first in range(0, invoices, batch):
        inv_rows: list[tuple[Any, ...]] = []
        line_rows: list[tuple[Any, ...]] = []
        for i in range(first, min(first + batch, invoices)):
            inv_id = f"inv_{i:09d}"
            issued = START + timedelta(seconds=i)
            values = {
                c.name: None for c in INVOICES.columns
            } | {
                "id": inv_id, "tenant_id": creds.tenant_id, "customer_id": customer_id,
                "number": f"INV-{i + 1:07d}", "status": "OPEN", "currency": "USD",
                "period_start": START - timedelta(days=30), "period_end": START,
                "issued_at": issued, "due_at": issued + timedelta(days=30),
                "subtotal": Decimal("55.00"), "discount_total": Decimal(0),
                "tax_total": Decimal("11.00"), "credit_total": Decimal(0),
                "total": Decimal("66.00"), "amount_paid": Decimal(0),
                "amount_due": Decimal("66.00"), "created_at": issued, "updated_at": issued,
                "finalized_at": issued, "type": "subscription", "revision": 0,
            }  # fmt: skip
            inv_rows.append(tuple(values[c.name] for c in INVOICES.columns))
            for n in range(LINES_PER_INVOICE):
                line = {c.name: None for c in INVOICE_LINES.columns} | {
                    "id": f"il_{i:09d}_{n}", "invoice_id": inv_id, "position": n,
                    "type": "USAGE_FEE", "description": f"API calls, tier {n + 1}",
                    "metric": "calls", "group_values": {}, "quantity": Decimal(1000 + n),
                    "unit_amount": Decimal("0.001"), "amount": Decimal(n + 1),
                    "discount_amount": Decimal(0), "tax_rate": Decimal("0.2"),
                    "tax_amount": Decimal(n + 1) / 5,
                }  # fmt: skip
                line_rows.append(tuple(line[c.name] for c in INVOICE_LINES.columns))
        with transaction(sessions) as session:
            bulk_insert(session, INVOICES, inv_rows)
            bulk_insert(session, INVOICE_LINES, line_rows)
    engine.dispose()
    return creds.tenant_id, creds.api_key


def plain_select_seconds(url: str, tenant_id: str) -> tuple[float, int]:
    """The baseline: read the same rows with one plain SELECT, streamed."""
    from sqlalchemy import select

    from invoicing.db import make_engine
    from invoicing.models import InvoiceLineRow, InvoiceRow

    engine = make_engine(url)
    started = time.perf_counter()
    count = 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5_000).execute(
            select(
                InvoiceRow.id,
                InvoiceRow.number,
                InvoiceRow.status,
                InvoiceRow.issued_at,
                InvoiceRow.total,
                InvoiceLineRow.type,
                InvoiceLineRow.description,
                InvoiceLineRow.quantity,
                InvoiceLineRow.amount,
                InvoiceLineRow.tax_amount,
            )
            .join(InvoiceLineRow, InvoiceLineRow.invoice_id == InvoiceRow.id)
            .where(InvoiceRow.tenant_id == tenant_id)
            .order_by(InvoiceRow.issued_at, InvoiceRow.id, InvoiceLineRow.position)
        )
        for _ in result:
            count += 1
    engine.dispose()
    return time.perf_counter() - started, count


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def export_once(url: str, tenant: str, key: str, query: str) -> dict[str, float]:
    """Start a fresh server, stream one export from it; seconds, lines, bytes, memory."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.csv_export", "serve", url, str(port), data_dir],
            env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": tenant}
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            # One small request first, so imports and connections are in the baseline.
            httpx.get(f"{base}/api/v1/invoices?limit=1", headers=headers).raise_for_status()
            before = _status_kib(server.pid, "VmRSS")
            started = time.perf_counter()
            size = lines = 0
            with httpx.stream(
                "GET", f"{base}/api/v1/invoices/export.csv?{query}", headers=headers, timeout=600
            ) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\r\n")
            seconds = time.perf_counter() - started
            peak = _status_kib(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(30)
    return {
        "seconds": seconds,
        "lines": lines - 1,  # the header
        "mib": size / 2**20,
        "rss_before": before / 1024,
        "peak": peak / 1024,
        "growth": (peak - before) / 1024,
    }


def serve(url: str, port: int, data_dir: str) -> None:
    """The API over the ledger alone (no Kafka, no ClickHouse), for the export."""
    import uvicorn

    from api.app import create_app
    from core.clock import SystemClock
    from invoicing.db import make_engine, make_sessionmaker
    from meterline.runtime import Runtime
    from meterline.settings import Settings

    class LedgerOnly(Runtime):
        async def start(self, *, api: bool = True, worker: bool = True) -> None:
            return None

        async def stop(self) -> None:
            return None

    engine = make_engine(url)
    runtime = LedgerOnly(
        settings=Settings(data_dir=Path(data_dir), database_url=url),
        engine=engine,
        sessions=make_sessionmaker(engine),
        clickhouse=None,
        usage=None,  # type: ignore[arg-type]
        clock=SystemClock(),
    )
    uvicorn.run(
        create_app(runtime, with_worker=False), host="127.0.0.1", port=port, log_level="warning"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", default=os.environ.get("METERLINE_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    small = 10_000
    # The first `small` lines were issued before this instant (one invoice per second).
    small_to = (START + timedelta(seconds=small // LINES_PER_INVOICE)).isoformat()
    small_to = small_to.replace("+00:00", "Z")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ledgers = [("SQLite", f"sqlite:///{tmp}/bench.sqlite3")]
        if args.postgres_url:
            from tests.helpers.ledger import empty_postgres_schema

            empty_postgres_schema(args.postgres_url)
            ledgers.append(("PostgreSQL", args.postgres_url))
        for name, url in ledgers:
            started = time.perf_counter()
            tenant, key = fill(url, args.lines)
            fill_seconds = time.perf_counter() - started
            select_seconds, selected = plain_select_seconds(url, tenant)
            part = export_once(url, tenant, key, f"to={small_to}")
            full = export_once(url, tenant, key, "")
            slug = name.lower()
            print(f"{slug}_fill_seconds: {fill_seconds:.1f}")
            print(f"{slug}_select_seconds: {select_seconds:.2f} ({selected} rows)")
            for label, run in (("10k", part), ("full", full)):
                print(f"{slug}_export_{label}_lines: {int(run['lines'])}")
                print(f"{slug}_export_{label}_seconds: {run['seconds']:.2f}")
                print(f"{slug}_export_{label}_mib: {run['mib']:.1f}")
                print(f"{slug}_export_{label}_server_rss_growth_mib: {run['growth']:.1f}")
                print(f"{slug}_export_{label}_server_peak_mib: {run['peak']:.1f}")
            print(f"{slug}_export_vs_select_ratio: {full['seconds'] / select_seconds:.2f}")
            rows.append(
                [
                    name,
                    f"{int(full['lines']):,}",
                    f"{full['mib']:.0f}",
                    f"{full['seconds']:.1f}",
                    f"{select_seconds:.1f}",
                    f"{full['seconds'] / select_seconds:.1f}",
                    f"{part['growth']:.1f}",
                    f"{full['growth']:.1f}",
                    f"{full['peak']:.0f}",
                ]
            )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m bench.csv_export" + (" --postgres-url …" if args.postgres_url else "")
    body = (
        "## Invoice CSV export (`make bench-csv`)\n\n"
        f"Last run {stamp}: `{command}`\n\n"
        "A fresh API server process per export, streamed over HTTP; memory is the "
        "server's peak resident set (VmHWM) minus its resident set just before the "
        "export. Baseline: a plain SELECT of the same rows in the same run.\n\n"
        + table(
            rows,
            [
                "ledger",
                "lines",
                "MiB of CSV",
                "export s",
                "plain SELECT s",
                "ratio",
                "RSS growth 10k lines MiB",
                "RSS growth all lines MiB",
                "server peak MiB",
            ],
        )
        + "\n"
    )
    write_section("csv-export", body)


if __name__ == "__main__":
    main()
