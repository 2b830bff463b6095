"""A bill run's usage reader (`BillRunUsage`) on the real engine: the tenant's events
staged once, each chunk reading its own customer range, exactly what the unstaged
queries give; a wider chunk restages; nothing is left behind."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.model import Aggregation, Metric, Period, UsageCharge
from streams.billing_usage import UsageRequest
from streams.usage_store import STAGED_PREFIX
from tests.conftest import CH_DATABASE
from tests.streams.conftest import APRIL, UsageEnv, at, ev

pytestmark = pytest.mark.clickhouse

CALLS = Metric("calls", "Calls", Aggregation.SUM, "value", {}, ())
SEATS = Metric("seats", "Seats", Aggregation.WEIGHTED_SUM, "value", {}, ())
CHARGES = (
    UsageCharge("ch_calls", CALLS, "per_unit", {"unitAmount": "1"}),
    UsageCharge("ch_seats", SEATS, "per_unit", {"unitAmount": "1"}),
)
CUSTOMERS = [f"cus_{n:03d}" for n in range(12)]


def _staged_tables(client: Any) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables"
        " WHERE database = {d:String} AND startsWith(name, {p:String})",
        parameters={"d": CH_DATABASE, "p": STAGED_PREFIX},
    ).result_rows
    return [str(r[0]) for r in rows]


def _request(customer: str, active: Period = APRIL) -> UsageRequest:
    return UsageRequest(f"sub_{customer}", customer, active, APRIL, CHARGES)


def _send_usage(usage_env: UsageEnv) -> None:
    events = []
    for n, customer in enumerate(CUSTOMERS):
        events += [
            ev(f"{customer}-a", 1, n + 1, customer=customer, metric="calls"),
            ev(f"{customer}-b", 20, "0.5", customer=customer, metric="calls"),
            # Before the month: only weighted_sum reads it (the opening level).
            ev(f"{customer}-old", -3, 2, customer=customer, metric="seats"),
            ev(f"{customer}-up", 15, 4, customer=customer, metric="seats"),
            ev(f"{customer}-out", 40, 100, customer=customer, metric="calls"),
        ]
    usage_env.send(*events)
    usage_env.send(ev(f"{CUSTOMERS[0]}-a", 2, 999, customer=CUSTOMERS[0], metric="calls"))


def test_chunks_read_their_own_customers_exactly_as_unstaged(usage_env: UsageEnv) -> None:
    _send_usage(usage_env)
    store, tenant = usage_env.store, usage_env.tenant
    requests = [_request(c) for c in CUSTOMERS]
    unstaged = store.metered_quantities(tenant, requests)
    with store.bill_run_usage(tenant) as reader:
        staged: dict[str, Any] = {}
        # Three chunks in customer order, as the bill run pages them.
        for chunk in (requests[:5], requests[5:9], requests[9:]):
            staged.update(reader.metered_quantities(chunk))
        assert len(_staged_tables(usage_env.client)) >= 1
    assert staged == unstaged
    first = {q.charge_id: q for q in staged["sub_cus_000"]}
    assert first["ch_calls"].quantity == D("1.5")  # the resent copy (999) does not count
    # Level 2 (set before the month) for 15 days, then 2 + 4 for 15 days, over 30 days.
    assert first["ch_seats"].quantity == (D(2) * 15 + D(6) * 15) / 30
    assert store.bill_run_usage(tenant).metered_quantities([]) == {}


def test_an_unsorted_chunk_is_still_exact(usage_env: UsageEnv) -> None:
    _send_usage(usage_env)
    store, tenant = usage_env.store, usage_env.tenant
    requests = [_request(c) for c in (CUSTOMERS[7], CUSTOMERS[0], CUSTOMERS[11])]
    with store.bill_run_usage(tenant) as reader:
        assert reader.metered_quantities(requests) == store.metered_quantities(tenant, requests)


def test_a_wider_chunk_restages_and_the_run_leaves_nothing(usage_env: UsageEnv) -> None:
    _send_usage(usage_env)
    store, tenant, client = usage_env.store, usage_env.tenant, usage_env.client
    before = set(_staged_tables(client))
    late_start = Period(at(10), APRIL.end)
    with store.bill_run_usage(tenant) as reader:
        narrow = reader.metered_quantities([_request(CUSTOMERS[1], late_start)])
        first = set(_staged_tables(client)) - before
        # A later chunk reaches back to the start of the month: a wider copy.
        wide = reader.metered_quantities([_request(CUSTOMERS[2])])
        second = set(_staged_tables(client)) - before
        assert len(first) == len(second) == 1 and first != second
    assert set(_staged_tables(client)) == before
    calls = {q.charge_id: q.quantity for q in narrow["sub_cus_001"]}
    assert calls["ch_calls"] == D("0.5")
    assert {q.charge_id: q.quantity for q in wide["sub_cus_002"]}["ch_calls"] == D("3.5")


def test_staged_tables_are_kept_while_fresh_and_only_they_can_be_dropped(
    usage_env: UsageEnv,
) -> None:
    store, client = usage_env.store, usage_env.client
    stale = store.stage_events(usage_env.tenant, APRIL.start, APRIL.end, [])
    # A fresh table is kept by the next staging (a run may be using it) …
    other = store.stage_events(usage_env.tenant, APRIL.start, APRIL.end, [])
    assert {stale, other} <= set(_staged_tables(client))
    store.drop_staged(other)
    store.drop_staged(stale)
    assert stale not in _staged_tables(client)
    with pytest.raises(ValueError):
        store.drop_staged("usage_events")


def test_a_failing_chunk_still_drops_the_staged_copy(usage_env: UsageEnv) -> None:
    _send_usage(usage_env)
    store, client = usage_env.store, usage_env.client
    before = set(_staged_tables(client))
    with pytest.raises(RuntimeError), store.bill_run_usage(usage_env.tenant) as reader:
        reader.metered_quantities([_request(CUSTOMERS[3])])
        raise RuntimeError("the bill run failed mid-way")
    assert set(_staged_tables(client)) == before
