"""The bill run's phases, timed from outside while its own code runs unchanged.

`TimedUsageStore` times the ClickHouse calls; `timed_phases` wraps the bill run's
functions named in TIMED with timers for the duration of one run.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import polars as pl

from bench.common import Phases
from rating.model import Metric
from streams.usage_store import BillingInterval, StagedRange, UsageStore


class TimedUsageStore(UsageStore):
    """The usage store, timing its ClickHouse calls."""

    def __init__(self, client: Any, database: str, phases: Phases) -> None:
        super().__init__(client, database)
        self.phases = phases
        self.queries: list[tuple[str, bool, int, float]] = []

    def register_intervals(self, tenant_id: str, intervals: Sequence[BillingInterval]) -> str:
        with self.phases.time("ClickHouse: register intervals (insert)"):
            return super().register_intervals(tenant_id, intervals)

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
        started = time.perf_counter()
        frame = super().interval_quantities(
            tenant_id,
            run_key,
            metric,
            extra_filters,
            window_start,
            window_end,
            with_amounts=with_amounts,
            staged=staged,
        )
        seconds = time.perf_counter() - started
        self.phases.add("ClickHouse: quantity queries", seconds)
        label = metric.code + (" (filtered)" if extra_filters else "")
        self.queries.append((label, with_amounts, frame.height, seconds))
        return frame

    def stage_events(
        self, tenant_id: str, start: datetime, end: datetime, weighted: Iterable[str]
    ) -> str:
        with self.phases.time("ClickHouse: stage the run's events (FINAL, once)"):
            return super().stage_events(tenant_id, start, end, weighted)

    def drop_staged(self, name: str) -> None:
        # Outside "quantities (all)", like the staging: both are listed on their own.
        with self.phases.time("ClickHouse: drop the staged events"):
            super().drop_staged(name)

    def drop_intervals(self, run_key: str) -> None:
        with self.phases.time("ClickHouse: drop intervals"):
            super().drop_intervals(run_key)


# What is timed from outside: (module, attribute path, phase). The bill run's own code
# runs unchanged; each of these is replaced by a timing wrapper for the run only.
# Entries that do not resolve (the code moved on) are skipped; nested entries of one
# phase are counted once (the outermost call).
TIMED: list[tuple[str, str, str]] = [
    ("invoicing.billing.loading", "_page", "load subscriptions"),
    ("invoicing.billing.loading", "invoiced_keys", "load subscriptions"),
    ("streams.usage_store", "UsageStore.metered_quantities", "quantities (all)"),
    ("invoicing.tax.service", "TaxService.rate", "rating (pipeline)"),
    ("invoicing.billing.runner", "BillRunner._write", "ledger: write invoices"),
    ("invoicing.billing.runner", "update_run", "ledger: bill run progress updates"),
]


def _resolve(module_name: str, path: str) -> tuple[object, str, Any] | None:
    try:
        owner: object = importlib.import_module(module_name)
    except ImportError:
        return None
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return None
    # A method is taken from its own class (not inherited), a function from its module.
    found = vars(owner) if isinstance(owner, type) else owner.__dict__
    original = found.get(name)
    return None if original is None else (owner, name, original)


def _timing(phases: Phases, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    depth = {"n": 0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        depth["n"] += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            depth["n"] -= 1
            if depth["n"] == 0:
                phases.add(phase, time.perf_counter() - started)

    return timed


@contextmanager
def timed_phases(phases: Phases) -> Iterator[list[str]]:
    """Wrap the TIMED functions with timers while the block runs; yields what was wrapped."""
    restore: list[tuple[object, str, Any]] = []
    wrapped: list[str] = []
    try:
        for module_name, path, phase in TIMED:
            found = _resolve(module_name, path)
            if found is None:
                continue
            owner, name, original = found
            restore.append((owner, name, original))
            wrapped.append(f"{module_name}.{path}")
            setattr(owner, name, _timing(phases, phase, original))
        yield wrapped
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)
