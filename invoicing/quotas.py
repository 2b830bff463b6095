"""Hard quotas: "may this customer go on?", and each crossing of a cap recorded once.

A charge's `hardCap` limits what its period bills (the Quota Check stage). Here:

- `quota_state` answers GET …/quota/{metric} from the stored, deduplicated events of
  the current period (seconds behind ingestion: the stream stores a batch within about
  a second), with the same query the invoice uses, so the check and the bill agree;
- `QuotaWatch.after_write` runs in the stream worker after each stored batch: for the
  customers and metrics of the batch that have a capped charge, it measures the
  period's quantity and records a crossing when it reached the cap. The crossing row is
  unique per (subscription, charge, period), so a redelivered or resent batch never
  announces a crossing twice, and a restarted worker (or another one, after a
  rebalance) finds what was already announced. The row is also the outbox of the
  `quota-exceeded` message: `pending` lists the rows Kafka does not have yet, and
  `published` marks them once it has (at least once; the row id rides along so a
  consumer can drop a repeat).

Choices (docs/quotas.md): `used` is the period's quantity of the capped charge (every
event counted once; the charge's filters apply), across its groups, over the
subscription's active part of the period; `blocked = used >= cap`. A metric with a
rounding rounds each group's quantity first (rating/rounding.py): the cap limits what
the invoice bills, and the invoice bills the rounded quantity (docs/aggregations.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFound
from core.ids import new_id
from core.metrics import QUOTA_EVALUATIONS
from invoicing import events
from invoicing.catalog import metrics_by_code, plan_domain
from invoicing.models import PlanRow, QuotaCrossingRow, SubscriptionRow
from invoicing.usage import SubscriptionCache, active_at, customer_subscriptions, customer_zone
from rating.model import Interval, MeteredQuantity, Period, Subscription, UsageCharge
from rating.money import EXACT, ZERO, format_decimal
from rating.periods import period_containing
from streams.billing_usage import UsageRequest
from streams.schema import UsageEvent


class QuotaUsage(Protocol):
    """What quotas need of the usage store (streams.usage_store.UsageStore)."""

    def charge_quantities(
        self,
        tenant_id: str,
        customer_id: str,
        charge: UsageCharge,
        active: Period,
        period: Period,
        ingested_through: datetime,
    ) -> Any: ...

    def customer_usage(
        self,
        tenant_id: str,
        customer_id: str,
        metrics: Iterable[Any],
        start: datetime,
        end: datetime,
    ) -> Any: ...

    def metered_quantities(
        self, tenant_id: str, requests: Sequence[UsageRequest]
    ) -> Mapping[str, Sequence[MeteredQuantity]]: ...


@dataclass(frozen=True)
class QuotaState:
    customer_id: str
    metric: str
    period: Period
    used: Decimal
    cap: Decimal | None

    @property
    def remaining(self) -> Decimal | None:
        return None if self.cap is None else max(EXACT.subtract(self.cap, self.used), ZERO)

    @property
    def blocked(self) -> bool:
        return self.cap is not None and self.used >= self.cap

    def to_api(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "metric": self.metric,
            "periodStart": self.period.start,
            "periodEnd": self.period.end,
            "used": format_decimal(self.used),
            "cap": None if self.cap is None else format_decimal(self.cap),
            "remaining": None if self.remaining is None else format_decimal(self.remaining),
            "blocked": self.blocked,
        }


def capped_charge(subscription: Subscription, metric: str) -> UsageCharge | None:
    """The subscription's charge on `metric` with a hard cap (the first, in plan order)."""
    for charge in subscription.plan.charges:
        if charge.metric.code == metric and charge.hard_cap is not None:
            return charge
    return None


def used_quantity(
    usage: QuotaUsage,
    tenant_id: str,
    subscription: Subscription,
    charge: UsageCharge,
    period: Period,
    now: datetime,
) -> Decimal:
    """The charge's quantity in `period` (its groups together), stored up to `now`."""
    active = period.overlap(subscription.start, subscription.end)
    if active is None:
        return ZERO
    quantities = usage.charge_quantities(
        tenant_id, subscription.customer.external_id, charge, active, period, now
    )
    total = ZERO
    for quantity in quantities.values():
        total = EXACT.add(total, charge.metric.rounded(quantity))
    return total


