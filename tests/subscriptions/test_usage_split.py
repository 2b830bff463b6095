"""Termination and plan change with usage, on the real usage store (the session's
in-process ClickHouse engine) and the ledger API (SQLite and PostgreSQL): the final
invoice rates the usage of [period start, at) through the bill run's path; after a
change, the old plan rates [start, at) and the new one [at, end), split at the instant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.scenarios import metric, per_unit
from tests.helpers.stack import CH_DATABASE
from tests.subscriptions.conftest import bill, invoices_of, plan, subscribe

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]


@pytest.fixture
def usage_api(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=datetime(2026, 10, 20, tzinfo=UTC)) as api:
        api.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        yield api


def send(api: ApiClient, clickhouse: Any, *events: tuple[str, str]) -> None:
    """Store `calls` events of customer acme as (id, instant) directly in ClickHouse."""
    rows = [
        UsageEvent(api.tenant_id, event_id, "acme", "calls", datetime.fromisoformat(ts), None, {})
        for event_id, ts in events
    ]
    ClickHouseSink(clickhouse, CH_DATABASE).write_events(rows)


def usage_lines(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(ln["type"], ln["quantity"], ln["unitAmount"], ln["amount"]) for ln in invoice["lines"]]


def test_final_invoice_rates_the_usage_up_to_the_termination(
    usage_api: ApiClient, clickhouse: Any
) -> None:
    api = usage_api
    metric(api, "calls", "count")
    plan(api, "pro", "31", charges=[per_unit("calls", "0.5")])
    sub = subscribe(api, "acme", "pro", "2026-10-01")
    send(
        api,
        clickhouse,
        ("a", "2026-10-02T00:00:00+00:00"),
        ("b", "2026-10-09T23:59:59+00:00"),
        ("c", "2026-10-10T00:00:00+00:00"),  # at the end instant: not billed
        ("d", "2026-10-19T00:00:00+00:00"),
    )
    ended = api.ok("POST", f"/subscriptions/{sub}/terminate", json={"at": "2026-10-10T00:00:00Z"})
    final = api.ok("GET", f"/invoices/{ended['finalInvoiceIds'][0]}")
    # 9 of 31 days: 9.00; 2 calls × 0.5 = 1.00
    assert usage_lines(final) == [
        ("PRORATION", "1", "9", "9.00"),
        ("USAGE_FEE", "2", "0.5", "1.00"),
    ]
    assert final["total"] == "10.00"
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 0


def test_plan_change_splits_usage_at_the_instant(usage_api: ApiClient, clickhouse: Any) -> None:
    api = usage_api
    metric(api, "calls", "count")
    plan(api, "basic", "31", charges=[per_unit("calls", "1")])
    plan(api, "premium", "62", charges=[per_unit("calls", "2")])
    old = subscribe(api, "acme", "basic", "2026-10-01")
    send(
        api,
        clickhouse,
        ("b1", "2026-10-10T00:00:00+00:00"),
        ("b2", "2026-10-14T23:59:59.999000+00:00"),
        ("p1", "2026-10-15T00:00:00+00:00"),  # the change instant belongs to the new plan
        ("p2", "2026-10-19T00:00:00+00:00"),
        ("p3", "2026-10-25T00:00:00+00:00"),  # after now, still in the new plan's period
    )
    body = {"planCode": "premium", "at": "2026-10-15T00:00:00Z"}
    changed = api.ok("POST", f"/subscriptions/{old}/change-plan", json=body)
    final = api.ok("GET", f"/invoices/{changed['finalInvoiceIds'][0]}")
    # basic, Oct 1 → 15: 31 × 14/31 = 14.00 + 2 calls × 1
    assert usage_lines(final) == [
        ("PRORATION", "1", "14", "14.00"),
        ("USAGE_FEE", "2", "1", "2.00"),
    ]
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 1
    (new,) = invoices_of(api, changed["subscription"]["id"])
    # premium, Oct 15 → Nov 1: 62 × 17/31 = 34.00 + 3 calls × 2
    assert usage_lines(new) == [
        ("PRORATION", "1", "34", "34.00"),
        ("USAGE_FEE", "3", "2", "6.00"),
    ]
    assert new["total"] == "40.00"
