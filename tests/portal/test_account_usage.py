"""GET /account/usage where a usage store exists: the session's chDB engine behind the
in-process API, events written through the production sink. The read-out must be the
tenant's own (`/customers/{id}/usage` and `/usage/projected`) plus the plan's included
quantity and the projected invoice's fixed lines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invoicing.db import transaction
from invoicing.tenants import create_tenant
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import UsageStore
from tests.conftest import CH_DATABASE
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.portal.conftest import NOW, SECRET, account

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]


@pytest.fixture
def metered(ledger_url: str, tmp_path: Path, clickhouse: Any) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, now=NOW, secret_key=SECRET) as api:
        api.runtime.usage = UsageStore(clickhouse, CH_DATABASE)
        yield api


def _send(api: ApiClient, clickhouse: Any, customer: str, metric: str, n: int) -> None:
    start = NOW.replace(day=1, hour=0)
    ClickHouseSink(clickhouse, CH_DATABASE).write_events(
        [
            UsageEvent(
                tenant_id=api.tenant_id,
                event_id=f"{customer}-{metric}-{i}",
                customer_id=customer,
                metric=metric,
                timestamp=start + timedelta(minutes=10 * i),
                value=None,
                properties={},
            )
            for i in range(n)
        ]
    )


def _catalog(api: ApiClient) -> None:
    for code in ("calls", "jobs"):
        api.ok("POST", "/metrics", json={"code": code, "name": code, "aggregation": "count"})
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "49",
            "charges": [
                {
                    "metric": "calls",
                    "model": "per_unit",
                    "properties": {"unitAmount": "0.01"},
                    "includedQuantity": "1000",
                },
                {
                    "metric": "jobs",
                    "model": "per_unit",
                    "properties": {"unitAmount": "2"},
                    "hardCap": "10",
                },
            ],
        },
    )
    for name in ("acme", "globex"):
        api.customer(name)
    api.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "pro", "startDate": "2026-10-01"},
    )


def test_usage_against_included_and_capped_quantities_and_the_projection(
    metered: ApiClient, clickhouse: Any
) -> None:
    api = metered
    _catalog(api)
    _send(api, clickhouse, "acme", "calls", 1200)
    _send(api, clickhouse, "acme", "jobs", 12)
    _send(api, clickhouse, "globex", "calls", 5)
    body = account(api, "acme").ok("/account/usage")
    tenant_view = api.ok("GET", "/customers/acme/usage")
    projected = api.ok("GET", "/customers/acme/usage/projected")
    assert (body["from"], body["to"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert body["amount"] == tenant_view["amount"] == "22.00"  # 200 calls over + 10 jobs
    by_metric = {m["metric"]: m for m in body["metrics"]}
    assert by_metric["calls"] == {
        "metric": "calls",
        "group": {},
        "quantity": "1200",
        "amount": "2.00",
        "includedQuantity": "1000",
    }
    assert by_metric["jobs"] == {
        "metric": "jobs",
        "group": {},
        "quantity": "12",
        "amount": "20.00",
        "cap": "10",
        "blocked": True,
    }
    forecast = body["projected"]
    assert forecast["periodStart"] == "2026-11-01T00:00:00Z"
    assert forecast["periodEnd"] == "2026-12-01T00:00:00Z"
    assert [(ln["type"], ln["amount"]) for ln in forecast["fixedLines"]] == [("CHARGE", "49.00")]
    # Ten of thirty days begun: 1200 calls project to 3600 (2600 over the 1000 included,
    # at 0.01) and 12 jobs to 36, billed up to the cap of 10 (at 2).
    assert [(m["metric"], m["quantity"], m["amount"]) for m in forecast["metrics"]] == [
        ("calls", "3600", "26.00"),
        ("jobs", "36", "20.00"),
    ]
    assert (forecast["usageAmount"], forecast["subtotal"]) == ("46.00", "95.00")
    assert forecast["usageAmount"] == projected["amount"]
    assert forecast["metrics"] == projected["metrics"]
    assert Decimal(forecast["subtotal"]) == Decimal("49.00") + Decimal(projected["amount"])
    # Another customer's events are not in it; a customer without a subscription has no
    # projected invoice, and its metered quantities cost nothing.
    globex = account(api, "globex").ok("/account/usage")
    assert [(m["metric"], m["quantity"], m["amount"]) for m in globex["metrics"]] == [
        ("calls", "5", "0.00")
    ]
    assert "projected" not in globex


def test_another_tenants_events_are_not_in_the_usage(metered: ApiClient, clickhouse: Any) -> None:
    api = metered
    _catalog(api)
    _send(api, clickhouse, "acme", "calls", 3)
    with transaction(api.runtime.sessions) as session:
        creds = create_tenant(session, "other")
    other = ApiClient(api.app, api.runtime, creds.tenant_id, creds.api_key)
    other.customer("acme")
    assert account(other, "acme").ok("/account/usage")["metrics"] == []
    assert account(api, "acme").ok("/account/usage")["metrics"][0]["quantity"] == "3"
