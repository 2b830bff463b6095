"""What each page shows, read from the domain and shaped for its template and charts.

Charts get numbers (Chart.js plots floats); every table beside them shows the exact
decimal strings, rounded once to the currency's minor unit as the API does."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from api.ports import ApiRuntime
from invoicing import analytics, operations
from rating.money import ZERO, format_money

log = logging.getLogger(__name__)

NO_USAGE_STORE = (
    "Real-time usage is not available here: this server runs without the usage store "
    "(ClickHouse). The other pages (invoices, revenue, bill runs) read the ledger and work."
)
USAGE_STORE_DOWN = "The usage store did not answer; the figures will come back on the next refresh."

# The windows the usage page offers, in hours.
USAGE_WINDOWS = {24: "Last 24 hours", 24 * 7: "Last 7 days", 24 * 30: "Last 30 days"}


@dataclass(frozen=True)
class Unavailable:
    message: str


def has_usage_store(runtime: ApiRuntime) -> bool:
    return getattr(runtime, "usage", None) is not None


def usage_series(runtime: ApiRuntime, tenant_id: str, hours: int) -> dict[str, Any]:
    """Events per metric and hour over the last `hours` (the real-time rollup), every
    hour present (0 where none), or `available: false` with the reason."""
    now = runtime.clock.now().astimezone(UTC)
    if not has_usage_store(runtime):
        return {"available": False, "message": NO_USAGE_STORE, "refreshedAt": now.isoformat()}
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    try:
        rows = runtime.usage.hourly_rollup(tenant_id, start, end)
    except Exception:  # a page that says so beats a 500 while ClickHouse restarts
        log.exception("usage store read failed for the dashboard")
        return {"available": False, "message": USAGE_STORE_DOWN, "refreshedAt": now.isoformat()}
    slots = [start + timedelta(hours=i) for i in range(hours)]
    index = {slot: i for i, slot in enumerate(slots)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(slots))
    for row in rows:
        hour = row["hour"].replace(tzinfo=UTC)
        if hour in index:
            counts[row["metric"]][index[hour]] += int(row["events"])
    series = [
        {"metric": metric, "counts": values, "total": sum(values), "lastHour": values[-1]}
        for metric, values in sorted(counts.items())
    ]
    return {
        "available": True,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "labels": [slot.strftime("%m-%d %H:00") for slot in slots],
        "series": series,
        "refreshedAt": now.isoformat(),
    }


def rejected_events(runtime: ApiRuntime, tenant_id: str, limit: int) -> list[Any] | Unavailable:
    if not has_usage_store(runtime):
        return Unavailable(NO_USAGE_STORE.replace("Real-time usage", "The rejected events"))
    try:
        return list(runtime.usage.rejected_events(tenant_id, limit))
    except Exception:
        log.exception("usage store read failed for the dashboard")
        return Unavailable(USAGE_STORE_DOWN)


def revenue(session: Session, tenant_id: str, currency: str, now: datetime) -> dict[str, Any]:
    """A year of months of one currency: MRR, gross revenue, collections, invoiced usage
    per metric, and what is overdue."""
    scope = analytics.Scope(tenant_id=tenant_id, currency=currency)
    win = analytics.window(None, None, now)
    months = [str(m) for m in win.months]
    mrr = {f.month: f for f in analytics.mrr(session, scope, win)}
    gross = {f.month: f for f in analytics.gross_revenue(session, scope, win)}
    collected = {f.month: f for f in analytics.invoice_collections(session, scope, win)}
    usage: dict[str, dict[str, Any]] = defaultdict(dict)
    for f in analytics.invoiced_usage(session, scope, win):
        usage[f.metric or "—"][f.month] = f.amount
    overdue = analytics.overdue_balances(session, scope, now, None)

    def amount(found: Any) -> str:
        return format_money(found.amount if found else ZERO, currency)

    rows = [
        {
            "month": m,
            "mrr": amount(mrr.get(m)),
            "subscriptions": mrr[m].count if m in mrr else 0,
            "gross": amount(gross.get(m)),
            "invoices": gross[m].count if m in gross else 0,
            "collected": amount(collected.get(m)),
        }
        for m in months
    ]
    usage_rows = [
        {"metric": metric, "amounts": [format_money(by.get(m, ZERO), currency) for m in months]}
        for metric, by in sorted(usage.items())
    ]
    return {
        "months": months,
        "rows": rows,
        "usage": usage_rows,
        "overdue": [b for b in overdue if b.currency == currency],
        "chart": {
            "labels": months,
            "datasets": [
                {"label": "Gross revenue", "type": "bar", "data": [r["gross"] for r in rows]},
                {"label": "Collections", "type": "bar", "data": [r["collected"] for r in rows]},
                {"label": "MRR", "type": "line", "data": [r["mrr"] for r in rows]},
            ],
        },
        "usageChart": {
            "labels": months,
            "datasets": [
                {"label": u["metric"], "type": "bar", "data": u["amounts"]} for u in usage_rows
            ],
        },
    }


def top_customers(session: Session, tenant_id: str, currency: str) -> dict[str, Any]:
    found = operations.top_customers(session, tenant_id, currency, limit=10)
    return {
        "customers": found,
        "chart": {
            "labels": [c.name or c.external_id for c in found],
            "datasets": [
                {
                    "label": f"Invoiced ({currency})",
                    "type": "bar",
                    "data": [format_money(c.invoiced, currency) for c in found],
                }
            ],
        },
    }


def pick_currency(
    session: Session, tenant_id: str, asked: str | None
) -> tuple[str | None, list[str]]:
    """The currency a money page shows (the asked one if invoiced in, else the most
    used), and the choices."""
    choices = operations.invoiced_currencies(session, tenant_id)
    if asked and asked.upper() in choices:
        return asked.upper(), choices
    return (choices[0] if choices else None), choices
