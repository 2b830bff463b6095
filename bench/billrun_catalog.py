"""The bill-run benchmark's catalog, and its invoices recomputed from raw events.

5 metrics (count, sum, max, unique_count, latest) and 5 plans mixing the per_unit,
graduated, volume, package and percentage models. `expected_invoice` is the reference
the benchmark checks the bill run against: written independently of it, in plain
Python over the events, priced with rating.pricing directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rating import pricing
from rating.model import Aggregation, Metric, Period
from rating.money import round_money
from streams.schema import UsageEvent

OUTSIDE_SHARE = 0.03  # events outside the billed month: must not count

# -- the catalog -------------------------------------------------------------------

METRICS: list[dict[str, Any]] = [
    {"code": "api_calls", "name": "API calls", "aggregation": "count"},
    {"code": "payment_volume", "name": "Payment volume", "aggregation": "sum"},
    {"code": "peak_seats", "name": "Peak seats", "aggregation": "max"},
    {"code": "active_users", "name": "Active users", "aggregation": "unique_count",
     "field": "user"},
    {"code": "storage_gb", "name": "Storage (GB)", "aggregation": "latest"},
]  # fmt: skip

# The share of events of each metric (percent).
EVENT_MIX = {
    "api_calls": 40,
    "payment_volume": 20,
    "peak_seats": 10,
    "active_users": 20,
    "storage_gb": 10,
}


def _tiers(*tiers: tuple[str | None, str, str]) -> dict[str, Any]:
    return {"tiers": [{"upTo": u, "unitAmount": p, "flatAmount": f} for u, p, f in tiers]}


PLANS: list[dict[str, Any]] = [
    {
        "code": "starter", "name": "Starter", "baseFee": "19", "weight": 30,
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "0.25"},
             "includedQuantity": "3"},
            {"metric": "payment_volume", "model": "percentage", "properties": {"rate": "1.5"}},
            {"metric": "peak_seats", "model": "per_unit", "properties": {"unitAmount": "4"}},
            {"metric": "active_users", "model": "package",
             "properties": {"amount": "10", "packageSize": "5", "freeUnits": "2"}},
            {"metric": "storage_gb", "model": "per_unit", "properties": {"unitAmount": "0.023"}},
        ],
    },
    {
        "code": "growth", "name": "Growth", "baseFee": "49", "weight": 25,
        "charges": [
            {"metric": "api_calls", "model": "graduated",
             "properties": _tiers(("5", "0", "0"), ("20", "0.2", "0"), (None, "0.1", "1"))},
            {"metric": "payment_volume", "model": "percentage",
             "properties": {"rate": "2.9", "fixedAmount": "0.30"}},
            {"metric": "peak_seats", "model": "volume",
             "properties": _tiers(("10", "6", "0"), ("40", "5", "0"), (None, "4", "25"))},
            {"metric": "active_users", "model": "per_unit", "properties": {"unitAmount": "3"},
             "includedQuantity": "2"},
            {"metric": "storage_gb", "model": "graduated",
             "properties": _tiers(("100", "0", "0"), ("500", "0.02", "0"), (None, "0.015", "0"))},
        ],
    },
    {
        "code": "scale", "name": "Scale", "baseFee": "199", "weight": 20,
        "charges": [
            {"metric": "api_calls", "model": "volume", "filters": {"region": ["eu", "us"]},
             "properties": _tiers(("8", "0.5", "0"), (None, "0.35", "2"))},
            {"metric": "payment_volume", "model": "graduated",
             "properties": _tiers(("1000", "0.02", "0"), (None, "0.012", "0"))},
            {"metric": "peak_seats", "model": "package",
             "properties": {"amount": "40", "packageSize": "10", "freeUnits": "0"}},
            {"metric": "active_users", "model": "graduated",
             "properties": _tiers(("3", "0", "5"), (None, "2.5", "0"))},
            {"metric": "storage_gb", "model": "volume",
             "properties": _tiers(("250", "0.03", "0"), (None, "0.02", "0"))},
        ],
    },
    {
        "code": "payments", "name": "Payments", "baseFee": "9", "weight": 15,
        "charges": [
            {"metric": "api_calls", "model": "package",
             "properties": {"amount": "1", "packageSize": "10", "freeUnits": "0"}},
            {"metric": "payment_volume", "model": "percentage",
             "properties": {"rate": "2.5", "freeUnitsPerTotalAggregation": "100"}},
            {"metric": "peak_seats", "model": "per_unit", "properties": {"unitAmount": "2"},
             "includedQuantity": "5"},
            {"metric": "active_users", "model": "volume",
             "properties": _tiers(("5", "1", "0"), (None, "0.8", "0"))},
            {"metric": "storage_gb", "model": "package",
             "properties": {"amount": "5", "packageSize": "100", "freeUnits": "50"}},
        ],
    },
    {
        "code": "enterprise", "name": "Enterprise", "baseFee": "999", "weight": 10,
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "0.05"},
             "includedQuantity": "10"},
            {"metric": "payment_volume", "model": "percentage",
             "properties": {"rate": "1", "perTransactionMin": "0.05",
                            "perTransactionMax": "5"}},
            {"metric": "peak_seats", "model": "graduated",
             "properties": _tiers(("20", "3", "0"), (None, "2", "0"))},
            {"metric": "active_users", "model": "per_unit", "properties": {"unitAmount": "1.5"}},
            {"metric": "storage_gb", "model": "per_unit", "properties": {"unitAmount": "0.01"},
             "includedQuantity": "100"},
        ],
    },
]  # fmt: skip


def last_month(now: datetime) -> Period:
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (this_month - timedelta(days=1)).replace(day=1)
    return Period(start, this_month)


def external_id(index: int) -> str:
    return f"cust_{index:07d}"


# -- the expected invoices ------------------------------------------------------------------


def _metric_domain(spec: Mapping[str, Any]) -> Metric:
    return Metric(
        code=spec["code"],
        name=spec["name"],
        aggregation=Aggregation(spec["aggregation"]),
        field=spec.get("field", "value"),
    )


def expected_invoice(
    plan: Mapping[str, Any], events: Sequence[UsageEvent], period: Period
) -> dict[str, str]:
    """{"base", "#<charge position>", "total": amount} recomputed from the raw events.

    Written independently of the bill run: the aggregation is done here in Python over
    the events that count (inside the period, first copy of each id, passing the
    charge's filters), then rating.pricing prices it and the line rounds once.
    """
    metrics = {m["code"]: _metric_domain(m) for m in METRICS}
    inside = [e for e in events if period.start <= e.timestamp < period.end]
    lines: dict[str, str] = {"base": str(round_money(Decimal(plan["baseFee"]), "USD"))}
    total = Decimal(plan["baseFee"])
    for position, charge in enumerate(plan["charges"]):
        metric = metrics[charge["metric"]]
        rows = [
            e
            for e in inside
            if e.metric == metric.code
            and all(e.properties.get(k) in v for k, v in (charge.get("filters") or {}).items())
        ]
        quantity = _aggregate(metric, rows)
        billable = max(quantity - Decimal(charge.get("includedQuantity") or 0), Decimal(0))
        needs = pricing.needs_event_amounts(charge["model"], charge["properties"])
        amounts = (
            tuple(
                e.value or Decimal(0) for e in sorted(rows, key=lambda e: (e.timestamp, e.event_id))
            )
            if needs
            else ()
        )
        priced = pricing.price(
            charge["model"],
            charge["properties"],
            pricing.ChargeUsage(quantity=billable, event_count=len(rows), event_amounts=amounts),
        )
        amount = round_money(priced.amount, "USD")
        lines[f"#{position}"] = str(amount)
        total += amount
    lines["total"] = str(total)
    return lines


def _aggregate(metric: Metric, rows: Sequence[UsageEvent]) -> Decimal:
    match metric.aggregation.value:
        case "count":
            return Decimal(len(rows))
        case "sum":
            return sum((e.value or Decimal(0) for e in rows), Decimal(0))
        case "max":
            return max((e.value for e in rows if e.value is not None), default=Decimal(0))
        case "unique_count":
            return Decimal(len({e.properties[metric.field] for e in rows}))
        case "latest":
            if not rows:
                return Decimal(0)
            last = max(rows, key=lambda e: (e.timestamp, e.event_id))
            return last.value or Decimal(0)
    raise ValueError(metric.aggregation)
