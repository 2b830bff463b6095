"""Exact usage aggregates read from ClickHouse (the Aggregate stage's data source).

Every billing quantity is computed from `usage_events FINAL`, the deduplicated raw
events, never from the approximate rollup. Unique counts use uniqExact.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from rating.model import Aggregation, Group, Metric

ZERO = Decimal(0)


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
    subscription_id: str
    customer_id: str
    start: datetime
    end: datetime


def exact_decimal(value: object) -> Decimal:
    """A Decimal from ClickHouse's text or Decimal, without the storage scale's zeros."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


def _field_expr(field: str) -> str:
    if field == "value":
        return "coalesce(value, toDecimal128OrNull(properties['value'], 12))"
    return f"toDecimal128OrNull(properties[{_literal(field)}], 12)"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quantity_expr(metric: Metric) -> str:
    """The ClickHouse aggregate expression of a metric's quantity (exact)."""
    value = _field_expr(metric.field)
    match metric.aggregation:
        case Aggregation.COUNT:
            return "toDecimal128(count(), 12)"
        case Aggregation.SUM:
            return f"ifNull(sum({value}), toDecimal128(0, 12))"
        case Aggregation.MAX:
            return f"ifNull(max({value}), toDecimal128(0, 12))"
        case Aggregation.UNIQUE_COUNT:
            raw = (
                "toString(value)"
                if metric.field == "value"
                else f"properties[{_literal(metric.field)}]"
            )
            return f"toDecimal128(uniqExactIf({raw}, {raw} != ''), 12)"
        case Aggregation.LATEST:
            return f"ifNull(argMax({value}, (ts, event_id)), toDecimal128(0, 12))"
        case Aggregation.WEIGHTED_SUM:
            raise NotImplementedError("weighted_sum is computed by weighted_sum_quantities")
    raise ValueError(f"unknown aggregation {metric.aggregation}")


def filter_sql(filters: Mapping[str, Sequence[str]]) -> str:
    """`properties[k] IN (...)` for each filter, ANDed; 'true' when there are none."""
    parts = [
        f"properties[{_literal(key)}] IN ({', '.join(_literal(v) for v in values)})"
        for key, values in sorted(filters.items())
    ]
    return " AND ".join(parts) if parts else "1"


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
    ) -> list[tuple[str, Group, Decimal]]:
        """Exact (metric, group, quantity) of one customer over [start, end)."""
        results: list[tuple[str, Group, Decimal]] = []
        for metric in metrics:
            if metric.aggregation == Aggregation.WEIGHTED_SUM:
                continue
            group_cols = [f"properties[{_literal(g)}]" for g in metric.group_by]
            select_groups = "".join(f", {c} AS g{i}" for i, c in enumerate(group_cols))
            group_clause = "".join(f", g{i}" for i in range(len(group_cols)))
            sql = f"""
                SELECT {quantity_expr(metric)} AS quantity, count() AS events {select_groups}
                FROM {self._db}.usage_events FINAL
                WHERE tenant_id = {{t:String}} AND customer_id = {{c:String}}
                  AND metric = {{m:String}}
                  AND ts >= {{s:DateTime64(3, 'UTC')}} AND ts < {{e:DateTime64(3, 'UTC')}}
                  AND {filter_sql(metric.filters)}
                GROUP BY tuple() {group_clause}
                HAVING events > 0
            """
            rows = self._client.query(
                sql,
                parameters={
                    "t": tenant_id,
                    "c": customer_id,
                    "m": metric.code,
                    "s": start,
                    "e": end,
                },
            ).result_rows
            for row in rows:
                group = tuple(sorted(zip(metric.group_by, row[2:], strict=True)))
                results.append((metric.code, group, exact_decimal(row[0])))
        return results

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
             "rejectedAt": r[4].replace(tzinfo=UTC) if r[4].tzinfo is None else r[4]}
            for r in rows
        ]  # fmt: skip

    # -- bulk reads for bill runs ---------------------------------------------------

    def register_intervals(self, tenant_id: str, intervals: Sequence[BillingInterval]) -> str:
        """Store the subscriptions' billing intervals for one run; returns the run key."""
        key = secrets.token_hex(8)
        rows = [
            [key, tenant_id, i.subscription_id, i.customer_id, i.start, i.end] for i in intervals
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
    ) -> pl.DataFrame:
        """Quantities of one metric for every registered subscription, in one query.

        Columns: subscription_id, g0..gN (groupBy values), quantity (decimal text),
        events, and with `with_amounts` the per-event amounts in timestamp order.
        Events count only inside each subscription's own interval.
        """
        filters: dict[str, Sequence[str]] = {**metric.filters, **extra_filters}
        group_cols = [f"properties[{_literal(g)}]" for g in metric.group_by]
        select_groups = "".join(f", {c} AS g{i}" for i, c in enumerate(group_cols))
        group_clause = "".join(f", g{i}" for i in range(len(group_cols)))
        amounts = ""
        if with_amounts:
            value = _field_expr(metric.field)
            amounts = (
                f", arrayMap(x -> toString(x.3), arraySort(groupArray((ev.ts, ev.event_id, "
                f"ifNull({value}, toDecimal128(0, 12)))))) AS amounts"
            )
        sql = f"""
            SELECT i.subscription_id AS subscription_id {select_groups},
                   toString({quantity_expr(metric)}) AS quantity, count() AS events {amounts}
            FROM (
                SELECT * FROM {self._db}.usage_events FINAL
                WHERE tenant_id = {{t:String}} AND metric = {{m:String}}
                  AND ts >= {{s:DateTime64(3, 'UTC')}} AND ts < {{e:DateTime64(3, 'UTC')}}
                  AND {filter_sql(filters)}
            ) AS ev
            INNER JOIN (
                SELECT subscription_id, customer_id, start, end
                FROM {self._db}.billing_intervals WHERE run_key = {{k:String}}
            ) AS i ON ev.customer_id = i.customer_id
            WHERE ev.ts >= i.start AND ev.ts < i.end
            GROUP BY subscription_id {group_clause}
        """
        table = self._client.query_arrow(
            sql,
            parameters={
                "t": tenant_id,
                "m": metric.code,
                "s": window_start,
                "e": window_end,
                "k": run_key,
            },
        )
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def drop_intervals(self, run_key: str) -> None:
        self._client.command(
            f"DELETE FROM {self._db}.billing_intervals WHERE run_key = {{k:String}}",
            parameters={"k": run_key},
        )
