"""The customer entitlements read is cheap enough to call on every request.

    python -m bench.entitlements [--customers 5000] [--requests 2000] [--postgres-url URL]

Fills a ledger (SQLite file; PostgreSQL too with --postgres-url) with 20 features,
4 plans granting 5 to 8 of them each, and `customers` customers with two active
subscriptions each (every tenth with its own overrides), then starts an API server
process over that ledger (uvicorn, the ledger alone) and times, one request after the
other over one keep-alive connection: `GET /healthz` (the baseline: no auth, no
ledger), `GET /api/v1/features/{code}` (an authenticated read of one row: the key
lookup plus one indexed read) and `GET /api/v1/customers/{id}/entitlements` for random
customers. Also times the domain read alone (invoicing.features.customer_entitlements
in this process). Prints `name: value` lines and writes the `entitlements` section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import now_text, table, write_section

FEATURES = 20
START = datetime(2026, 10, 1, tzinfo=UTC)


def fill(url: str, customers: int) -> tuple[str, str]:
    """A tenant with the catalog and the customers above; (tenant id, api key)."""
    from infra.migrate import migrate_ledger
    from invoicing import catalog, features
    from invoicing.db import make_engine, make_sessionmaker, transaction
    from invoicing.models import CustomerRow, EntitlementRow, SubscriptionRow
    from invoicing.specs import EntitlementSpec, PlanSpec
    from invoicing.tenants import create_tenant

    migrate_ledger(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        creds = create_tenant(session, "bench")
        tenant = creds.tenant_id
        for i in range(FEATURES):
            privileges = (
                features.PrivilegeSpec("limit", "integer"),
                features.PrivilegeSpec("enabled", "boolean"),
                features.PrivilegeSpec("tier", "select", options=("basic", "pro", "max")),
            )
            features.create_feature(
                session,
                tenant,
                features.FeatureSpec(f"f{i}", f"Feature {i}", None, privileges),
                START,
            )
        for p in range(4):
            grants = tuple(
                EntitlementSpec(
                    f"f{(p * 3 + k) % FEATURES}",
                    {"limit": 10 * (p + 1), "enabled": k % 2 == 0, "tier": ("basic", "pro")[p % 2]},
                )
                for k in range(5 + p)
            )
            catalog.create_plan(
                session,
                tenant,
                PlanSpec(f"plan{p}", f"Plan {p}", "USD", "monthly", entitlements=grants),
            )
        plan_ids = [catalog.get_plan(session, tenant, f"plan{p}").id for p in range(4)]
        f19 = features.get_feature(session, tenant, "f19").id
    batch = 1_000
    for first in range(0, customers, batch):
        # Rows as the catalog writes them, added in bulk (the catalog's per-row checks
        # and savepoints would make the fill, not the read, the slow part).
        with transaction(sessions) as session:
            for c in range(first, min(first + batch, customers)):
                customer_id = f"cus_{c:06d}"
                session.add(
                    CustomerRow(
                        id=customer_id, tenant_id=tenant, external_id=f"c{c:06d}",
                        name=f"C{c}", currency="USD", created_at=START,
                    )
                )  # fmt: skip
                for p in (c % 4, (c + 1) % 4):
                    session.add(
                        SubscriptionRow(
                            id=f"sub_{c:06d}_{p}", tenant_id=tenant, customer_id=customer_id,
                            plan_id=plan_ids[p], start_date=START, status="active",
                            overrides={}, created_at=START,
                        )
                    )  # fmt: skip
            session.flush()  # subscriptions before the overrides that name them
            for c in range(first, min(first + batch, customers), 10):
                session.add(
                    EntitlementRow(
                        id=f"ent_{c:06d}", tenant_id=tenant, feature_id=f19,
                        subscription_id=f"sub_{c:06d}_{(c + 1) % 4}",
                        values={"limit": 1000, "tier": "max"}, created_at=START,
                    )
                )  # fmt: skip
    engine.dispose()
    return tenant, creds.api_key


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max, in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": statistics.median(ordered) * 1e3, "p99": p99 * 1e3, "max": ordered[-1] * 1e3}


def timed(call: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def domain_samples(url: str, tenant: str, customers: int, n: int) -> list[float]:
    """The read alone, in this process: one session per call, as a request has."""
    from invoicing.db import make_engine, make_sessionmaker
    from invoicing.features import customer_entitlements

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    pick = random.Random(7)
    now = datetime(2026, 11, 15, tzinfo=UTC)

    def one() -> None:
        with sessions() as session:
            customer_entitlements(session, tenant, f"c{pick.randrange(customers):06d}", now)

    timed(one, 50)  # warm-up
    samples = timed(one, n)
    engine.dispose()
    return samples


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_samples(url: str, tenant: str, key: str, customers: int, n: int) -> dict[str, list[float]]:
    """Per endpoint, the latency of `n` sequential requests to a fresh server process."""
    port = _free_port()
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.csv_export", "serve", url, str(port), data_dir],
            env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": tenant}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                for _ in range(300):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                pick = random.Random(11)

                def get(path: Callable[[], str]) -> Callable[[], object]:
                    def call() -> object:
                        response = client.get(path())
                        response.raise_for_status()
                        return response

                    return call

                calls = {
                    "healthz": get(lambda: "/healthz"),
                    "feature_get": get(lambda: "/api/v1/features/f3"),
                    "customer_entitlements": get(
                        lambda: f"/api/v1/customers/c{pick.randrange(customers):06d}/entitlements"
                    ),
                }
                for name, call in calls.items():
                    timed(call, 100)  # warm-up
                    out[name] = timed(call, n)
        finally:
            server.terminate()
            server.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--postgres-url", default=os.environ.get("METERLINE_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ledgers = [("SQLite", f"sqlite:///{tmp}/bench.sqlite3")]
        if args.postgres_url:
            from tests.helpers.ledger import empty_postgres_schema

            empty_postgres_schema(args.postgres_url)
            ledgers.append(("PostgreSQL", args.postgres_url))
        for name, url in ledgers:
            slug = name.lower()
            started = time.perf_counter()
            tenant, key = fill(url, args.customers)
            print(f"{slug}_fill_seconds: {time.perf_counter() - started:.1f}")
            results = {"domain_read": domain_samples(url, tenant, args.customers, args.requests)}
            results |= http_samples(url, tenant, key, args.customers, args.requests)
            for what, samples in results.items():
                stats = percentiles(samples)
                for label, value in stats.items():
                    print(f"{slug}_{what}_{label}_ms: {value:.2f}")
                rows.append([name, what, *(f"{stats[k]:.2f}" for k in ("p50", "p99", "max"))])
            ratio = (
                percentiles(results["customer_entitlements"])["p99"]
                / percentiles(results["feature_get"])["p99"]
            )
            print(f"{slug}_entitlements_vs_feature_get_p99_ratio: {ratio:.2f}")
    body = (
        "## Customer entitlements (`make bench-entitlements`)\n\n"
        f"Last run {now_text()}: `python -m bench.entitlements --customers {args.customers} "
        f"--requests {args.requests}`\n\n"
        f"{args.customers:,} customers with two active subscriptions each over 4 plans "
        f"granting 5 to 8 of {FEATURES} features (three typed privileges each), every tenth "
        "subscription with its own override. Sequential requests over one keep-alive "
        "connection to an API server process over the ledger alone; random customers. "
        "Baselines in the same run: `GET /healthz` (no auth, no ledger) and "
        "`GET /api/v1/features/{code}` (the API key lookup plus one indexed read, what "
        "every authenticated call pays). `domain_read` is "
        "`invoicing.features.customer_entitlements` alone, in-process, one session per "
        "call: the two indexed reads of docs/features-and-entitlements.md. Load average "
        f"(1 min) at the end of the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "(other work on the machine shows in the p99 of every call, the baselines' too).\n\n"
        + table(rows, ["ledger", "call", "p50 ms", "p99 ms", "max ms"])
        + "\n"
    )
    write_section("entitlements", body)


if __name__ == "__main__":
    main()
