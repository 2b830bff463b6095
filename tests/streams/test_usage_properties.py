"""ClickHouse's aggregates equal a pure-Python recomputation over random events.

Random events (resent ids, boundary timestamps, missing values and properties) go
through the production sink in several writes; the model keeps each id's first
accepted copy, as usage_events does. Every aggregation is compared through both entry
points, for random filters and groupBy. Each example inserts rows, hence few examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating.model import Aggregation, Group, Metric
from streams.usage_store import BillingInterval
from tests.streams.conftest import APRIL, METRIC, Ev, UsageEnv, at, new_tenant

pytestmark = pytest.mark.clickhouse

DAY_MS = 86_400_000
PERIOD_MS = 30 * DAY_MS


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """Around April 2024; the window's edges, their neighbours and shared instants likely."""
    edge = draw(st.sampled_from([None, None, 0, 30, 5, 12]))
    if edge is not None:
        return at(edge, ms=draw(st.sampled_from([-1, 0, 1])))
    return at(0, ms=draw(st.integers(min_value=-3 * DAY_MS, max_value=33 * DAY_MS)))


values = st.none() | st.builds(
    lambda n, places: Decimal(n).scaleb(-places),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=0, max_value=12),
)


@st.composite
def events(draw: st.DrawFn) -> Ev:
    props: dict[str, str] = {}
    region = draw(st.sampled_from([None, "eu", "us"]))
    if region is not None:
        props["region"] = region
    user = draw(st.sampled_from([None, "", "u1", "u2", "U1", "u3"]))
    if user is not None:
        props["user"] = user
    return Ev(
        id=f"e{draw(st.integers(min_value=0, max_value=14))}",
        ts=draw(timestamps()),
        value=draw(values),
        props=props,
        customer=draw(st.sampled_from(["c1", "c2"])),
    )


def _unique_ids(batch: list[Ev]) -> list[Ev]:
    # Two copies in one insert share an ingestion time, so "first" is undefined there.
    seen: dict[str, Ev] = {}
    for event in batch:
        seen.setdefault(event.id, event)
    return list(seen.values())


batches = st.lists(
    st.lists(events(), min_size=1, max_size=12).map(_unique_ids), min_size=1, max_size=3
)
filters = st.sampled_from(
    [{}, {"region": ("eu",)}, {"region": ("eu", "")}, {"user": ("u1", "U1", "u3")}]
)
group_bys = st.sampled_from([(), ("region",), ("region", "user")])


@dataclass(frozen=True)
class Model:
    """The billing rules of BILLING.md, recomputed over the surviving events."""

    events: Sequence[Ev]

    def quantities(
        self, aggregation: Aggregation, field: str, metric: Metric, customer: str
    ) -> dict[Group, Decimal]:
        matched = [
            e
            for e in self.events
            if e.customer == customer
            and all(e.props.get(k, "") in vs for k, vs in metric.filters.items())
        ]
        groups: dict[Group, list[Ev]] = {}
        for e in matched:
            group = tuple(sorted((g, e.props.get(g, "")) for g in metric.group_by))
            groups.setdefault(group, []).append(e)
        out: dict[Group, Decimal] = {}
        for group, members in groups.items():
            inside = [e for e in members if APRIL.start <= e.ts < APRIL.end]
            if aggregation == Aggregation.WEIGHTED_SUM:
                numerator = _level_milliseconds(members)
                if inside or numerator:
                    out[group] = _round_half_up(Fraction(numerator) / PERIOD_MS)
            elif inside:
                out[group] = _aggregate(aggregation, field, inside)
        return out


def _numbers(events: Sequence[Ev], field: str) -> list[tuple[Ev, Decimal]]:
    if field == "value":
        return [(e, e.value) for e in events if e.value is not None]
    return []


def _aggregate(aggregation: Aggregation, field: str, events: Sequence[Ev]) -> Decimal:
    numbers = _numbers(events, field)
    with localcontext() as context:
        context.prec = 100
        match aggregation:
            case Aggregation.COUNT:
                return Decimal(len(events))
            case Aggregation.SUM:
                return sum((v for _, v in numbers), Decimal(0))
            case Aggregation.MAX:
                return max((v for _, v in numbers), default=Decimal(0))
            case Aggregation.UNIQUE_COUNT:
                users = {e.props.get(field, "") for e in events} - {""}
                return Decimal(len(users))
            case Aggregation.LATEST:
                if not numbers:
                    return Decimal(0)
                return max(numbers, key=lambda pair: (pair[0].ts, pair[0].id.encode()))[1]
    raise AssertionError(aggregation)


def _level_milliseconds(events: Sequence[Ev]) -> Decimal:
    """Σ level × ms it held in the window, stepping through the changes in time order."""
    with localcontext() as context:
        context.prec = 100
        changes = sorted((e.ts, e.value) for e in events if e.value is not None)
        level = sum((v for ts, v in changes if ts < APRIL.start), Decimal(0))
        held = Decimal(0)
        cursor = APRIL.start
        for ts, value in changes:
            if not APRIL.start <= ts < APRIL.end:
                continue
            held += level * ((ts - cursor) // timedelta(milliseconds=1))
            level += value
            cursor = ts
        return held + level * ((APRIL.end - cursor) // timedelta(milliseconds=1))


def _round_half_up(value: Fraction) -> Decimal:
    with localcontext() as context:
        context.prec = 100
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)


def _surviving(writes: Sequence[Sequence[Ev]]) -> list[Ev]:
    first: dict[str, Ev] = {}
    for batch in writes:
        for event in batch:
            first.setdefault(event.id, event)
    return list(first.values())


CASES = [
    (Aggregation.COUNT, "value"),
    (Aggregation.SUM, "value"),
    (Aggregation.MAX, "value"),
    (Aggregation.UNIQUE_COUNT, "user"),
    (Aggregation.LATEST, "value"),
    (Aggregation.WEIGHTED_SUM, "value"),
]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=batches, metric_filters=filters, group_by=group_bys)
def test_clickhouse_equals_python(
    usage_env: UsageEnv,
    writes: list[list[Ev]],
    metric_filters: dict[str, tuple[str, ...]],
    group_by: tuple[str, ...],
) -> None:
    env = UsageEnv(usage_env.store, usage_env.sink, usage_env.client, new_tenant())
    for batch in writes:
        env.send(*batch)
    model = Model(_surviving(writes))
    intervals = [
        BillingInterval("s1", "c1", APRIL.start, APRIL.end, APRIL),
        BillingInterval("s2", "c2", APRIL.start, APRIL.end, APRIL),
    ]
    with env.run(intervals) as run_key:
        for aggregation, field in CASES:
            metric = Metric(METRIC, "M", aggregation, field, metric_filters, group_by)
            expected = {c: model.quantities(aggregation, field, metric, c) for c in ("c1", "c2")}
            assert env.usage(metric, customer="c1") == expected["c1"], aggregation
            rows = env.read_bulk(run_key, metric)
            got = {
                c: {g: q for (sub, g), (q, _, _) in rows.items() if sub == f"s{c[1]}"}
                for c in ("c1", "c2")
            }
            assert got == expected, aggregation
