"""Exact usage aggregates read from ClickHouse (the Aggregate stage's data source).

Every billing quantity is computed from `usage_events FINAL`, the deduplicated raw
events, never from the approximate rollup. Unique counts use uniqExact. Every entry
point, `customer_usage` (one customer, one window), `interval_quantities` (every
subscription of a bill run) and `customer_interval_quantities` (one customer's billing
periods, for the usage read-out), runs the same SQL, built by `_aggregate_sql`, so a
customer's usage page and its invoice can never disagree. The semantics of each
aggregation (fields, missing values, ties, groups, weighted sums) are documented in
docs/aggregations.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import polars as pl

from rating.model import Aggregation, Group, MeteredQuantity, Metric, Period, UsageCharge
from rating.money import EXACT, ratio
from streams.billing_usage import UsageRequest, decode_quantities, variant_queries

# Quantities that are a division (weighted_sum) are rounded once to this many decimal
# places, half up: the storage scale of values, Decimal(38, 12).
QUANTITY_PLACES = 12

# FINAL must see every copy of an event before any filter drops one: a skip index
# (minmax on ts, bloom filter on customer_id) may otherwise prune the part holding the
# winning copy and let a later copy through. Exact mode (the default since 25.6) is
# pinned so a server profile cannot turn it off under the bill run.
_FINAL_SETTINGS = "SETTINGS use_skip_indexes_if_final_exact_mode = 1"

# A property is a number when written as a plain decimal with at most 26 integer
# digits and at most 12 significant decimal places (trailing zeros are fine) …
_PLAIN_DECIMAL = r"^[+-]?([0-9]{1,26}(\.[0-9]{0,12}0*)?|\.[0-9]{1,12}0*)$"
# … or in the exponent form JSON floats take ("1e-05"), when its value is exact at
# 12 decimal places (checked against a 40-place reading).
_EXPONENT_DECIMAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]{1,3}$"

_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class IntervalQuantity:
    """One subscription's exact quantity of one metric (and group) in its interval."""

    subscription_id: str
    metric: str
    group: Group
    quantity: Decimal
    event_count: int


@dataclass(frozen=True)
class BillingInterval:
    """A subscription's active interval [start, end) in one billing period.

    `period` is the whole billing period; weighted_sum divides by its length (a
    subscription active for half the period pays half). Without it the active
    interval is taken as the period.
    """

    subscription_id: str
    customer_id: str
    start: datetime
    end: datetime
    period: Period | None = None


