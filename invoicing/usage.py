"""The usage read-out: a customer's exact usage over a window and what it costs.

The window is clipped to each subscription's active time and cut into that
subscription's billing periods. Each period's part is measured with the bill run's own
query (one customer's intervals given inline: `customer_metered_quantities`, the SQL
of `interval_quantities`), with the event counts and per-event amounts the charges'
models need, and priced by the bill run's rating stages for that period. So for a
window that is one billing period the amounts are that invoice's usage lines; for any
other window they are, per period, what the period's invoice says for the usage inside
the window, summed. The rules are written down in docs/api-choices.md (Usage read-out).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, InvalidInput
from invoicing.catalog import get_customer, metrics_by_code, subscription_domain
from invoicing.models import CustomerRow, SubscriptionRow
from rating.context import BillingContext, RolloverBucket
from rating.model import (
    Aggregation,
    Group,
    Interval,
    InvoiceLine,
    LineType,
    MeteredQuantity,
    Metric,
    Period,
    Subscription,
)
from rating.money import EXACT, ZERO, format_decimal, format_money, ratio
from rating.periods import days, next_period, period_containing
from rating.pipeline import rate_until_tax
from rating.pricing import InvalidChargeUsage
from rating.rounding import rounded_usage
from streams.billing_usage import UsageRequest
from streams.usage_store import QUANTITY_PLACES, UsageStore

# The instants a window may name: ClickHouse's DateTime64(3) holds 1900-2299, events
# are accepted for 2000-2100; this range brackets every event with room to spare.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# Aggregations whose quantity over several periods is the sum of the periods' own
# (weighted_sum: the level-periods held). The others (max, latest, unique_count) are
# read over the whole window at once: the largest value, the last one, distinct values.
_ADDITIVE = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.WEIGHTED_SUM})
# Aggregations that grow with time and are projected to the period's end.
_GROWING = frozenset({Aggregation.COUNT, Aggregation.SUM})


@dataclass(frozen=True)
class _Slice:
    """One billing period of a subscription and the part of it the window measures."""

    key: str
    subscription: Subscription
    period: Period
    measured: Period


@dataclass(frozen=True)
class _Projection:
    """Days of the period the subscription is active, and days of it already begun."""

    total: int
    elapsed: int


@dataclass
class _Row:
    metric: str
    group: Group
    quantity: Decimal
    amount: Decimal


def check_window(start: datetime | None, end: datetime | None) -> None:
    """Refuse instants outside EARLIEST..LATEST, and a `to` that is not after `from`."""
    bounds = f"between {_ts(EARLIEST)} and {_ts(LATEST)}"
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise InvalidInput(
                f"'{name}' must be {bounds} (got {_ts(value)})",
                details=[{"field": name, "message": f"must be {bounds}"}],
            )
    if start is not None and end is not None and end <= start:
        raise InvalidInput(
            f"'to' ({_ts(end)}) must be after 'from' ({_ts(start)})",
            details=[{"field": "to", "message": "must be after 'from'"}],
        )


def customer_usage(
    sessions: sessionmaker[Session],
    usage: UsageStore,
    tenant_id: str,
    external_id: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Exact usage and its price over [start, end); a bound left out is the current
    billing period's (of the subscription active at `now`, else the calendar month)."""
    check_window(start, end)
    customer_currency, metrics, subscriptions = customer_subscriptions(
        sessions, tenant_id, external_id
    )
    current = active_at(subscriptions, now)
    default = period_containing(
        current.plan.interval if current else Interval.MONTHLY, now, customer_zone(subscriptions)
    )
    window = Period(start or default.start, end or default.end)
    if window.end <= window.start:
        # Only one bound was given; the other is the current period's.
        given, name = (start, "from") if end is None else (end, "to")
        raise InvalidInput(
            f"'{name}' ({_ts(given or now)}) leaves no time before or after the current "
            f"billing period ({_ts(default.start)} to {_ts(default.end)}); "
            "give both 'from' and 'to'",
            details=[{"field": name, "message": "outside the current billing period"}],
        )
    return _readout(
        usage, tenant_id, external_id, customer_currency, metrics, subscriptions, window, now
    )


