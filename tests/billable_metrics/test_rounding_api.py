"""Metric rounding through the HTTP API (SQLite and PostgreSQL, events in the session's
ClickHouse engine): create, read, PATCH and refusals; a bill run, a draft refresh, the
usage and projected read-outs and the quota check all see the rounded quantity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.billable_metrics.conftest import send
from tests.helpers.ledger_api import ApiClient
from tests.subscriptions.conftest import bill

pytestmark = [pytest.mark.ledger, pytest.mark.clickhouse]

OCTOBER = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}


def metric(api: ApiClient, code: str, aggregation: str = "sum", **extra: Any) -> dict[str, Any]:
    body = {"code": code, "name": code.title(), "aggregation": aggregation, **extra}
    created: dict[str, Any] = api.ok("POST", "/metrics", json=body)
    return created


def catalog(api: ApiClient, start: str = "2026-10-01T00:00:00Z") -> None:
    """storage: sum, ceil; peak: max, floor to 1 decimal; calls: count, exact."""
    metric(api, "storage", roundingFunction="ceil")
    metric(api, "peak", "max", roundingFunction="floor", roundingPrecision=1)
    metric(api, "calls", "count")
    api.ok("POST", "/plans", json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
        "charges": [
            {"metric": "storage", "model": "per_unit", "properties": {"unitAmount": "0.5"},
             "hardCap": "11"},
            {"metric": "peak", "model": "per_unit", "properties": {"unitAmount": "10"}},
            {"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "0.01"}},
        ],
    })  # fmt: skip
    api.customer("acme")
    body = {"customerId": "acme", "planCode": "pro", "startDate": start}
    api.ok("POST", "/subscriptions", json=body)


def usage_events(api: ApiClient, clickhouse: Any) -> None:
    # storage: 4.1 + 6.1 = 10.2 → ceil 11; peak: max 3.77 → floor(·, 1) 3.7; calls: 3.
    send(
        api,
        clickhouse,
        "storage",
        ("s1", "2026-10-02T00:00:00+00:00", "4.1"),
        ("s2", "2026-10-05T00:00:00+00:00", "6.1"),
    )
    send(
        api,
        clickhouse,
        "peak",
        ("p1", "2026-10-03T00:00:00+00:00", "3.77"),
        ("p2", "2026-10-04T00:00:00+00:00", "2"),
    )
    send(api, clickhouse, "calls", *(
        (f"c{i}", f"2026-10-0{i + 1}T00:00:00+00:00", "1") for i in range(3)
    ))  # fmt: skip


def readout(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((m["metric"], m["quantity"], m["amount"]) for m in body["metrics"])


def usage_lines(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (ln["metric"], ln["quantity"], ln["unitAmount"], ln["amount"])
        for ln in invoice["lines"]
        if ln["type"] == "USAGE_FEE"
    )


ROUNDED = [("calls", "3", "0.03"), ("peak", "3.7", "37.00"), ("storage", "11", "5.50")]


def test_rounding_round_trips_and_defaults_precision_to_zero(api: ApiClient) -> None:
    created = metric(api, "storage", roundingFunction="ceil")
    assert (created["roundingFunction"], created["roundingPrecision"]) == ("ceil", 0)
    assert api.ok("GET", "/metrics/storage") == created
    hundreds = metric(api, "calls", "count", roundingFunction="round", roundingPrecision=-2)
    assert (hundreds["roundingFunction"], hundreds["roundingPrecision"]) == ("round", -2)
    exact = metric(api, "seats", "max")
    assert (exact["roundingFunction"], exact["roundingPrecision"]) == (None, None)


def test_patch_changes_only_what_it_sends_and_null_removes_it(api: ApiClient) -> None:
    metric(api, "storage", roundingFunction="ceil", roundingPrecision=2)
    assert api.ok("PATCH", "/metrics/storage", json={"roundingFunction": "floor"})[
        "roundingPrecision"
    ] == 2  # fmt: skip
    patched = api.ok("PATCH", "/metrics/storage", json={"roundingPrecision": -1})
    assert (patched["roundingFunction"], patched["roundingPrecision"]) == ("floor", -1)
    renamed = api.ok("PATCH", "/metrics/storage", json={"name": "Disk"})
    assert (renamed["roundingFunction"], renamed["roundingPrecision"]) == ("floor", -1)
    removed = api.ok("PATCH", "/metrics/storage", json={"roundingFunction": None})
    assert (removed["roundingFunction"], removed["roundingPrecision"]) == (None, None)
    assert api.ok("GET", "/metrics/storage") == removed
    # A precision alone needs a function: on this metric, now without one, a 422.
    api.error("PATCH", "/metrics/storage", 422, json={"roundingPrecision": 1})
    assert api.ok("GET", "/metrics/storage") == removed


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"roundingPrecision": 2}, "roundingPrecision"),
        ({"roundingFunction": "truncate"}, "roundingFunction"),
        ({"roundingFunction": "ceil", "roundingPrecision": 16}, "roundingPrecision"),
        ({"roundingFunction": "ceil", "roundingPrecision": -16}, "roundingPrecision"),
        ({"roundingFunction": "ceil", "roundingPrecision": 1.5}, "roundingPrecision"),
        ({"roundingFunction": "ceil", "roundingPrecision": "2"}, "roundingPrecision"),
        ({"roundingFunction": "ceil", "roundingPrecision": True}, "roundingPrecision"),
    ],
)
def test_bad_rounding_is_422_and_creates_nothing(
    api: ApiClient, body: dict[str, Any], field: str
) -> None:
    request = {"code": "storage", "name": "Storage", "aggregation": "sum", **body}
    error = api.error("POST", "/metrics", 422, json=request)
    assert field in str(error)
    api.error("GET", "/metrics/storage", 404)
    metric(api, "storage", roundingFunction="round")
    if body.get("roundingFunction") == "ceil":  # a bad precision: PATCH refuses it too
        api.error("PATCH", "/metrics/storage", 422, json=body)
        assert api.ok("GET", "/metrics/storage")["roundingFunction"] == "round"


def test_the_bill_run_prices_the_rounded_quantities(api: ApiClient, clickhouse: Any) -> None:
    catalog(api)
    usage_events(api, clickhouse)
    api.clock.set(datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert bill(api, "2026-10-01", "2026-10-31")["invoicesCreated"] == 1
    (summary,) = api.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
    invoice = api.ok("GET", f"/invoices/{summary['id']}")
    # storage 11 × 0.5, peak 3.7 × 10, calls 3 × 0.01
    assert usage_lines(invoice) == [
        ("calls", "3", "0.01", "0.03"),
        ("peak", "3.7", "10", "37.00"),
        ("storage", "11", "0.5", "5.50"),
    ]
    assert (invoice["subtotal"], invoice["total"]) == ("42.53", "42.53")
    # The read-out of the billed period says what the invoice says.
    assert readout(api.ok("GET", "/customers/acme/usage", params=OCTOBER)) == ROUNDED
    # A draft refreshed with later events: storage 10.2 + 1 = 11.2 → 12, capped at 11;
    # peak 3.99 → floor(·, 1) 3.9.
    send(api, clickhouse, "storage", ("s3", "2026-10-20T00:00:00+00:00", "1"))
    send(api, clickhouse, "peak", ("p3", "2026-10-20T00:00:00+00:00", "3.99"))
    refreshed = api.ok("POST", f"/invoices/{summary['id']}/refresh")
    assert usage_lines(refreshed) == [
        ("calls", "3", "0.01", "0.03"),
        ("peak", "3.9", "10", "39.00"),
        ("storage", "11", "0.5", "5.50"),
    ]
    assert readout(api.ok("GET", "/customers/acme/usage", params=OCTOBER)) == [
        ("calls", "3", "0.03"), ("peak", "3.9", "39.00"), ("storage", "12", "5.50"),
    ]  # fmt: skip


def test_the_usage_read_outs_show_the_rounded_quantities(api: ApiClient, clickhouse: Any) -> None:
    catalog(api)
    usage_events(api, clickhouse)
    # The current period (the clock is at Oct 16 noon).
    assert readout(api.ok("GET", "/customers/acme/usage")) == ROUNDED
    current = api.ok("GET", "/customers/acme/usage")["metrics"]
    storage = next(m for m in current if m["metric"] == "storage")
    assert (storage["cap"], storage["blocked"]) == ("11", True)
    # Projected: the raw quantity is projected, then rounded (the period's invoice rounds
    # its whole quantity): storage 10.2 × 31 / 16 days begun = 19.7625 → 20, capped at
    # 11 in the amount; calls 3 × 31 / 16 → 5.8125 (exact metric). Rounding 11 first
    # would have projected 21.3125 → 22.
    projected = readout(api.ok("GET", "/customers/acme/usage/projected"))
    assert projected == [
        ("calls", "5.8125", "0.06"),
        ("peak", "3.7", "37.00"),
        ("storage", "20", "5.50"),
    ]
    # A quota before the cap: 10.2 → 11 is at the cap of 11: blocked, nothing remains.
    quota = api.ok("GET", "/customers/acme/quota/storage")
    assert (quota["used"], quota["remaining"], quota["blocked"]) == ("11", "0", True)
    # Without a cap the quota says the rounded quantity all the same.
    assert api.ok("GET", "/customers/acme/quota/peak")["used"] == "3.7"


def test_a_window_of_two_periods_rounds_each_period(api: ApiClient, clickhouse: Any) -> None:
    catalog(api, start="2026-09-01T00:00:00Z")
    sep, oct_ = "2026-09-30T00:00:00+00:00", "2026-10-02T00:00:00+00:00"
    send(api, clickhouse, "storage", ("a", sep, "0.1"), ("b", oct_, "0.1"))
    # September's invoice bills ceil(0.1) = 1, October's 1: the window says 2 (not ceil(0.2)).
    window = {"from": "2026-09-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    storage = [m for m in api.ok("GET", "/customers/acme/usage", params=window)["metrics"]
               if m["metric"] == "storage"]  # fmt: skip
    assert [(m["quantity"], m["amount"]) for m in storage] == [("2", "1.00")]