def exact_decimal(value: object) -> Decimal:
    """A Decimal from ClickHouse's text or Decimal, without the storage scale's zeros."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    # Decimal256 has 76 digits: the default 28-digit context would round them.
    with localcontext(EXACT):
        if number == number.to_integral_value():
            return number.quantize(Decimal(1))
        return number.normalize()


def weighted_quantity(level_milliseconds: Decimal, period_milliseconds: int) -> Decimal:
    """Σ level × milliseconds held ÷ milliseconds of the period, rounded half up to 12 places."""
    if period_milliseconds <= 0:
        raise ValueError(f"the billing period must be positive (got {period_milliseconds} ms)")
    # Exact integer division; the only rounding is the final half-up one.
    return exact_decimal(ratio(level_milliseconds, Decimal(period_milliseconds), QUANTITY_PLACES))


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _property(name: str) -> str:
    return f"properties[{_literal(name)}]"


def _numeric_property(name: str) -> str:
    """The property as an exact Decimal256(12), NULL when absent or not an exact number."""
    raw = _property(name)
    at_12 = f"toDecimal256OrNull({raw}, 12)"
    return (
        f"multiIf(match({raw}, {_literal(_PLAIN_DECIMAL)}), {at_12}, "
        f"match({raw}, {_literal(_EXPONENT_DECIMAL)}) "
        f"AND {at_12} = toDecimal256OrNull({raw}, 40) "
        f"AND abs({at_12}) < toDecimal256('100000000000000000000000000', 12), {at_12}, "
        "NULL)"
    )


def numeric_field_sql(field: str) -> str:
    """The metric's numeric field of an event as Decimal256(12); NULL when it has none.

    Field "value" is the event's `value` (falling back to a numeric `value` property
    when the event carries none); any other field is that property, read exactly.
    """
    if field == "value":
        return f"coalesce(toDecimal256(value, 12), {_numeric_property('value')})"
    return _numeric_property(field)


def unique_key_sql(field: str) -> str:
    """What unique_count counts distinct values of; NULL for events lacking the field.

    Field "value" compares numbers (1.5 and 1.50 are one value); a property compares
    its text exactly, and an empty text counts as missing.
    """
    if field == "value":
        return f"toString({numeric_field_sql('value')})"
    return f"nullIf({_property(field)}, '')"


def quantity_expr(metric: Metric) -> str:
    """The ClickHouse aggregate of a metric's quantity over the joined event rows, as text.

    Rows are `ev` (events with `num`, `ukey`) joined to `i` (intervals). weighted_sum
    yields the numerator Σ change × milliseconds it holds until the interval's end; the
    division by the period happens once, exactly, in Python.
    """
    match metric.aggregation:
        case Aggregation.COUNT:
            return "toString(count())"
        case Aggregation.SUM:
            return "toString(ifNull(sum(ev.num), toDecimal256(0, 12)))"
        case Aggregation.MAX:
            return "toString(ifNull(max(ev.num), toDecimal256(0, 12)))"
        case Aggregation.UNIQUE_COUNT:
            return "toString(uniqExact(ev.ukey))"
        case Aggregation.LATEST:
            return (
                "toString(ifNull(argMaxIf(ev.num, (ev.ts, ev.event_id), ev.num IS NOT NULL), "
                "toDecimal256(0, 12)))"
            )
        case Aggregation.WEIGHTED_SUM:
            # A change at t holds from max(t, start) to the interval's end; summing every
            # change before the end equals Σ level × time, with the level at `start` the
            # sum of all earlier changes and changes at one instant applying together.
            held = (
                "toUnixTimestamp64Milli(i.end) - toUnixTimestamp64Milli(greatest(ev.ts, i.start))"
            )
            return f"toString(ifNull(sum(ev.num * ({held})), toDecimal256(0, 12)))"
    raise ValueError(f"unknown aggregation {metric.aggregation}")


def filter_sql(*filter_sets: Mapping[str, Sequence[str]]) -> str:
    """`properties[k] IN (...)` for every filter of every set, ANDed; '1' when there are none.

    Metric filters and charge filters are separate sets: an event must pass both, even
    when they name the same property. A filter with no values selects nothing.
    """
    parts = []
    for filters in filter_sets:
        for key, values in sorted(filters.items()):
            if not values:
                parts.append("0")
                continue
            parts.append(f"{_property(key)} IN ({', '.join(_literal(v) for v in values)})")
    return " AND ".join(parts) if parts else "1"


def _aggregate_sql(
    database: str,
    metric: Metric,
    filters: str,
    intervals: str,
    *,
    one_customer: bool,
    with_amounts: bool,
    staged: str | None = None,
) -> str:
    """One query: the metric's quantity per interval (subscription) and group.

    `intervals` is a subquery with subscription_id, customer_id, start, end and
    period_ms. Parameters: t (tenant), m (metric), s/e (the window containing every
    interval), and c (customer) when `one_customer`. With `staged` (a run's copy of the
    deduplicated events, see `StagedEvents`) the events are read from that table in the
    customer range lo..hi instead of from `usage_events FINAL`.
    """
    weighted = metric.aggregation == Aggregation.WEIGHTED_SUM
    columns = ["customer_id", "ts", "event_id"]
    if metric.aggregation != Aggregation.COUNT or with_amounts:
        columns.append(f"{numeric_field_sql(metric.field)} AS num")
    if metric.aggregation == Aggregation.UNIQUE_COUNT:
        columns.append(f"{unique_key_sql(metric.field)} AS ukey")
    columns += [f"{_property(g)} AS g{i}" for i, g in enumerate(metric.group_by)]
    # weighted_sum needs every change before the window: they make its opening level.
    lower = "" if weighted else "AND ts >= {s:DateTime64(3, 'UTC')}"
    customer = "AND customer_id = {c:String}" if one_customer else ""
    inside = "ev.ts >= i.start AND ev.ts < i.end"
    groups = "".join(f", ev.g{i} AS g{i}" for i in range(len(metric.group_by)))
    group_keys = "".join(f", g{i}" for i in range(len(metric.group_by)))
    if weighted:
        events = f"countIf({inside})"
        extra = ", any(i.period_ms) AS period_ms"
        where = "ev.ts < i.end"
        having = "HAVING events > 0 OR quantity != '0'"
    else:
        events = "count()"
        extra = ""
        where = inside
        having = ""
    if staged is None:
        source = f"{database}.usage_events FINAL"
        scope = "tenant_id = {t:String}"
        settings = _FINAL_SETTINGS
    else:
        # The staged copy is deduplicated already and sorted by (metric, customer_id,
        # ts): the range reads only this chunk's customers.
        source = f"{database}.{staged}"
        scope = "customer_id >= {lo:String} AND customer_id <= {hi:String}"
        settings = ""
    if with_amounts:
        # Per-event amounts in time order (ties by event id), 0 for events lacking the field.
        amounts = "(ev.ts, ev.event_id, ifNull(ev.num, toDecimal256(0, 12)))"
        collect = f"groupArrayIf({amounts}, {inside})" if weighted else f"groupArray({amounts})"
        extra += f", arrayMap(x -> toString(x.3), arraySort({collect})) AS amounts"
    return f"""
        SELECT i.subscription_id AS subscription_id {groups},
               {quantity_expr(metric)} AS quantity, {events} AS events {extra}
        FROM (
            SELECT {", ".join(columns)}
            FROM {source}
            WHERE {scope} AND metric = {{m:String}} {customer}
              {lower} AND ts < {{e:DateTime64(3, 'UTC')}}
              AND {filters}
        ) AS ev
        INNER JOIN ({intervals}) AS i ON ev.customer_id = i.customer_id
        WHERE {where}
        GROUP BY subscription_id {group_keys}
        {having}
        {settings}
    """


def _with_weighted_quantities(frame: pl.DataFrame) -> pl.DataFrame:
    """Replace the weighted numerators by quantities (numerator ÷ the period's ms)."""
    quantities = [
        format(weighted_quantity(Decimal(numerator), int(period_ms)), "f")
        for numerator, period_ms in zip(
            frame["quantity"].to_list(), frame["period_ms"].to_list(), strict=True
        )
    ]
    return frame.with_columns(pl.Series("quantity", quantities, dtype=pl.String)).drop("period_ms")


def _utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant


def _milliseconds(start: datetime, end: datetime) -> int:
    return (end - start) // _MS


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_milliseconds(instant: datetime) -> int:
    return _milliseconds(_EPOCH, instant)


class UsageStore:
    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self._db = database

    # -- real-time reads -------------------------------------------------------

    def customer_usage(
        self,
        tenant_id: str,
        customer_id: str,
        metrics: Iterable[Metric],
        start: datetime,
        end: datetime,
        *,
        period: Period | None = None,
        extra_filters: Mapping[str, Sequence[str]] | None = None,
        ingested_through: datetime | None = None,
    ) -> list[tuple[str, Group, Decimal]]:
        """Exact (metric, group, quantity) of one customer over [start, end).

        weighted_sum divides by the length of `period` (default: [start, end)).
        `extra_filters` are a charge's filters; `ingested_through` counts only events
        stored up to that instant (what an invoice finalized then could know).
        """
        period = period or Period(start, end)
        intervals = (
            "SELECT '' AS subscription_id, {c:String} AS customer_id, "
            "{s:DateTime64(3, 'UTC')} AS start, {e:DateTime64(3, 'UTC')} AS end, "
            "{p:Int64} AS period_ms"
        )
        results: list[tuple[str, Group, Decimal]] = []
        for metric in metrics:
            filters = filter_sql(metric.filters, extra_filters or {})
            if ingested_through is not None:
                filters += " AND ingested_at <= {it:DateTime64(6, 'UTC')}"
            sql = _aggregate_sql(
                self._db,
                metric,
                filters,
                intervals,
                one_customer=True,
                with_amounts=False,
            )
            parameters: dict[str, Any] = {
                "t": tenant_id,
                "c": customer_id,
                "m": metric.code,
                "s": start,
                "e": end,
                "p": _milliseconds(period.start, period.end),
            }
            if ingested_through is not None:
                parameters["it"] = ingested_through
            table = self._client.query_arrow(sql, parameters=parameters)
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            if metric.aggregation == Aggregation.WEIGHTED_SUM:
                frame = _with_weighted_quantities(frame)
            group_cols = [f"g{i}" for i in range(len(metric.group_by))]
            for row in frame.iter_rows(named=True):
                group = tuple(
                    sorted(zip(metric.group_by, (row[c] for c in group_cols), strict=True))
                )
                results.append((metric.code, group, exact_decimal(row["quantity"])))
        return results

    def customer_interval_quantities(
        self,
        tenant_id: str,
        customer_id: str,
        intervals: Sequence[BillingInterval],
        metric: Metric,
        extra_filters: Mapping[str, Sequence[str]],
        *,
        with_amounts: bool = False,
    ) -> pl.DataFrame:
        """`interval_quantities` for intervals of one customer given inline, not registered.

        The same query and columns as the bill run's (subscription_id is each interval's
        key), without writing the scratch table: the usage read-out prices a customer's
        billing periods exactly as the bill run would, at the cost of a read only.
        """
        if not intervals:
            raise ValueError("customer_interval_quantities needs at least one interval")
        # Instants travel as epoch milliseconds: DateTime64(3) is what the columns hold.
        inline = """
            SELECT x.1 AS subscription_id, {c:String} AS customer_id,
                   fromUnixTimestamp64Milli(x.2, 'UTC') AS start,
                   fromUnixTimestamp64Milli(x.3, 'UTC') AS end,
                   x.4 AS period_ms
            FROM (SELECT arrayJoin(arrayZip({ik:Array(String)}, {is:Array(Int64)},
                                            {ie:Array(Int64)}, {ip:Array(Int64)})) AS x)
        """
        sql = _aggregate_sql(
            self._db,
            metric,
            filter_sql(metric.filters, extra_filters),
            inline,
            one_customer=True,
            with_amounts=with_amounts,
        )
        periods = [i.period or Period(i.start, i.end) for i in intervals]
        table = self._client.query_arrow(
            sql,
            parameters={
                "t": tenant_id,
                "c": customer_id,
                "m": metric.code,
                "s": min(i.start for i in intervals),
                "e": max(i.end for i in intervals),
                "ik": [i.subscription_id for i in intervals],
                "is": [_epoch_milliseconds(i.start) for i in intervals],
                "ie": [_epoch_milliseconds(i.end) for i in intervals],
                "ip": [_milliseconds(p.start, p.end) for p in periods],
            },
        )
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        if metric.aggregation == Aggregation.WEIGHTED_SUM:
            frame = _with_weighted_quantities(frame)
        return frame

    def event_count(self, tenant_id: str) -> int:
        """Distinct stored events of a tenant (exact)."""
        rows = self._client.query(
            f"SELECT count() FROM {self._db}.usage_events FINAL WHERE tenant_id = {{t:String}}",
            parameters={"t": tenant_id},
        ).result_rows
        return int(rows[0][0])

    def hourly_rollup(self, tenant_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per metric and hour: exact event counts from the rollup (for dashboards)."""
        rows = self._client.query(
            f"""
            SELECT metric, hour, uniqExactMerge(events) AS events
            FROM {self._db}.usage_hourly
            WHERE tenant_id = {{t:String}}
              AND hour >= {{s:DateTime('UTC')}} AND hour < {{e:DateTime('UTC')}}
            GROUP BY metric, hour ORDER BY hour, metric
            """,
            parameters={"t": tenant_id, "s": start, "e": end},
        ).result_rows
        return [{"metric": r[0], "hour": r[1], "events": int(r[2])} for r in rows]

    def rejected_events(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._client.query(
            f"""SELECT event_id, reason, payload, source, rejected_at
                FROM {self._db}.rejected_events WHERE tenant_id = {{t:String}}
                ORDER BY rejected_at DESC LIMIT {int(limit)}""",
            parameters={"t": tenant_id},
        ).result_rows
        return [
            {"id": r[0] or None, "reason": r[1], "payload": r[2], "source": r[3],
             "receivedAt": _utc(r[4]), "rejectedAt": _utc(r[4])}
            for r in rows
        ]  # fmt: skip

    # -- bulk reads for bill runs ---------------------------------------------------

    def register_intervals(self, tenant_id: str, intervals: Sequence[BillingInterval]) -> str:
        """Store the subscriptions' billing intervals for one run; returns the run key."""
        key = secrets.token_hex(8)
        rows = [
            [
                key,
                tenant_id,
                i.subscription_id,
                i.customer_id,
                i.start,
                i.end,
                (i.period or Period(i.start, i.end)).start,
                (i.period or Period(i.start, i.end)).end,
            ]
            for i in intervals
        ]
        for offset in range(0, len(rows), 100_000):
            self._client.insert(
                f"{self._db}.billing_intervals",
                rows[offset : offset + 100_000],
                column_names=[
                    "run_key",
                    "tenant_id",
                    "subscription_id",
                    "customer_id",
                    "start",
                    "end",
                    "period_start",
                    "period_end",
                ],
            )
        return key

    def interval_quantities(
        self,
        tenant_id: str,
        run_key: str,
        metric: Metric,
        extra_filters: Mapping[str, Sequence[str]],
        window_start: datetime,
        window_end: datetime,
        *,
        with_amounts: bool = False,
        staged: StagedRange | None = None,
    ) -> pl.DataFrame:
        """Quantities of one metric for every registered subscription, in one query.

        Columns: subscription_id, g0..gN (groupBy values), quantity (decimal text),
        events, and with `with_amounts` the per-event amounts in timestamp order.
        Events count only inside each subscription's own interval, which must lie in
        [window_start, window_end); `extra_filters` (the charge's) apply on top of the
        metric's filters. With `staged`, the events come from a run's staged copy,
        read only in the registered customers' range.
        """
        intervals = f"""
            SELECT subscription_id, customer_id, start, end,
                   toUnixTimestamp64Milli(period_end) - toUnixTimestamp64Milli(period_start)
                       AS period_ms
            FROM {self._db}.billing_intervals
            WHERE run_key = {{k:String}} AND tenant_id = {{t:String}}
        """
        sql = _aggregate_sql(
            self._db,
            metric,
            filter_sql(metric.filters, extra_filters),
            intervals,
            one_customer=False,
            with_amounts=with_amounts,
            staged=None if staged is None else staged.table,
        )
        parameters: dict[str, Any] = {
            "t": tenant_id,
            "m": metric.code,
            "s": window_start,
            "e": window_end,
            "k": run_key,
        }
        if staged is not None:
            parameters |= {"lo": staged.low, "hi": staged.high}
        table = self._client.query_arrow(sql, parameters=parameters)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        if metric.aggregation == Aggregation.WEIGHTED_SUM:
            frame = _with_weighted_quantities(frame)
        return frame

    def metered_quantities(
        self,
        tenant_id: str,
        requests: Sequence[UsageRequest],
        *,
        staged: StagedRange | None = None,
    ) -> dict[str, tuple[MeteredQuantity, ...]]:
        """Every request's metered quantities, by request key, with one query per
        query variant (charges reading the same metric with the same filters share one);
        `staged`: read a run's staged events (see `BillRunUsage`)."""
        if not requests:
            return {}
        run_key = self.register_intervals(
            tenant_id,
            [
                BillingInterval(r.key, r.customer_id, r.active.start, r.active.end, r.period)
                for r in requests
            ],
        )
        try:
            start = min(r.active.start for r in requests)
            end = max(r.active.end for r in requests)
            return _decoded(
                requests,
                lambda metric, filters, with_amounts: self.interval_quantities(
                    tenant_id,
                    run_key,
                    metric,
                    filters,
                    start,
                    end,
                    with_amounts=with_amounts,
                    staged=staged,
                ),
            )
        finally:
            self.drop_intervals(run_key)

    def bill_run_usage(self, tenant_id: str) -> BillRunUsage:
        """The usage reader of one bill run (close it, or use it as a context manager)."""
        return BillRunUsage(self, tenant_id)

    def stage_events(
        self, tenant_id: str, start: datetime, end: datetime, weighted: Iterable[str]
    ) -> str:
        """Copy the tenant's deduplicated events of [start, end) (and every earlier event
        of the `weighted` metrics: their opening level) into a new table sorted by
        (metric, customer_id, ts); returns its name. FINAL runs once here, and each
        chunk of a run then reads only its own customers' rows."""
        self._drop_stale_stages()
        name = f"{STAGED_PREFIX}{secrets.token_hex(8)}"
        self._client.command(
            f"""CREATE TABLE {self._db}.{name}
                ENGINE = MergeTree ORDER BY (metric, customer_id, ts)
                AS SELECT metric, customer_id, ts, event_id, value, properties
                FROM {self._db}.usage_events FINAL
                WHERE tenant_id = {{t:String}} AND ts < {{e:DateTime64(3, 'UTC')}}
                  AND (ts >= {{s:DateTime64(3, 'UTC')}} OR has({{w:Array(String)}}, metric))
                {_FINAL_SETTINGS}""",
            parameters={"t": tenant_id, "s": start, "e": end, "w": sorted(weighted)},
        )
        return name

    def drop_staged(self, name: str) -> None:
        if not name.startswith(STAGED_PREFIX):
            raise ValueError(f"{name!r} is not a staged events table")
        self._client.command(f"DROP TABLE IF EXISTS {self._db}.{name}")

    def _drop_stale_stages(self) -> None:
        """Drop what crashed runs left behind (a day old: no run lasts that long)."""
        rows = self._client.query(
            """SELECT name FROM system.tables
               WHERE database = {d:String} AND startsWith(name, {p:String})
                 AND metadata_modification_time < now() - INTERVAL 1 DAY""",
            parameters={"d": self._db, "p": STAGED_PREFIX},
        ).result_rows
        for (name,) in rows:
            self.drop_staged(str(name))

    def customer_metered_quantities(
        self, tenant_id: str, customer_id: str, requests: Sequence[UsageRequest]
    ) -> dict[str, tuple[MeteredQuantity, ...]]:
        """`metered_quantities` for requests of one customer, its intervals given inline
        (no scratch table): the usage read-out's question, answered as a bill run's."""
        if not requests:
            return {}
        intervals = [
            BillingInterval(r.key, customer_id, r.active.start, r.active.end, r.period)
            for r in requests
        ]
        return _decoded(
            requests,
            lambda metric, filters, with_amounts: self.customer_interval_quantities(
                tenant_id, customer_id, intervals, metric, filters, with_amounts=with_amounts
            ),
        )

    def charge_quantities(
        self,
        tenant_id: str,
        customer_id: str,
        charge: UsageCharge,
        active: Period,
        period: Period,
        ingested_through: datetime,
    ) -> dict[Group, Decimal]:
        """One customer's exact quantity per group of one charge over `active`, counting
        only events stored up to `ingested_through` (what an invoice could know then)."""
        return {
            group: quantity
            for _code, group, quantity in self.customer_usage(
                tenant_id,
                customer_id,
                [charge.metric],
                active.start,
                active.end,
                period=period,
                extra_filters=charge.filters,
                ingested_through=ingested_through,
            )
        }

    def drop_intervals(self, run_key: str) -> None:
        self._client.command(
            f"DELETE FROM {self._db}.billing_intervals WHERE run_key = {{k:String}}",
            parameters={"k": run_key},
        )

    def customers_with_late_events(
        self, tenant_id: str, before: datetime, ingested_after: datetime
    ) -> set[str]:
        """Customers with events timed before `before` but stored after `ingested_after`:
        the candidates for late usage (usually none, so a bill run pays one small query)."""
        rows = self._client.query(
            f"""SELECT DISTINCT customer_id FROM {self._db}.usage_events FINAL
                WHERE tenant_id = {{t:String}} AND ts < {{b:DateTime64(3, 'UTC')}}
                  AND ingested_at > {{a:DateTime64(6, 'UTC')}}
                {_FINAL_SETTINGS}""",
            parameters={"t": tenant_id, "b": before, "a": ingested_after},
        ).result_rows
        return {str(r[0]) for r in rows}


STAGED_PREFIX = "billing_events_"


@dataclass(frozen=True)
class StagedRange:
    """A staged events table and the customer range (external ids) a query reads."""

    table: str
    low: str
    high: str


@dataclass(frozen=True)
class _Stage:
    table: str
    start: datetime
    end: datetime
    weighted: frozenset[str]

    def covers(self, start: datetime, end: datetime, weighted: frozenset[str]) -> bool:
        return self.start <= start and end <= self.end and weighted <= self.weighted


class BillRunUsage:
    """The usage reader of one bill run, chunk after chunk.

    The first chunk stages the tenant's deduplicated events once (`stage_events`);
    each chunk's queries then read only its customers' range of that copy, so a run's
    ClickHouse work grows with its events, not with events × chunks. The bill run
    pages customers by external id, so a chunk's customers form one narrow range;
    any order stays correct (the join with the chunk's intervals decides), only
    slower. A chunk outside the staged window stages a wider copy.
    """

    def __init__(self, store: UsageStore, tenant_id: str) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._stage: _Stage | None = None

    def __enter__(self) -> BillRunUsage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metered_quantities(
        self, requests: Sequence[UsageRequest]
    ) -> dict[str, tuple[MeteredQuantity, ...]]:
        """`UsageStore.metered_quantities` for one chunk of the run."""
        if not requests:
            return {}
        start = min(r.active.start for r in requests)
        end = max(r.active.end for r in requests)
        stage = self._covering(start, end, _weighted_metrics(requests))
        staged = StagedRange(
            stage.table,
            min(r.customer_id for r in requests),
            max(r.customer_id for r in requests),
        )
        return self._store.metered_quantities(self._tenant_id, requests, staged=staged)

    def _covering(self, start: datetime, end: datetime, weighted: frozenset[str]) -> _Stage:
        old = self._stage
        if old is not None and old.covers(start, end, weighted):
            return old
        if old is not None:
            start, end = min(start, old.start), max(end, old.end)
            weighted |= old.weighted
        table = self._store.stage_events(self._tenant_id, start, end, weighted)
        self._stage = _Stage(table, start, end, weighted)
        if old is not None:
            self._store.drop_staged(old.table)
        return self._stage

    def close(self) -> None:
        if self._stage is not None:
            self._store.drop_staged(self._stage.table)
            self._stage = None


def _weighted_metrics(requests: Sequence[UsageRequest]) -> frozenset[str]:
    """The weighted_sum metrics the requests read (each plan's charges looked at once)."""
    seen: set[int] = set()
    codes: set[str] = set()
    for request in requests:
        if id(request.charges) in seen:
            continue
        seen.add(id(request.charges))
        codes.update(
            c.metric.code
            for c in request.charges
            if c.metric.aggregation == Aggregation.WEIGHTED_SUM
        )
    return frozenset(codes)


VariantFrame = Callable[[Metric, dict[str, tuple[str, ...]], bool], pl.DataFrame]
"""(metric, charge filters, with per-event amounts) → that variant's result frame."""


def _decoded(
    requests: Sequence[UsageRequest], query: VariantFrame
) -> dict[str, tuple[MeteredQuantity, ...]]:
    """The requests' quantities by key: one query per variant, decoded into quantities."""
    out: dict[str, list[MeteredQuantity]] = {}
    for variant, plan in variant_queries(requests).items():
        frame = query(plan.metric, dict(variant[1]), variant[2])
        decode_quantities(frame, plan.metric, plan.charges_by_key, out)
    return {key: tuple(rows) for key, rows in out.items()}
