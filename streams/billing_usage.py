"""What a bill run asks of usage, and the decoding of query results into quantities.

A bill run asks for the metered quantities of many billing items at once
(`UsageRequest`: one subscription's charges over one period). `UsageStore` answers with
one ClickHouse query per query variant (`Variant`: metric, charge filters, per-event
amounts); this module turns each result frame into `MeteredQuantity` values with
column operations, parsing each distinct decimal text once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from rating import pricing
from rating.model import Group, MeteredQuantity, Metric, Period, UsageCharge

Variant = tuple[str, tuple[tuple[str, tuple[str, ...]], ...], bool]
"""What decides a charge's query: metric code, extra filters, per-event amounts."""

# ClickHouse prints Decimal256(12) with its scale; the quantities carry no storage zeros
# (5.000000000000 is 5, 1.500000000000 is 1.5), as `usage_store.exact_decimal` reads them.
_TRAILING_ZEROS = r"(\.[0-9]*?)0+$"
_BARE_POINT = r"\.$"


@dataclass(frozen=True)
class UsageRequest:
    """One billing item's question: its charges' quantities in its active interval.

    `key` identifies the item in the answer; `customer_id` is the customer's external
    id (as events carry it); weighted_sum divides by the whole `period`.
    """

    key: str
    customer_id: str
    active: Period
    period: Period
    charges: tuple[UsageCharge, ...]


def variant_of(charge: UsageCharge) -> Variant:
    """The query a charge's quantities come from: charges sharing it share one query."""
    return (
        charge.metric.code,
        tuple(sorted(charge.filters.items())),
        pricing.needs_event_amounts(charge.model, charge.properties),
    )


@dataclass
class VariantQuery:
    """One query variant of a bill run: its metric and, per request key, the charge ids
    whose quantities it yields."""

    metric: Metric
    charges_by_key: dict[str, list[str]]


def variant_queries(requests: Sequence[UsageRequest]) -> dict[Variant, VariantQuery]:
    """The distinct queries that answer the requests (each plan's charges grouped once)."""
    queries: dict[Variant, VariantQuery] = {}
    # Requests of one plan share its charges tuple: group its charges by variant once.
    grouped_by_plan: dict[int, list[tuple[Variant, Metric, list[str]]]] = {}
    for request in requests:
        grouped = grouped_by_plan.get(id(request.charges))
        if grouped is None:
            by_variant: dict[Variant, tuple[Metric, list[str]]] = {}
            for charge in request.charges:
                entry = by_variant.setdefault(variant_of(charge), (charge.metric, []))
                entry[1].append(charge.id)
            grouped = [(v, metric, ids) for v, (metric, ids) in by_variant.items()]
            grouped_by_plan[id(request.charges)] = grouped
        for variant, metric, ids in grouped:
            query = queries.get(variant)
            if query is None:
                query = queries[variant] = VariantQuery(metric, {})
            query.charges_by_key[request.key] = ids
    return queries


def _plain_decimals(column: pl.Series) -> pl.Series:
    """Decimal texts without trailing fractional zeros (and without a bare point)."""
    return column.str.replace(_TRAILING_ZEROS, "${1}").str.replace(_BARE_POINT, "")


def _parsed(texts: pl.Series) -> list[Decimal]:
    """The Decimals of a text column, each distinct text parsed once."""
    plain = _plain_decimals(texts)
    distinct = plain.unique()
    values = {text: Decimal(text) for text in distinct.to_list()}
    return [values[text] for text in plain.to_list()]


def decode_quantities(
    frame: pl.DataFrame,
    metric: Metric,
    charges_by_key: Mapping[str, Sequence[str]],
    out: dict[str, list[MeteredQuantity]],
) -> None:
    """Append each result row of one variant's query as a MeteredQuantity of every
    charge (`charges_by_key`: the item's charge ids of this variant) to `out`."""
    if frame.height == 0:
        return
    keys = frame["subscription_id"].to_list()
    quantities = _parsed(frame["quantity"])
    events = frame["events"].cast(pl.Int64).to_list()
    if metric.group_by:
        # Groups are sorted (property, value) pairs: sort the properties once.
        order = sorted(range(len(metric.group_by)), key=lambda i: metric.group_by[i])
        names = [metric.group_by[i] for i in order]
        columns = [frame[f"g{i}"].to_list() for i in order]
        groups: list[Group] = [
            tuple(zip(names, values, strict=True)) for values in zip(*columns, strict=True)
        ]
    else:
        groups = [()] * frame.height
    if "amounts" in frame.columns:
        lengths = frame["amounts"].list.len().to_list()
        flat = _parsed(frame["amounts"].explode().drop_nulls())
        amounts: list[tuple[Decimal, ...]] = []
        at = 0
        for length in lengths:
            amounts.append(tuple(flat[at : at + length]))
            at += length
    else:
        amounts = [()] * frame.height
    for n, key in enumerate(keys):
        charge_ids = charges_by_key.get(key)
        if not charge_ids:
            continue
        target = out.setdefault(key, [])
        for charge_id in charge_ids:
            target.append(
                MeteredQuantity(
                    charge_id=charge_id,
                    quantity=quantities[n],
                    group=groups[n],
                    event_count=events[n],
                    event_amounts=amounts[n],
                )
            )
