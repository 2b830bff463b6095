"""Helpers for the usage-store tests: events written through the production sink.

Every test gets its own tenant id, so tests share the session's chDB engine without
seeing each other's events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rating.model import Aggregation, Group, Metric, Period
from streams.schema import UsageEvent
from streams.sink import ClickHouseSink
from streams.usage_store import BillingInterval, StagedRange, UsageStore, exact_decimal
from tests.conftest import CH_DATABASE

# A 30-day billing period: day n is APRIL.start + n days.
APRIL = Period(datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC))
METRIC = "m"


def at(day: float, *, ms: int = 0) -> datetime:
    """A timestamp `day` days (plus `ms` milliseconds) after the start of April 2024."""
    return APRIL.start + timedelta(days=day, milliseconds=ms)


def new_tenant() -> str:
    return f"t_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Ev:
    """An event to send: id, timestamp, value and string properties."""

    id: str
    ts: datetime
    value: Decimal | None = None
    props: Mapping[str, str] = field(default_factory=dict)
    customer: str = "c1"
    metric: str = METRIC


def ev(
    event_id: str,
    day: float,
    value: str | int | None = None,
    /,
    *,
    customer: str = "c1",
    metric: str = METRIC,
    ms: int = 0,
    **props: str,
) -> Ev:
    return Ev(
        event_id,
        at(day, ms=ms),
        None if value is None else Decimal(value),
        props,
        customer,
        metric,
    )


Row = tuple[Decimal, int, tuple[Decimal, ...]]


@dataclass
class UsageEnv:
    """One tenant on the session's ClickHouse: send events, read quantities both ways."""

    store: UsageStore
    sink: ClickHouseSink
    client: Any
    tenant: str

    def send(self, *events: Ev) -> None:
        """One write through the production sink (one batch, one ingestion time)."""
        self.sink.write_events(
            [
                UsageEvent(
                    tenant_id=self.tenant,
                    event_id=e.id,
                    customer_id=e.customer,
                    metric=e.metric,
                    timestamp=e.ts,
                    value=e.value,
                    properties=dict(e.props),
                )
                for e in events
            ]
        )

    def usage(
        self,
        metric: Metric,
        start: datetime = APRIL.start,
        end: datetime = APRIL.end,
        *,
        customer: str = "c1",
        period: Period | None = None,
    ) -> dict[Group, Decimal]:
        """customer_usage of one metric, as {group: quantity}."""
        rows = self.store.customer_usage(self.tenant, customer, [metric], start, end, period=period)
        out: dict[Group, Decimal] = {}
        for code, group, quantity in rows:
            assert code == metric.code
            assert group not in out, f"group {group} returned twice"
            out[group] = quantity
        return out

    @contextmanager
    def run(self, intervals: Sequence[BillingInterval]) -> Iterator[str]:
        """A bill run's registered intervals (its run key), dropped afterwards."""
        key = self.store.register_intervals(self.tenant, intervals)
        try:
            yield key
        finally:
            self.store.drop_intervals(key)

    def read_bulk(
        self,
        run_key: str,
        metric: Metric,
        start: datetime = APRIL.start,
        end: datetime = APRIL.end,
        extra_filters: Mapping[str, Sequence[str]] | None = None,
        *,
        with_amounts: bool = False,
    ) -> dict[tuple[str, Group], Row]:
        """interval_quantities of a run: {(subscription, group): (quantity, events, amounts)}."""
        frame = self.store.interval_quantities(
            self.tenant, run_key, metric, extra_filters or {}, start, end, with_amounts=with_amounts
        )
        return _rows(frame, metric, with_amounts)

    def bulk(
        self,
        metric: Metric,
        intervals: Sequence[BillingInterval],
        extra_filters: Mapping[str, Sequence[str]] | None = None,
        *,
        with_amounts: bool = False,
    ) -> dict[tuple[str, Group], Row]:
        """interval_quantities for the given intervals, registered for this one query."""
        with self.run(intervals) as key:
            return self.read_bulk(
                key,
                metric,
                min(i.start for i in intervals),
                max(i.end for i in intervals),
                extra_filters,
                with_amounts=with_amounts,
            )

    def bulk_quantities(
        self,
        metric: Metric,
        start: datetime = APRIL.start,
        end: datetime = APRIL.end,
        *,
        customer: str = "c1",
        period: Period | None = None,
        extra_filters: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[Group, Decimal]:
        """interval_quantities of one subscription over [start, end), as {group: quantity}."""
        rows = self.bulk(
            metric, [BillingInterval("s1", customer, start, end, period)], extra_filters
        )
        return {group: quantity for (_, group), (quantity, _, _) in rows.items()}

    def staged_quantities(
        self,
        metric: Metric,
        start: datetime = APRIL.start,
        end: datetime = APRIL.end,
        *,
        customer: str = "c1",
        period: Period | None = None,
    ) -> dict[Group, Decimal]:
        """interval_quantities read from a bill run's staged copy of the events."""
        weighted = [metric.code] if metric.aggregation == Aggregation.WEIGHTED_SUM else []
        table = self.store.stage_events(self.tenant, start, end, weighted)
        try:
            with self.run([BillingInterval("s1", customer, start, end, period)]) as key:
                frame = self.store.interval_quantities(
                    self.tenant,
                    key,
                    metric,
                    {},
                    start,
                    end,
                    staged=StagedRange(table, customer, customer),
                )
        finally:
            self.store.drop_staged(table)
        rows = _rows(frame, metric, False)
        return {group: quantity for (_, group), (quantity, _, _) in rows.items()}

    def quantities(
        self,
        entry: str,
        metric: Metric,
        start: datetime = APRIL.start,
        end: datetime = APRIL.end,
        *,
        period: Period | None = None,
    ) -> dict[Group, Decimal]:
        """{group: quantity} through the named entry point."""
        if entry == "customer_usage":
            return self.usage(metric, start, end, period=period)
        if entry == "customer_interval_quantities":
            return self.inline_quantities(metric, start, end, period=period)
        if entry == "staged":
            return self.staged_quantities(metric, start, end, period=period)
        assert entry == "interval_quantities"
        return self.bulk_quantities(metric, start, end, period=period)

    def inline(
        self,
        metric: Metric,
        intervals: Sequence[BillingInterval],
        extra_filters: Mapping[str, Sequence[str]] | None = None,
        *,
        customer: str = "c1",
        with_amounts: bool = False,
    ) -> dict[tuple[str, Group], Row]:
        """customer_interval_quantities: {(interval key, group): (quantity, events, amounts)}."""
        frame = self.store.customer_interval_quantities(
            self.tenant, customer, intervals, metric, extra_filters or {}, with_amounts=with_amounts
        )
        return _rows(frame, metric, with_amounts)

    def inline_quantities(
        self,
        metric: Metric,
        start: datetime = APRIL.start,
        end: datetime = APRIL.end,
        *,
        customer: str = "c1",
        period: Period | None = None,
    ) -> dict[Group, Decimal]:
        """customer_interval_quantities of one interval over [start, end), as {group: quantity}."""
        rows = self.inline(
            metric, [BillingInterval("s1", customer, start, end, period)], customer=customer
        )
        return {group: quantity for (_, group), (quantity, _, _) in rows.items()}


def _rows(frame: Any, metric: Metric, with_amounts: bool) -> dict[tuple[str, Group], Row]:
    """{(interval key, group): (quantity, events, amounts)} of a bulk query's frame."""
    out: dict[tuple[str, Group], Row] = {}
    for row in frame.iter_rows(named=True):
        group: Group = tuple(
            sorted(
                zip(
                    metric.group_by,
                    [row[f"g{i}"] for i in range(len(metric.group_by))],
                    strict=True,
                )
            )
        )
        amounts = tuple(exact_decimal(a) for a in row["amounts"]) if with_amounts else ()
        key = (row["subscription_id"], group)
        assert key not in out, f"{key} returned twice"
        out[key] = (exact_decimal(row["quantity"]), int(row["events"]), amounts)
    return out


ENTRY_POINTS = [
    "customer_usage",
    "interval_quantities",
    "customer_interval_quantities",
    "staged",  # interval_quantities over a bill run's staged events
]


@pytest.fixture
def usage_env(clickhouse: Any) -> UsageEnv:
    return UsageEnv(
        UsageStore(clickhouse, CH_DATABASE),
        ClickHouseSink(clickhouse, CH_DATABASE),
        clickhouse,
        new_tenant(),
    )
