"""Exact aggregates of UsageStore on the real ClickHouse engine (BILLING.md, metrics).

Each case writes events through the production sink into its own tenant and reads the
quantity through every entry point: `customer_usage`, the bill run's bulk
`interval_quantities` and the usage read-out's `customer_interval_quantities`.
The semantics are in docs/aggregations.md.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from rating.model import Aggregation, Metric, Period
from streams.usage_store import BillingInterval, UsageStore
from tests.conftest import CH_DATABASE
from tests.streams.conftest import (
    APRIL,
    ENTRY_POINTS,
    METRIC,
    Ev,
    UsageEnv,
    at,
    ev,
    new_tenant,
)

pytestmark = pytest.mark.clickhouse

COUNT, SUM, MAX = Aggregation.COUNT, Aggregation.SUM, Aggregation.MAX
UNIQUE, LATEST, WEIGHTED = Aggregation.UNIQUE_COUNT, Aggregation.LATEST, Aggregation.WEIGHTED_SUM


def metric(
    aggregation: Aggregation,
    field: str = "value",
    filters: dict[str, tuple[str, ...]] | None = None,
    group_by: tuple[str, ...] = (),
) -> Metric:
    return Metric(METRIC, "Metric", aggregation, field, filters or {}, group_by)


# (case id, aggregation, field, events, expected quantity; None = no usage row)
AGGREGATION_CASES: list[tuple[str, Aggregation, str, list[Ev], D | None]] = [
    ("count", COUNT, "value", [ev("a", 1), ev("b", 2, 5), ev("c", 3, "-1")], D(3)),
    ("count no events", COUNT, "value", [], None),
    ("sum", SUM, "value", [ev("a", 1, "1.5"), ev("b", 2, "2.25"), ev("c", 3, "-0.75")], D(3)),
    (
        "sum keeps 12 decimals",
        SUM,
        "value",
        [ev(x, 1, "0.000000000001") for x in "abc"],
        D("0.000000000003"),
    ),
    (
        "sum beyond Decimal(38, 12) does not overflow",
        SUM,
        "value",
        [ev(x, 1, "99999999999999999999999999.999999999999") for x in "ab"],
        D("199999999999999999999999999.999999999998"),
    ),
    (
        "sum ignores events without a value",
        SUM,
        "value",
        [ev("a", 1, 4), ev("b", 2), ev("c", 3, 6)],
        D(10),
    ),
    ("sum of no value is 0", SUM, "value", [ev("a", 1), ev("b", 2)], D(0)),
    (
        "sum falls back to a numeric value property",
        SUM,
        "value",
        [ev("a", 1, 4), ev("b", 2, value="2.5"), ev("c", 3, 1, value="100")],
        D("5") + D("2.5"),
    ),
    (
        "sum of a property, read exactly",
        SUM,
        "bytes",
        [
            ev("a", 1, bytes="10"),
            ev("b", 1, bytes="2.5"),
            ev("c", 1, bytes="1.500000000000000"),  # trailing zeros: still 1.5
            ev("d", 1, bytes="1e-05"),  # a JSON float's repr
            ev("e", 1, bytes="-.25"),
            ev("f", 1, bytes="+3."),
            ev("g", 1, 1000),  # the value column is not the field
        ],
        D("10") + D("2.5") + D("1.5") + D("0.00001") - D("0.25") + D("3"),
    ),
    (
        "sum ignores non-numeric and inexact properties",
        SUM,
        "bytes",
        [
            ev("a", 1, bytes="7"),
            ev("b", 1, bytes="abc"),
            ev("c", 1, bytes=""),
            ev("d", 1, bytes=" 5"),
            ev("e", 1, bytes="1.0000000000001"),  # 13 places: not exact at scale 12
            ev("f", 1, bytes="1e-13"),
            ev("g", 1, bytes="nan"),
            ev("h", 1, bytes="inf"),
            ev("i", 1, bytes="1,5"),
            ev("j", 1, bytes="0x10"),
            ev("k", 1, bytes="1" * 27),  # beyond 26 integer digits
            ev("l", 1),
        ],
        D(7),
    ),
    (
        "max over the whole period",
        MAX,
        "value",
        [ev("a", 1, 3), ev("b", 15, 10), ev("c", 29, 2)],
        D(10),
    ),
    ("max of negatives", MAX, "value", [ev("a", 1, -3), ev("b", 2, "-1.5")], D("-1.5")),
    ("max ignores events without a value", MAX, "value", [ev("a", 1), ev("b", 2, -2)], D(-2)),
    ("max of no value is 0", MAX, "value", [ev("a", 1)], D(0)),
    (
        "max of a property compares numbers, not text",
        MAX,
        "gb",
        [ev("a", 1, gb="9"), ev("b", 2, gb="10"), ev("c", 3, gb="x")],
        D(10),
    ),
    (
        "unique_count of a property",
        UNIQUE,
        "user",
        [
            ev("a", 1, user="alice"),
            ev("b", 2, user="bob"),
            ev("c", 3, user="alice"),
            ev("d", 4, user="Alice"),  # text compares exactly
            ev("e", 5, user=""),  # empty: missing
            ev("f", 6),
        ],
        D(3),
    ),
    (
        "unique_count of value compares numbers",
        UNIQUE,
        "value",
        [ev("a", 1, "1.5"), ev("b", 2, "1.50"), ev("c", 3, 2), ev("d", 4)],
        D(2),
    ),
    ("unique_count with no values is 0", UNIQUE, "user", [ev("a", 1)], D(0)),
    (
        "latest: greatest timestamp",
        LATEST,
        "value",
        [ev("a", 5, 1), ev("b", 9, 2), ev("c", 7, 3)],
        D(2),
    ),
    (
        "latest: millisecond order",
        LATEST,
        "value",
        [ev("a", 5, 1, ms=2), ev("b", 5, 2, ms=1)],
        D(1),
    ),
    (
        "latest tie: greatest event id",
        LATEST,
        "value",
        [ev("evt-b", 5, 2), ev("evt-a", 5, 1), ev("evt-c", 4, 9)],
        D(2),
    ),
    (
        "latest tie: ids compare as text (e9 > e10)",
        LATEST,
        "value",
        [ev("e10", 5, 10), ev("e9", 5, 9)],
        D(9),
    ),
    (
        "latest ignores events without the field",
        LATEST,
        "value",
        [ev("a", 5, 4), ev("b", 9), ev("c", 8, bytes="x")],
        D(4),
    ),
    (
        "latest of a property",
        LATEST,
        "seats",
        [ev("a", 5, seats="4"), ev("b", 9, seats="x"), ev("c", 3, seats="7")],
        D(4),
    ),
    ("latest of no value is 0", LATEST, "value", [ev("a", 1)], D(0)),
    (
        "weighted_sum: 0, +10 at day 10, -4 at day 20 of 30",
        WEIGHTED,
        "value",
        [ev("a", 10, 10), ev("b", 20, -4)],
        D("5.333333333333"),  # (10 × 10 + 6 × 10) / 30, rounded half up to 12 places
    ),
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("aggregation", "field", "events", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in AGGREGATION_CASES],
)
def test_aggregation(
    usage_env: UsageEnv,
    entry: str,
    aggregation: Aggregation,
    field: str,
    events: list[Ev],
    expected: D | None,
) -> None:
    if events:
        usage_env.send(*events)
    got = usage_env.quantities(entry, metric(aggregation, field))
    assert got == ({} if expected is None else {(): expected})


def test_unique_count_is_exact_for_many_values(usage_env: UsageEnv) -> None:
    """20,000 distinct users: an approximate uniq would be off by tens."""
    usage_env.send(*[ev(f"e{i}", i % 29, user=f"user-{i}") for i in range(20_000)])
    usage_env.send(*[ev(f"again-{i}", 1, user=f"user-{i}") for i in range(0, 20_000, 7)])
    for entry in ENTRY_POINTS:
        assert usage_env.quantities(entry, metric(UNIQUE, "user")) == {(): D(20_000)}


# -- filters and groupBy ------------------------------------------------------------

SPLIT_EVENTS = [
    ev("a", 1, 5, region="eu", plan="pro", user="u1"),
    ev("b", 2, 3, region="us", plan="pro", user="u2"),
    ev("c", 3, 7, region="eu", plan="free", user="u1"),
    ev("d", 4, 1, region="asia", plan="pro", user="u3"),
    ev("e", 5, 2, plan="pro", user="u4"),  # no region
    ev("f", 6, region="eu", plan="pro", user="u5"),  # no value
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("aggregation", "field", "filters", "expected"),
    [
        pytest.param(COUNT, "value", {"region": ("eu",)}, D(3), id="count region=eu"),
        pytest.param(SUM, "value", {"region": ("eu", "us")}, D(15), id="sum region in eu,us"),
        pytest.param(MAX, "value", {"region": ("us", "asia")}, D(3), id="max region in us,asia"),
        pytest.param(UNIQUE, "user", {"region": ("eu",)}, D(2), id="unique region=eu"),
        pytest.param(LATEST, "value", {"region": ("eu",)}, D(7), id="latest region=eu"),
        pytest.param(
            SUM, "value", {"region": ("eu",), "plan": ("pro",)}, D(5), id="two filters AND"
        ),
        pytest.param(SUM, "value", {"region": ("",)}, D(2), id="empty value selects missing"),
        pytest.param(COUNT, "value", {"region": ("mars",)}, None, id="nothing matches"),
        pytest.param(COUNT, "value", {"region": ()}, None, id="no values selects nothing"),
        pytest.param(
            WEIGHTED, "value", {"region": ("eu",)}, D("11.133333333333"), id="weighted"
        ),  # (5 × 29 + 7 × 27) / 30
    ],
)
def test_metric_filters(
    usage_env: UsageEnv,
    entry: str,
    aggregation: Aggregation,
    field: str,
    filters: dict[str, tuple[str, ...]],
    expected: D | None,
) -> None:
    usage_env.send(*SPLIT_EVENTS)
    got = usage_env.quantities(entry, metric(aggregation, field, filters))
    assert got == ({} if expected is None else {(): expected})


@pytest.mark.parametrize(
    ("metric_filters", "charge_filters", "expected"),
    [
        pytest.param({}, {"region": ("us",)}, D(3), id="charge filter only"),
        pytest.param(
            {"region": ("eu", "us")}, {"region": ("us", "asia")}, D(3), id="same key: both hold"
        ),
        pytest.param({"region": ("eu",)}, {"region": ("asia",)}, None, id="disjoint: nothing"),
        pytest.param({"region": ("eu",)}, {"plan": ("free",)}, D(7), id="different keys"),
    ],
)
def test_charge_filters_and_metric_filters(
    usage_env: UsageEnv,
    metric_filters: dict[str, tuple[str, ...]],
    charge_filters: dict[str, tuple[str, ...]],
    expected: D | None,
) -> None:
    usage_env.send(*SPLIT_EVENTS)
    got = usage_env.bulk_quantities(
        metric(SUM, filters=metric_filters), extra_filters=charge_filters
    )
    assert got == ({} if expected is None else {(): expected})


def _g(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def _regions(*, eu: D, us: D, asia: D, missing: D) -> dict[Any, D]:
    return {
        _g(region="eu"): eu,
        _g(region="us"): us,
        _g(region="asia"): asia,
        _g(region=""): missing,
    }


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("aggregation", "field", "expected"),
    [
        pytest.param(
            COUNT,
            "value",
            _regions(eu=D(3), us=D(1), asia=D(1), missing=D(1)),
            id="count",
        ),
        pytest.param(
            SUM,
            "value",
            _regions(eu=D(12), us=D(3), asia=D(1), missing=D(2)),
            id="sum",
        ),
        pytest.param(
            MAX,
            "value",
            _regions(eu=D(7), us=D(3), asia=D(1), missing=D(2)),
            id="max",
        ),
        pytest.param(
            UNIQUE,
            "user",
            _regions(eu=D(2), us=D(1), asia=D(1), missing=D(1)),
            id="unique_count",
        ),
        pytest.param(
            LATEST,
            "value",
            _regions(eu=D(7), us=D(3), asia=D(1), missing=D(2)),
            id="latest",
        ),
        pytest.param(
            WEIGHTED,
            "value",
            {
                _g(region="eu"): D("11.133333333333"),  # (5 × 29 + 7 × 27) / 30 = 334 / 30
                _g(region="us"): D("2.8"),  # 3 × 28 / 30
                _g(region="asia"): D("0.866666666667"),  # 1 × 26 / 30
                _g(region=""): D("1.666666666667"),  # 2 × 25 / 30
            },
            id="weighted_sum",
        ),
    ],
)  # fmt: skip
def test_group_by_one_property(
    usage_env: UsageEnv,
    entry: str,
    aggregation: Aggregation,
    field: str,
    expected: dict[Any, D],
) -> None:
    """One row per region; events without the property form the "" group."""
    usage_env.send(*SPLIT_EVENTS)
    assert usage_env.quantities(entry, metric(aggregation, field, group_by=("region",))) == expected


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_group_by_two_properties_with_filter(usage_env: UsageEnv, entry: str) -> None:
    usage_env.send(*SPLIT_EVENTS)
    got = usage_env.quantities(
        entry, metric(SUM, filters={"plan": ("pro",)}, group_by=("region", "plan"))
    )
    assert got == {
        _g(region="eu", plan="pro"): D(5),  # "f" has no value: sum 5
        _g(region="us", plan="pro"): D(3),
        _g(region="asia", plan="pro"): D(1),
        _g(region="", plan="pro"): D(2),
    }


# -- intervals, customers and tenants ---------------------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_interval_edges(usage_env: UsageEnv, entry: str) -> None:
    """[start, end): an event exactly at start is in, exactly at end is out."""
    start, end = at(0), at(30)
    usage_env.send(
        ev("before", 0, 1, ms=-1),
        ev("at-start", 0, 10),
        ev("last-ms", 30, 100, ms=-1),
        ev("at-end", 30, 1000),
    )
    assert usage_env.quantities(entry, metric(SUM), start, end) == {(): D(110)}
    assert usage_env.quantities(entry, metric(COUNT), start, end) == {(): D(2)}


def test_two_subscriptions_of_one_customer_split_events_by_time(usage_env: UsageEnv) -> None:
    usage_env.send(ev("a", 1, 1), ev("b", 14, 2, ms=999), ev("c", 15, 4), ev("d", 29, 8))
    rows = usage_env.bulk(
        metric(SUM),
        [
            BillingInterval("old", "c1", at(0), at(15), APRIL),
            BillingInterval("new", "c1", at(15), at(30), APRIL),
        ],
        with_amounts=True,
    )
    assert rows == {
        ("old", ()): (D(3), 2, (D(1), D(2))),
        ("new", ()): (D(12), 2, (D(4), D(8))),
    }


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_inline_intervals_give_the_bill_runs_rows(
    usage_env: UsageEnv, aggregation: Aggregation
) -> None:
    """The read-out's inline intervals (several periods and a whole window of one
    customer) give exactly the rows of the same intervals registered by a bill run."""
    usage_env.send(
        ev("a", 1, 3, region="eu"),
        ev("b", 9, "1.5", region="us"),
        ev("c", 14, 2, ms=999, region="eu"),
        ev("d", 15, 0, region="eu"),
        ev("e", 29, 8, region="us"),
        ev("f", 20, 5, customer="c2", region="eu"),
    )
    first, second = Period(at(0), at(15)), Period(at(15), at(30))
    intervals = [
        BillingInterval("p1", "c1", at(1), at(15), first),
        BillingInterval("p2", "c1", at(15), at(30), second),
        BillingInterval("window", "c1", at(1), at(30)),
    ]
    grouped = metric(aggregation, group_by=("region",))
    for with_amounts in (False, True):
        regions = {"region": ["eu", "us"]}
        bulk = usage_env.bulk(grouped, intervals, regions, with_amounts=with_amounts)
        inline = usage_env.inline(grouped, intervals, regions, with_amounts=with_amounts)
        assert inline == bulk
        assert {key for key, _ in inline} == {"p1", "p2", "window"}


def test_inline_intervals_read_one_customer_of_one_tenant(clickhouse: Any) -> None:
    store = UsageStore(clickhouse, CH_DATABASE)
    from streams.sink import ClickHouseSink

    sink = ClickHouseSink(clickhouse, CH_DATABASE)
    mine = UsageEnv(store, sink, clickhouse, new_tenant())
    other = UsageEnv(store, sink, clickhouse, new_tenant())
    mine.send(ev("a", 1, 1), ev("b", 1, 2, customer="c2"), ev("c", 1, 4, metric="other"))
    other.send(ev("a", 1, 100), ev("z", 2, 200))
    rows = mine.inline(metric(SUM), [BillingInterval("s1", "c1", at(0), at(30))], with_amounts=True)
    assert rows == {("s1", ()): (D(1), 1, (D(1),))}


def test_bulk_isolates_customers_metrics_and_tenants(clickhouse: Any) -> None:
    store = UsageStore(clickhouse, CH_DATABASE)
    from streams.sink import ClickHouseSink

    sink = ClickHouseSink(clickhouse, CH_DATABASE)
    mine = UsageEnv(store, sink, clickhouse, new_tenant())
    other = UsageEnv(store, sink, clickhouse, new_tenant())
    mine.send(
        ev("a", 1, 1, customer="c1"),
        ev("b", 1, 2, customer="c2"),
        ev("c", 1, 4, customer="c1", metric="other"),
        ev("d", 1, 8, customer="c3"),  # no subscription in this run
    )
    # Same customer ids, metric and event ids in another tenant, with its own run open.
    other.send(ev("a", 1, 100, customer="c1"), ev("b", 1, 200, customer="c2"))
    other_key = store.register_intervals(other.tenant, [BillingInterval("x1", "c1", at(0), at(30))])
    try:
        rows = mine.bulk(
            metric(SUM),
            [
                BillingInterval("s1", "c1", at(0), at(30)),
                BillingInterval("s2", "c2", at(0), at(30)),
            ],
        )
    finally:
        store.drop_intervals(other_key)
    assert rows == {("s1", ()): (D(1), 1, ()), ("s2", ()): (D(2), 1, ())}
    assert mine.usage(metric(SUM), customer="c1") == {(): D(1)}
    assert other.usage(metric(SUM), customer="c1") == {(): D(100)}


class _CountingClient:
    """The real client, counting the queries sent through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        return self._client.query(*args, **kwargs)

    def query_arrow(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        return self._client.query_arrow(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_bulk_is_one_query_per_metric_for_every_subscription(
    usage_env: UsageEnv, aggregation: Aggregation
) -> None:
    usage_env.send(*[ev(f"e{i}", i % 30, i % 7, customer=f"c{i % 50}") for i in range(500)])
    counting = _CountingClient(usage_env.client)
    store = UsageStore(counting, CH_DATABASE)
    key = store.register_intervals(
        usage_env.tenant,
        [BillingInterval(f"s{i}", f"c{i}", at(0), at(30)) for i in range(50)],
    )
    try:
        frame = store.interval_quantities(
            usage_env.tenant, key, metric(aggregation, group_by=("x",)), {}, at(0), at(30)
        )
    finally:
        store.drop_intervals(key)
    assert counting.queries == 1
    assert frame.height == 50


# -- duplicates: the first accepted copy wins, before and after merges -------------------


def _optimize(env: UsageEnv) -> None:
    env.client.command(f"OPTIMIZE TABLE {CH_DATABASE}.usage_events FINAL")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_duplicate_ids_count_once_and_first_copy_wins(usage_env: UsageEnv, entry: str) -> None:
    usage_env.send(ev("a", 1, 5, user="u1"), ev("b", 2, 1, user="u2"))
    usage_env.send(ev("a", 3, 50, user="u3"))  # resent with another value and time
    usage_env.send(ev("a", 1, 5, user="u1"), ev("b", 2, 1, user="u2"))  # redelivered
    expected = {COUNT: D(2), SUM: D(6), MAX: D(5), UNIQUE: D(2), LATEST: D(1)}
    for merged in (False, True):
        if merged:
            _optimize(usage_env)
        for aggregation, quantity in expected.items():
            field = "user" if aggregation == UNIQUE else "value"
            got = usage_env.quantities(entry, metric(aggregation, field))
            assert got == {(): quantity}, (aggregation, merged)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_duplicate_moved_in_time_keeps_the_first_timestamp(usage_env: UsageEnv, entry: str) -> None:
    """A later copy never moves an event into or out of the window.

    Each copy is its own insert, hence its own part: a skip index (minmax on ts) must
    not prune the part of the winning copy and let the later one through FINAL.
    """
    usage_env.send(ev("out-first", 40, 100))
    usage_env.send(ev("out-first", 10, 10000))
    usage_env.send(ev("in-first", 10, 1))
    usage_env.send(ev("in-first", 40, 1000))
    usage_env.send(ev("plain", 11, 7))
    for merged in (False, True):
        if merged:
            _optimize(usage_env)
        assert usage_env.quantities(entry, metric(SUM)) == {(): D(8)}, merged
        assert usage_env.quantities(entry, metric(COUNT)) == {(): D(2)}, merged


def test_duplicate_moved_between_customers_keeps_the_first(usage_env: UsageEnv) -> None:
    """Nor does a later copy move an event to another customer (bloom filter index)."""
    usage_env.send(ev("a", 10, 1, customer="c1"))
    usage_env.send(ev("a", 10, 1, customer="c2"))
    rows = usage_env.bulk(
        metric(COUNT),
        [BillingInterval("s1", "c1", at(0), at(30)), BillingInterval("s2", "c2", at(0), at(30))],
    )
    assert rows == {("s1", ()): (D(1), 1, ())}
    assert usage_env.usage(metric(COUNT), customer="c2") == {}
    assert usage_env.usage(metric(COUNT), customer="c1") == {(): D(1)}


def test_weighted_sum_counts_a_resent_change_once(usage_env: UsageEnv) -> None:
    usage_env.send(ev("a", 10, 10), ev("b", 20, -4))
    usage_env.send(ev("a", 10, 10), ev("b", 25, -40))
    for merged in (False, True):
        if merged:
            _optimize(usage_env)
        for entry in ENTRY_POINTS:
            assert usage_env.quantities(entry, metric(WEIGHTED)) == {(): D("5.333333333333")}


def test_same_event_id_in_two_tenants_counts_in_each(clickhouse: Any) -> None:
    from streams.sink import ClickHouseSink

    store, sink = UsageStore(clickhouse, CH_DATABASE), ClickHouseSink(clickhouse, CH_DATABASE)
    first = UsageEnv(store, sink, clickhouse, new_tenant())
    second = UsageEnv(store, sink, clickhouse, new_tenant())
    first.send(ev("shared", 3, 1))
    second.send(ev("shared", 3, 2))
    assert first.usage(metric(SUM)) == {(): D(1)}
    assert second.usage(metric(SUM)) == {(): D(2)}


# -- amounts of percentage charges -------------------------------------------------------


def test_amounts_are_per_event_in_time_order(usage_env: UsageEnv) -> None:
    usage_env.send(ev("b", 5, 2), ev("a", 5, 1), ev("c", 1, "0.5"), ev("d", 9), ev("e", 31, 9))
    rows = usage_env.bulk(
        metric(SUM), [BillingInterval("s1", "c1", at(0), at(30))], with_amounts=True
    )
    # Ties in time by event id; an event without the field is a 0 amount.
    assert rows == {("s1", ()): (D("3.5"), 4, (D("0.5"), D(1), D(2), D(0)))}


def test_customer_usage_returns_every_metric(usage_env: UsageEnv) -> None:
    metrics = [Metric(f"m-{a.value}", a.value, a) for a in Aggregation]
    usage_env.send(
        *[ev(f"{m.code}-{i}", day, value, metric=m.code) for m in metrics
          for i, (day, value) in enumerate([(10, 10), (20, -4)])]
    )  # fmt: skip
    rows = usage_env.store.customer_usage(usage_env.tenant, "c1", metrics, at(0), at(30))
    assert {code: q for code, _, q in rows} == {
        "m-count": D(2),
        "m-sum": D(6),
        "m-max": D(10),
        "m-unique_count": D(2),
        "m-latest": D(-4),
        "m-weighted_sum": D("5.333333333333"),
    }
