"""Plan terms that existed before plan updates, verified through the HTTP API on SQLite
and PostgreSQL with exact amounts (issue 11, item 2): a trial waives the base fee (only)
until it ends; a minimum commitment trues usage up, prorated for a partial period; usage
thresholds issue a progressive invoice that the period's invoice deducts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invoicing.progressive import ProgressiveWatch
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.stack import CH_DATABASE
from tests.subscriptions.conftest import bill

pytestmark = pytest.mark.ledger

OCT_10 = datetime(2026, 10, 10, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, 1, tzinfo=UTC)


def catalog(api: ApiClient, **terms: Any) -> None:
    api.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "sum"})
    api.ok("POST", "/plans", json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
        "charges": [{"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "0.5"}}],
        **terms,
    })  # fmt: skip


def subscribe(api: ApiClient, customer: str, start: str) -> None:
    api.customer(customer)
    body = {"customerId": customer, "planCode": "pro", "startDate": start}
    api.ok("POST", "/subscriptions", json=body)


def invoices(api: ApiClient, customer: str) -> list[dict[str, Any]]:
    rows = api.ok("GET", "/invoices", params={"customerId": customer})["data"]
    full = [api.ok("GET", f"/invoices/{r['id']}") for r in rows]
    return sorted(full, key=lambda i: (i["periodStart"], i["type"]))


def amounts(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(ln["type"], ln["description"], ln["amount"]) for ln in invoice["lines"]]


def test_a_trial_waives_the_base_fee_until_it_ends(api: ApiClient) -> None:
    catalog(api, baseFee="31", trialDays=10)
    subscribe(api, "acme", "2026-10-01T00:00:00Z")
    api.runtime.usage.add("acme", "calls", OCT_10, "30", OCT_10)  # in the trial: billed
    api.clock.set(NOV_1)
    bill(api, "2026-10-01", "2026-10-31")
    (october,) = invoices(api, "acme")
    # Trial Oct 1-10: the base fee bills Oct 11-31, 21 of 31 days: 31 × 21/31 = 21.00;
    # usage is billed during the trial (Lago waives only the base fee): 30 × 0.5.
    fees = sorted((ln["type"], ln["amount"]) for ln in october["lines"])
    assert fees == [("PRORATION", "21.00"), ("USAGE_FEE", "15.00")]
    assert october["total"] == "36.00"
    api.clock.set(datetime(2026, 12, 1, 1, tzinfo=UTC))
    bill(api, "2026-11-01", "2026-11-30")
    november = invoices(api, "acme")[1]
    assert [(ln["type"], ln["amount"]) for ln in november["lines"]] == [
        ("CHARGE", "31.00"), ("USAGE_FEE", "0.00"),
    ]  # fmt: skip


def test_a_minimum_commitment_trues_usage_up(api: ApiClient) -> None:
    catalog(api, baseFee="10", minimumCommitment="50")
    subscribe(api, "full", "2026-10-01T00:00:00Z")
    subscribe(api, "late", "2026-10-17T00:00:00Z")
    subscribe(api, "heavy", "2026-10-01T00:00:00Z")
    api.runtime.usage.add("full", "calls", OCT_10, "30", OCT_10)
    api.runtime.usage.add("late", "calls", datetime(2026, 10, 20, tzinfo=UTC), "30", OCT_10)
    api.runtime.usage.add("heavy", "calls", OCT_10, "200", OCT_10)
    api.clock.set(NOV_1)
    bill(api, "2026-10-01", "2026-10-31")
    # Usage 15.00 of a minimum of 50: a true-up of 35.00 (usage fees only, not the base fee).
    (full,) = invoices(api, "full")
    assert sorted((ln["type"], ln["amount"]) for ln in full["lines"]) == [
        ("CHARGE", "10.00"), ("CHARGE", "35.00"), ("USAGE_FEE", "15.00"),
    ]  # fmt: skip
    assert full["total"] == "60.00"
    # From Oct 17: 15 of 31 days. Minimum 50 × 15/31 = 24.19; base fee 10 × 15/31 = 4.84.
    (late,) = invoices(api, "late")
    assert sorted((ln["type"], ln["amount"]) for ln in late["lines"]) == [
        ("CHARGE", "9.19"), ("PRORATION", "4.84"), ("USAGE_FEE", "15.00"),
    ]  # fmt: skip
    # Usage over the minimum (100.00): no true-up line.
    (heavy,) = invoices(api, "heavy")
    assert sorted((ln["type"], ln["amount"]) for ln in heavy["lines"]) == [
        ("CHARGE", "10.00"), ("USAGE_FEE", "100.00"),
    ]  # fmt: skip


@pytest.fixture
def metered(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=datetime(2026, 10, 16, tzinfo=UTC)) as api:
        api.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        yield api


def _store(api: ApiClient, clickhouse: Any, *events: tuple[str, str]) -> list[UsageEvent]:
    rows = [
        UsageEvent(api.tenant_id, event_id, "acme", "calls", OCT_10, Decimal(value), {})
        for event_id, value in events
    ]
    ClickHouseSink(clickhouse, CH_DATABASE, clock=api.clock).write_events(rows)
    return rows


@pytest.mark.clickhouse
def test_usage_thresholds_bill_progressively(metered: ApiClient, clickhouse: Any) -> None:
    api = metered
    catalog(api, usageThresholds=[{"amount": "10"}])
    subscribe(api, "acme", "2026-10-01T00:00:00Z")
    runtime = api.runtime
    # The stream worker's step after each stored batch (meterline.runtime.MeteringSteps).
    watch = ProgressiveWatch(
        runtime.sessions, runtime.usage, runtime.tax, runtime.settings.invoice_due_days
    )
    assert watch.after_write(_store(api, clickhouse, ("a", "8")), api.clock.now()) == []
    # 8 + 16 = 24 calls × 0.5 = 12.00 ≥ 10: one progressive invoice, finalized at once.
    (issued,) = watch.after_write(_store(api, clickhouse, ("b", "16")), api.clock.now())
    progressive = api.ok("GET", f"/invoices/{issued}")
    assert (progressive["type"], progressive["status"], progressive["total"]) == (
        "progressive_billing", "OPEN", "12.00",
    )  # fmt: skip
    assert progressive["number"]
    # A repeated batch issues nothing more (each threshold once per period).
    assert watch.after_write(_store(api, clickhouse, ("b", "16")), api.clock.now()) == []
    _store(api, clickhouse, ("c", "6"))  # 30 calls in all: 15.00
    api.clock.set(NOV_1)
    bill(api, "2026-10-01", "2026-10-31")
    (period,) = [i for i in invoices(api, "acme") if i["type"] == "subscription"]
    usage = [ln for ln in period["lines"] if ln["type"] == "USAGE_FEE"]
    assert sum(Decimal(ln["amount"]) for ln in usage) == Decimal("15.00")
    # The period's invoice deducts what the progressive invoice billed: 15.00 − 12.00.
    assert period["total"] == "3.00"