def quota_state(
    sessions: sessionmaker[Session],
    usage: QuotaUsage,
    tenant_id: str,
    external_id: str,
    metric: str,
    now: datetime,
) -> QuotaState:
    """The customer's quota of `metric` in the current billing period (404: unknown
    customer or metric)."""
    _, metrics, subscriptions = customer_subscriptions(sessions, tenant_id, external_id)
    if metric not in metrics:
        raise NotFound(f"no billable metric with code {metric!r}", code="metric_not_found")
    current = active_at(subscriptions, now)
    interval = current.plan.interval if current else Interval.MONTHLY
    period = period_containing(interval, now, customer_zone(subscriptions))
    charge = capped_charge(current, metric) if current else None
    if current is not None and charge is not None:
        used = used_quantity(usage, tenant_id, current, charge, period, now)
        return QuotaState(external_id, metric, period, used, charge.hard_cap)
    # No cap: the metric's quantity in the period, every event once.
    rows = usage.customer_usage(tenant_id, external_id, [metrics[metric]], period.start, period.end)
    used = ZERO
    for _code, _group, quantity in rows:
        used = EXACT.add(used, metrics[metric].rounded(quantity))
    return QuotaState(external_id, metric, period, used, None)


@dataclass(frozen=True)
class Crossing:
    """A recorded crossing, as the quota-exceeded message carries it."""

    id: str
    tenant_id: str
    subscription_id: str
    customer_id: str
    metric: str
    cap: Decimal
    used: Decimal
    period_start: datetime
    at: datetime

    @property
    def key(self) -> bytes:
        return f"{self.tenant_id}/{self.customer_id}".encode()

    def message(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "tenantId": self.tenant_id,
                "subscriptionId": self.subscription_id,
                "customerId": self.customer_id,
                "metric": self.metric,
                "cap": format_decimal(self.cap),
                "used": format_decimal(self.used),
                "periodStart": _ts(self.period_start),
                "at": _ts(self.at),
            }
        )


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _crossing(row: QuotaCrossingRow) -> Crossing:
    return Crossing(
        row.id,
        row.tenant_id,
        row.subscription_id,
        row.customer_external_id,
        row.metric,
        row.cap,
        row.used,
        row.period_start,
        row.crossed_at,
    )


CAPPED_METRICS_TTL = 5.0  # seconds a tenant's capped metrics are cached by the worker