def projected_usage(
    sessions: sessionmaker[Session],
    usage: UsageStore,
    tenant_id: str,
    external_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The current billing period's usage and price, projected to the period's end."""
    customer_currency, metrics, subscriptions = customer_subscriptions(
        sessions, tenant_id, external_id
    )
    current = active_at(subscriptions, now)
    window = period_containing(
        current.plan.interval if current else Interval.MONTHLY, now, customer_zone(subscriptions)
    )
    return _readout(
        usage,
        tenant_id,
        external_id,
        customer_currency,
        metrics,
        subscriptions,
        window,
        now,
        project=True,
    )


def customer_subscriptions(
    sessions: sessionmaker[Session], tenant_id: str, external_id: str
) -> tuple[str, dict[str, Metric], list[Subscription]]:
    """The customer's currency, the tenant's metrics and the customer's subscriptions,
    oldest first (NotFound: no such customer)."""
    with sessions() as session:
        customer = get_customer(session, tenant_id, external_id)
        metrics = metrics_by_code(session, tenant_id)
        rows = _subscription_rows(session, tenant_id, SubscriptionRow.customer_id == customer.id)
        return customer.currency, metrics, [subscription_domain(r, metrics) for r in rows]


def subscriptions_by_customer(
    sessions: sessionmaker[Session], tenant_id: str, external_ids: set[str]
) -> dict[str, list[Subscription]]:
    """The subscriptions of many customers (by external id), oldest first, in one query."""
    if not external_ids:
        return {}
    with sessions() as session:
        metrics = metrics_by_code(session, tenant_id)
        rows = _subscription_rows(
            session, tenant_id, CustomerRow.external_id.in_(sorted(external_ids))
        )
        out: dict[str, list[Subscription]] = {}
        for row in rows:
            subscription = subscription_domain(row, metrics)
            out.setdefault(subscription.customer.external_id, []).append(subscription)
        return out


def _subscription_rows(
    session: Session, tenant_id: str, which: ColumnElement[bool]
) -> Sequence[SubscriptionRow]:
    """The tenant's subscriptions matching `which` (on them or their customer), oldest first."""
    return (
        session.execute(
            select(SubscriptionRow)
            .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
            .where(SubscriptionRow.tenant_id == tenant_id, which)
            .order_by(SubscriptionRow.start_date, SubscriptionRow.id)
        )
        .unique()
        .scalars()
        .all()
    )


SUBSCRIPTIONS_TTL = 5.0  # seconds the stream worker keeps a customer's subscriptions
SUBSCRIPTIONS_CACHED = 200_000  # customers kept at most (then the cache starts over)


class SubscriptionCache:
    """The stream worker's view of its customers' subscriptions, kept SUBSCRIPTIONS_TTL
    seconds: a batch of 20,000 events of 1,000 customers would otherwise load and decode
    1,000 subscriptions with their plans each time. A new or changed subscription is
    seen within that time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._held: dict[tuple[str, str], tuple[float, list[Subscription]]] = {}

    def of(self, tenant_id: str, customers: set[str]) -> dict[str, list[Subscription]]:
        """The customers' subscriptions (by external id), oldest first."""
        clock = time.monotonic()
        out: dict[str, list[Subscription]] = {}
        stale: set[str] = set()
        for customer in customers:
            cached = self._held.get((tenant_id, customer))
            if cached is not None and clock - cached[0] < SUBSCRIPTIONS_TTL:
                out[customer] = cached[1]
            else:
                stale.add(customer)
        if stale:
            loaded = subscriptions_by_customer(self._sessions, tenant_id, stale)
            if len(self._held) > SUBSCRIPTIONS_CACHED:
                self._held.clear()
            for customer in stale:
                held = loaded.get(customer, [])
                self._held[(tenant_id, customer)] = (clock, held)
                out[customer] = held
        return out


def customer_zone(subscriptions: Sequence[Subscription]) -> tzinfo:
    """The zone of the customer the subscriptions belong to (UTC when it has none: its
    read-outs are empty, only their dates show)."""
    return subscriptions[0].customer.zone if subscriptions else UTC


def active_at(subscriptions: Sequence[Subscription], instant: datetime) -> Subscription | None:
    """The latest-starting subscription active at `instant`."""
    active = [s for s in subscriptions if s.start <= instant and (s.end is None or s.end > instant)]
    return active[-1] if active else None


def _readout(
    usage: UsageStore,
    tenant_id: str,
    external_id: str,
    customer_currency: str,
    metrics: dict[str, Metric],
    subscriptions: Sequence[Subscription],
    window: Period,
    now: datetime,
    *,
    project: bool = False,
) -> dict[str, Any]:
    # Sums of quantities are exact: the default context would round them at 28 digits.
    with localcontext(EXACT):
        return _exact_readout(
            usage, tenant_id, external_id, customer_currency, metrics, subscriptions, window, now,
            project=project,
        )  # fmt: skip


def _exact_readout(
    usage: UsageStore,
    tenant_id: str,
    external_id: str,
    customer_currency: str,
    metrics: dict[str, Metric],
    subscriptions: Sequence[Subscription],
    window: Period,
    now: datetime,
    *,
    project: bool = False,
) -> dict[str, Any]:
    overlapping = [s for s in subscriptions if window.overlap(s.start, s.end) is not None]
    if not overlapping:
        # Nothing to price: the metered quantities alone, at no cost.
        quantities = usage.customer_usage(
            tenant_id, external_id, metrics.values(), window.start, window.end
        )
        items = [
            _item(code, group, metrics[code].rounded(q), ZERO, customer_currency)
            for code, group, q in quantities
        ]
        return _body(external_id, window, customer_currency, items, ZERO)
    # One currency per read-out: the current subscription's (else the latest one's).
    lead = active_at(overlapping, now) or overlapping[-1]
    currency = lead.plan.currency
    priced = [s for s in overlapping if s.plan.currency == currency]
    slices: list[_Slice] = []
    wholes: dict[str, Period] = {}
    for subscription in priced:
        clipped = _clip(window, subscription, now)
        if clipped is None:
            continue
        wholes[subscription.id] = clipped
        slices.extend(_slices(subscription, clipped))
    metered = _measure(usage, tenant_id, external_id, slices, wholes)
    rows: dict[tuple[str, str | None, Group], _Row] = {}
    for piece in slices:
        used = metered.get(piece.key, [])
        projection = _projection(piece, now) if project else None
        if projection is not None:
            used = [_project(m, piece.subscription, projection) for m in used]
        # Quantities as the period's invoice has them: rounded by their metrics after
        # the projection (the period's whole quantity is what its invoice rounds).
        charges = piece.subscription.plan.charges
        used = list(rounded_usage(charges, used))
        whole = {
            (m.charge_id, m.group): m.quantity
            for m in rounded_usage(charges, metered.get(_whole_key(piece.subscription.id), []))
        }
        for line in _usage_lines(piece, used):
            key = (piece.subscription.id, line.charge_id, line.group)
            row = rows.get(key)
            if row is None:
                row = rows[key] = _Row(line.metric or "", line.group, ZERO, ZERO)
            row.amount += line.amount
            row.quantity = _quantity(piece, line.charge_id, line.group, row, used, whole)
    # A capped charge's rows say its cap, and whether its groups together reached it.
    caps = {(s.id, c.id): c.hard_cap for s in priced for c in s.plan.charges if c.hard_cap}
    used_by_charge: dict[tuple[str, str | None], Decimal] = {}
    for (sub_id, charge_id, _), row in rows.items():
        charge_key = (sub_id, charge_id)
        used_by_charge[charge_key] = used_by_charge.get(charge_key, ZERO) + row.quantity
    items = []
    for (sub_id, charge_id, _), r in rows.items():
        item = _item(r.metric, r.group, r.quantity, r.amount, currency)
        cap = caps.get((sub_id, charge_id or ""))
        if cap is not None:
            item["cap"] = format_decimal(cap)
            item["blocked"] = used_by_charge[(sub_id, charge_id)] >= cap
        items.append(item)
    total = sum((r.amount for r in rows.values()), ZERO)
    return _body(external_id, window, currency, items, total)


def period_usage_lines(
    usage: UsageStore, tenant_id: str, subscription: Subscription, period: Period
) -> tuple[InvoiceLine, ...]:
    """The usage lines of the subscription's invoice for `period` with the usage stored
    so far: what the read-out shows for that period, line by line (progressive billing)."""
    active = period.overlap(subscription.start, subscription.end)
    if active is None:
        return ()
    piece = _Slice(f"{subscription.id}|{period.start.isoformat()}", subscription, period, active)
    external_id = subscription.customer.external_id
    with localcontext(EXACT):
        metered = _measure(usage, tenant_id, external_id, [piece], {})
        return tuple(_usage_lines(piece, metered.get(piece.key, [])))


def periods_usage_lines(
    usage: UsageStore,
    tenant_id: str,
    pieces: Sequence[tuple[Subscription, Period]],
    rollover: Mapping[str, Mapping[str, tuple[RolloverBucket, ...]]] | None = None,
) -> dict[str, tuple[InvoiceLine, ...]]:
    """`period_usage_lines` of many subscriptions (by id) with one query per metric
    variant, as a bill run measures a chunk; one that cannot be priced is left out.
    `rollover`: the subscriptions' unconsumed rollover buckets (by subscription, then
    charge), so the lines are those the period's invoice will have."""
    slices = []
    for subscription, period in pieces:
        active = period.overlap(subscription.start, subscription.end)
        if active is not None:
            key = f"{subscription.id}|{period.start.isoformat()}"
            slices.append(_Slice(key, subscription, period, active))
    if not slices:
        return {}
    requests = [
        UsageRequest(
            s.key, s.subscription.customer.external_id, s.measured, s.period,
            s.subscription.plan.charges,
        )
        for s in slices
    ]  # fmt: skip
    out: dict[str, tuple[InvoiceLine, ...]] = {}
    with localcontext(EXACT):
        metered = usage.metered_quantities(tenant_id, requests)
        for piece in slices:
            try:
                carried = (rollover or {}).get(piece.subscription.id)
                used = metered.get(piece.key, ())
                out[piece.subscription.id] = tuple(_usage_lines(piece, used, carried))
            except Conflict:
                continue  # unpriceable usage: the bill run reports it, nothing bills here
    return out


def _clip(window: Period, subscription: Subscription, now: datetime) -> Period | None:
    """The window within the subscription's active time, up to the end of its current
    billing period: later periods have not begun, and nothing is used or due in them yet."""
    horizon = period_containing(subscription.plan.interval, now, subscription.customer.zone).end
    if horizon <= window.start:
        return None
    return Period(window.start, min(window.end, horizon)).overlap(
        subscription.start, subscription.end
    )


def _slices(subscription: Subscription, clipped: Period) -> Iterator[_Slice]:
    zone = subscription.customer.zone
    period = period_containing(subscription.plan.interval, clipped.start, zone)
    while period.start < clipped.end:
        measured = period.overlap(clipped.start, clipped.end)
        if measured is not None:
            yield _Slice(
                f"{subscription.id}|{period.start.isoformat()}", subscription, period, measured
            )
        period = next_period(subscription.plan.interval, period, zone)


def _whole_key(subscription_id: str) -> str:
    """The key of a subscription's whole clipped window among the measured intervals."""
    return f"{subscription_id}|window"


def _measure(
    usage: UsageStore,
    tenant_id: str,
    external_id: str,
    slices: Sequence[_Slice],
    wholes: dict[str, Period],
) -> dict[str, list[MeteredQuantity]]:
    """Every slice's metered quantities, and each subscription's over its whole clipped
    window, with one query per metric variant as the bill run does."""
    if not slices:
        return {}
    plans = {s.subscription.id: s.subscription.plan for s in slices}
    requests = [
        UsageRequest(s.key, external_id, s.measured, s.period, s.subscription.plan.charges)
        for s in slices
    ] + [
        # The whole clipped window, for the aggregations that are not a sum of periods.
        UsageRequest(_whole_key(sid), external_id, whole, whole, plans[sid].charges)
        for sid, whole in wholes.items()
    ]
    return {
        key: list(rows)
        for key, rows in usage.customer_metered_quantities(tenant_id, external_id, requests).items()
    }


def _usage_lines(
    piece: _Slice,
    used: Sequence[MeteredQuantity],
    rollover_in: Mapping[str, tuple[RolloverBucket, ...]] | None = None,
) -> Iterator[InvoiceLine]:
    """The usage-fee lines the period's invoice has for this usage (stages 1-7: the
    amounts of usage lines are final after Rate; later stages only discount and tax)."""
    context = BillingContext(
        subscription=piece.subscription,
        period=piece.period,
        usage=tuple(used),
        rollover_in=rollover_in or {},
    )
    try:
        state = rate_until_tax(context)
    except InvalidChargeUsage as exc:
        raise Conflict(
            f"the usage from {_ts(piece.measured.start)} to {_ts(piece.measured.end)} "
            f"cannot be priced (the bill run would fail on it too): {exc}",
            code="unpriceable_usage",
        ) from None
    return (line for line in state.lines if line.type == LineType.USAGE_FEE)


def _quantity(
    piece: _Slice,
    charge_id: str | None,
    group: Group,
    row: _Row,
    used: Sequence[MeteredQuantity],
    whole: dict[tuple[str, Group], Decimal],
) -> Decimal:
    """The row's quantity after this slice: summed over periods for additive
    aggregations, else the whole window's (every event counts, caps do not apply)."""
    charge = next(c for c in piece.subscription.plan.charges if c.id == charge_id)
    if charge.metric.aggregation not in _ADDITIVE:
        return whole.get((charge.id, group), ZERO)
    here = next((m.quantity for m in used if m.charge_id == charge_id and m.group == group), ZERO)
    return row.quantity + here


def _projection(piece: _Slice, now: datetime) -> _Projection | None:
    """The current period's days (active) and days begun, when it is running at `now`."""
    measured = piece.measured
    if not measured.start < now < measured.end:
        return None
    zone = piece.subscription.customer.zone
    total, elapsed = days(measured.start, measured.end, zone), days(measured.start, now, zone)
    return _Projection(int(total), int(elapsed))


def _project(
    usage: MeteredQuantity, subscription: Subscription, projection: _Projection
) -> MeteredQuantity:
    """Usage so far, extrapolated by days to the end of the period (as Lago projects:
    a started day counts as a day). The transactions of a per-event charge go on as
    observed: the same amounts, in the same order, repeated."""
    charge = next(c for c in subscription.plan.charges if c.id == usage.charge_id)
    if charge.metric.aggregation not in _GROWING:
        return usage
    total, elapsed = projection.total, projection.elapsed
    # Half up, in integers: whole transactions.
    events = (2 * usage.event_count * total + elapsed) // (2 * elapsed)
    if usage.event_amounts:
        repeats, rest = divmod(events, len(usage.event_amounts))
        amounts = usage.event_amounts * repeats + usage.event_amounts[:rest]
        with localcontext(EXACT):  # a sum of 38-digit amounts must not round at 28
            quantity = (
                sum(amounts, ZERO)
                if charge.metric.aggregation == Aggregation.SUM
                else Decimal(events)
            )
        return replace(usage, quantity=quantity, event_count=events, event_amounts=amounts)
    with localcontext(EXACT):
        scaled = usage.quantity * total
    quantity = ratio(scaled, Decimal(elapsed), QUANTITY_PLACES)
    return replace(usage, quantity=quantity.normalize(EXACT), event_count=events)


def _item(
    metric: str, group: Group, quantity: Decimal, amount: Decimal, currency: str
) -> dict[str, Any]:
    return {
        "metric": metric,
        "group": dict(group),
        "quantity": format_decimal(quantity),
        "amount": format_money(amount, currency),
    }


def _body(
    external_id: str, window: Period, currency: str, items: list[dict[str, Any]], total: Decimal
) -> dict[str, Any]:
    return {
        "customerId": external_id,
        "from": _ts(window.start),
        "to": _ts(window.end),
        "currency": currency,
        "metrics": items,
        "amount": format_money(total, currency),
    }


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