class QuotaWatch:
    """The stream worker's quota step (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], usage: QuotaUsage) -> None:
        self._sessions = sessions
        self._usage = usage
        self._capped: dict[str, tuple[float, frozenset[str]]] = {}
        self._subscriptions = SubscriptionCache(sessions)

    def capped_metrics(self, tenant_id: str) -> frozenset[str]:
        """Metric codes with a hard cap in any of the tenant's plans or overrides."""
        cached = self._capped.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < CAPPED_METRICS_TTL:
            return cached[1]
        with self._sessions() as session:
            metrics = metrics_by_code(session, tenant_id)
            plans = {
                p.id: p
                for p in session.execute(
                    select(PlanRow).where(PlanRow.tenant_id == tenant_id)
                ).scalars()
            }
            overrides = session.execute(
                select(SubscriptionRow.plan_id, SubscriptionRow.overrides).where(
                    SubscriptionRow.tenant_id == tenant_id
                )
            ).all()
        codes: set[str] = set()
        seen: set[tuple[str, str]] = set()
        for plan_id, override in [(p, None) for p in plans] + [(p, o) for p, o in overrides]:
            key = (plan_id, orjson.dumps(override or {}, option=orjson.OPT_SORT_KEYS).decode())
            if key in seen or plan_id not in plans:
                continue
            seen.add(key)
            plan = plan_domain(plans[plan_id], metrics, override)
            codes.update(c.metric.code for c in plan.charges if c.hard_cap is not None)
        found = frozenset(codes)
        self._capped[tenant_id] = (time.monotonic(), found)
        return found

    def after_write(self, events: Sequence[UsageEvent], now: datetime) -> list[Crossing]:
        """Record the crossings the stored `events` may have caused; returns every
        crossing not yet published (these and earlier ones), oldest first."""
        touched: dict[str, dict[tuple[str, str], set[datetime]]] = {}
        capped: dict[str, frozenset[str]] = {}
        for event in events:
            metrics = capped.get(event.tenant_id)
            if metrics is None:
                metrics = capped[event.tenant_id] = self.capped_metrics(event.tenant_id)
            if event.metric not in metrics:
                continue
            key = (event.customer_id, event.metric)
            touched.setdefault(event.tenant_id, {}).setdefault(key, set()).add(event.timestamp)
        for tenant_id, pairs in touched.items():
            self._check(tenant_id, pairs, now)
        return self.pending([*touched])

    def _check(
        self, tenant_id: str, pairs: dict[tuple[str, str], set[datetime]], now: datetime
    ) -> None:
        """Measure, in one query, every (subscription, capped charge, period) the batch's
        events fall in and that has not crossed yet; record those at their cap."""
        by_customer: dict[str, dict[str, set[datetime]]] = {}
        for (customer, metric), instants in pairs.items():
            by_customer.setdefault(customer, {})[metric] = instants
        subscriptions = self._subscriptions.of(tenant_id, set(by_customer))
        targets: dict[str, tuple[Subscription, UsageCharge, Period]] = {}
        for customer, metrics in by_customer.items():
            held = subscriptions.get(customer)
            if not held:
                continue  # usage of a customer the ledger does not know bills nothing
            for metric, instants in metrics.items():
                last: dict[str, Period] = {}  # per subscription: its latest period seen
                for instant in sorted(instants):
                    subscription = active_at(held, instant)
                    charge = capped_charge(subscription, metric) if subscription else None
                    if subscription is None or charge is None:
                        continue
                    period = last.get(subscription.id)
                    if period is None or not period.start <= instant < period.end:
                        period = period_containing(
                            subscription.plan.interval, instant, subscription.customer.zone
                        )
                        last[subscription.id] = period
                    key = f"{subscription.id}|{charge.id}|{period.start.isoformat()}"
                    targets.setdefault(key, (subscription, charge, period))
        crossed = self._crossed(tenant_id, {s.id for s, _, _ in targets.values()})
        requests = []
        for key, (subscription, charge, period) in targets.items():
            active = period.overlap(subscription.start, subscription.end)
            if active is None or (subscription.id, charge.id, period.start) in crossed:
                continue
            customer_id = subscription.customer.external_id
            requests.append(UsageRequest(key, customer_id, active, period, (charge,)))
        measured = self._usage.metered_quantities(tenant_id, requests) if requests else {}
        for request in requests:
            subscription, charge, period = targets[request.key]
            assert charge.hard_cap is not None
            used = ZERO
            for quantity in measured.get(request.key, ()):
                if quantity.charge_id == charge.id:
                    used = EXACT.add(used, charge.metric.rounded(quantity.quantity))
            exceeded = used >= charge.hard_cap
            QUOTA_EVALUATIONS.labels("exceeded" if exceeded else "within").inc()
            if exceeded:
                self._record(tenant_id, subscription, charge, period, used, now)

    def _crossed(
        self, tenant_id: str, subscription_ids: set[str]
    ) -> set[tuple[str, str, datetime]]:
        """(subscription, charge, period start) of the crossings already recorded."""
        if not subscription_ids:
            return set()
        with self._sessions() as session:
            return {
                (str(sub), str(charge), start)
                for sub, charge, start in session.execute(
                    select(
                        QuotaCrossingRow.subscription_id,
                        QuotaCrossingRow.charge_id,
                        QuotaCrossingRow.period_start,
                    ).where(
                        QuotaCrossingRow.tenant_id == tenant_id,
                        QuotaCrossingRow.subscription_id.in_(sorted(subscription_ids)),
                    )
                )
            }

    def _record(
        self,
        tenant_id: str,
        subscription: Subscription,
        charge: UsageCharge,
        period: Period,
        used: Decimal,
        now: datetime,
    ) -> None:
        assert charge.hard_cap is not None
        try:
            with self._sessions() as session, session.begin():
                exists = session.execute(
                    select(QuotaCrossingRow.id).where(
                        QuotaCrossingRow.tenant_id == tenant_id,
                        QuotaCrossingRow.subscription_id == subscription.id,
                        QuotaCrossingRow.charge_id == charge.id,
                        QuotaCrossingRow.period_start == period.start,
                    )
                ).scalar()
                if exists is not None:
                    return
                row = QuotaCrossingRow(
                    id=new_id("qx"),
                    tenant_id=tenant_id,
                    subscription_id=subscription.id,
                    charge_id=charge.id,
                    customer_external_id=subscription.customer.external_id,
                    metric=charge.metric.code,
                    period_start=period.start,
                    period_end=period.end,
                    cap=charge.hard_cap,
                    used=used,
                    crossed_at=now,
                )
                session.add(row)
                # The webhook event says what the Kafka message says (API.md).
                data = orjson.loads(_crossing(row).message())
                events.record(session, tenant_id, "quota.exceeded", row.id, data, now)
        except IntegrityError:
            return  # another worker recorded it first: one crossing

    def pending(self, tenant_ids: Iterable[str] | None = None) -> list[Crossing]:
        """Crossings Kafka does not have yet (of these tenants, or of all), oldest first."""
        query = select(QuotaCrossingRow).where(QuotaCrossingRow.published_at.is_(None))
        if tenant_ids is not None:
            tenants = list(tenant_ids)
            if not tenants:
                return []
            query = query.where(QuotaCrossingRow.tenant_id.in_(tenants))
        with self._sessions() as session:
            rows = session.execute(query.order_by(QuotaCrossingRow.crossed_at)).scalars()
            return [_crossing(row) for row in rows]

    def published(self, crossings: Sequence[Crossing], now: datetime) -> None:
        if not crossings:
            return
        with self._sessions() as session, session.begin():
            session.execute(
                update(QuotaCrossingRow)
                .where(QuotaCrossingRow.id.in_([c.id for c in crossings]))
                .values(published_at=now)
            )
