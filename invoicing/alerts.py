"""Usage alerts: thresholds on a subscription's usage or a wallet's balance, each
triggered once per period (docs/alerts.md).

Kinds and their value, measured after each stored batch of the customer's events:
- `usage_units`: the period's quantity of `metric` (every event once; per group rounded
  by the metric's rounding, as the invoice bills it);
- `usage_amount`: the period's usage amount so far, as the usage read-out prices it
  (of `metric` only when set);
- `lifetime_usage_amount`: the usage amounts of the subscription's invoices (not void)
  of earlier periods plus the current period's so far;
- `wallet_balance`: the wallet's balance; it triggers when the balance falls to or
  below a threshold.

A threshold is reached when the value is ≥ it (≤ for a balance); a `recurring` one is
reached again at every further multiple, and the trigger records the multiple (10, 20,
30). A trigger is a ledger row unique per (alert, threshold, period), so redelivered
events never trigger twice; it is also the outbox of its `usage-alerts` message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import metrics
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from invoicing import events, pages
from invoicing.catalog import get_metric, get_subscription, insert_unique
from invoicing.models import (
    AlertRow,
    AlertTriggerRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    SubscriptionRow,
    WalletRow,
)
from invoicing.usage import active_at, customer_subscriptions, customer_usage
from invoicing.wallets import get_wallet
from rating.model import Interval, Period, Subscription
from rating.money import EXACT, ZERO, format_decimal, to_decimal
from rating.periods import period_containing
from streams.schema import UsageEvent
from streams.usage_store import UsageStore

KINDS = ("usage_units", "usage_amount", "lifetime_usage_amount", "wallet_balance")
MAX_THRESHOLDS = 20


@dataclass(frozen=True)
class ThresholdSpec:
    value: Decimal
    code: str | None = None
    recurring: bool = False


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    subscription_id: str | None
    wallet_id: str | None
    code: str | None
    metric: str | None
    name: str | None
    thresholds: tuple[ThresholdSpec, ...]


def _thresholds(values: Sequence[ThresholdSpec]) -> list[dict[str, Any]]:
    if not values:
        raise InvalidInput("thresholds must list at least one threshold")
    if len(values) > MAX_THRESHOLDS:
        raise InvalidInput(f"at most {MAX_THRESHOLDS} thresholds per alert")
    if sum(1 for t in values if t.recurring) > 1:
        raise InvalidInput("at most one threshold may be recurring")
    seen: set[Decimal] = set()
    out = []
    for index, t in enumerate(values):
        if t.value < 0 or (t.recurring and t.value == 0):
            raise InvalidInput(
                f"thresholds[{index}].value must be positive"
                if t.recurring
                else f"thresholds[{index}].value must not be negative"
            )
        if t.value in seen:
            raise InvalidInput(
                f"thresholds[{index}].value {format_decimal(t.value)} is given twice"
            )
        seen.add(t.value)
        out.append({"value": format_decimal(t.value), "code": t.code, "recurring": t.recurring})
    return out


def create_alert(session: Session, tenant_id: str, spec: AlertSpec, now: datetime) -> AlertRow:
    if spec.kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)} (got {spec.kind!r})")
    if spec.kind == "wallet_balance":
        if not spec.wallet_id or spec.subscription_id:
            raise InvalidInput("a wallet_balance alert takes walletId (and no subscriptionId)")
        get_wallet(session, tenant_id, spec.wallet_id)
    else:
        if not spec.subscription_id or spec.wallet_id:
            raise InvalidInput(f"a {spec.kind} alert takes subscriptionId (and no walletId)")
        get_subscription(session, tenant_id, spec.subscription_id)
    if spec.kind == "usage_units" and not spec.metric:
        raise InvalidInput("a usage_units alert needs metric (a billable metric code)")
    if spec.metric and spec.kind in ("lifetime_usage_amount", "wallet_balance"):
        raise InvalidInput(f"a {spec.kind} alert takes no metric")
    if spec.metric:
        get_metric(session, tenant_id, spec.metric)
    row = AlertRow(
        id=new_id("alr"),
        tenant_id=tenant_id,
        kind=spec.kind,
        subscription_id=spec.subscription_id,
        wallet_id=spec.wallet_id,
        code=spec.code,
        metric=spec.metric,
        name=spec.name,
        thresholds=_thresholds(spec.thresholds),
        created_at=now,
        updated_at=now,
    )
    insert_unique(session, row, f"an alert with code {spec.code!r} exists")
    return row


def get_alert(session: Session, tenant_id: str, alert_id: str) -> AlertRow:
    row = session.get(AlertRow, alert_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"alert {alert_id!r} not found")
    return row


def list_alerts(
    session: Session, tenant_id: str, *, limit: int, cursor: str | None
) -> pages.Page[AlertRow]:
    query = select(AlertRow).where(AlertRow.tenant_id == tenant_id)
    return pages.keyset_page(session, query, AlertRow, limit, cursor)


def update_alert(
    session: Session,
    tenant_id: str,
    alert_id: str,
    changes: dict[str, Any],
    now: datetime,
) -> AlertRow:
    """Change name, code or thresholds (kind and target stay)."""
    row = get_alert(session, tenant_id, alert_id)
    if "name" in changes:
        row.name = changes["name"]
    if "code" in changes:
        row.code = changes["code"]
    if "thresholds" in changes:
        row.thresholds = _thresholds(changes["thresholds"])
    row.updated_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"an alert with code {row.code!r} exists", code="duplicate") from None
    return row


def delete_alert(session: Session, tenant_id: str, alert_id: str) -> None:
    row = get_alert(session, tenant_id, alert_id)
    session.execute(delete(AlertTriggerRow).where(AlertTriggerRow.alert_id == row.id))
    session.delete(row)


def list_triggers(session: Session, tenant_id: str, alert_id: str) -> list[AlertTriggerRow]:
    get_alert(session, tenant_id, alert_id)
    return list(
        session.execute(
            select(AlertTriggerRow)
            .where(AlertTriggerRow.alert_id == alert_id)
            .order_by(AlertTriggerRow.triggered_at.desc(), AlertTriggerRow.threshold.desc())
        ).scalars()
    )


# -- evaluation ---------------------------------------------------------------------


# A batch that passes more multiples of a recurring threshold at once (a step of 0.01
# and a value of 1,000,000) records the highest ones only: the triggers stay bounded.
MAX_MULTIPLES = 100


def reached(
    thresholds: Sequence[dict[str, Any]], value: Decimal, *, falling: bool
) -> list[Decimal]:
    """The thresholds `value` has reached: ≥ (≤ when `falling`); a recurring one at each
    multiple up to the value (10, 20, 30 for 10 recurring and a value of 35), the highest
    MAX_MULTIPLES of them."""
    out: list[Decimal] = []
    for t in thresholds:
        step = Decimal(t["value"])
        if t.get("recurring") and not falling:
            multiples = int(EXACT.divide_int(value, step)) if value >= step else 0
            first = max(1, multiples - MAX_MULTIPLES + 1)
            out.extend(EXACT.multiply(step, Decimal(k)) for k in range(first, multiples + 1))
        elif (value <= step) if falling else (value >= step):
            out.append(step)
    return sorted(set(out))


@dataclass(frozen=True)
class Trigger:
    id: str
    tenant_id: str
    alert_id: str
    subscription_id: str | None
    wallet_id: str | None
    threshold: Decimal
    value: Decimal
    period_start: datetime
    at: datetime

    @property
    def key(self) -> bytes:
        return f"{self.tenant_id}/{self.alert_id}".encode()

    def message(self) -> bytes:
        target = (
            {"walletId": self.wallet_id}
            if self.wallet_id
            else {"subscriptionId": self.subscription_id}
        )
        return orjson.dumps(
            {
                "id": self.id,
                "tenantId": self.tenant_id,
                "alertId": self.alert_id,
                **target,
                "threshold": format_decimal(self.threshold),
                "value": format_decimal(self.value),
                "periodStart": _ts(self.period_start),
                "triggeredAt": _ts(self.at),
            }
        )


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def record_wallet_triggers(
    session: Session, tenant_id: str, balances: Mapping[str, Decimal], now: datetime
) -> int:
    """Judge the wallet-balance alerts of these wallets on their new `balances`, in the
    caller's transaction (a bill run's wallet debits): each threshold reached records
    one trigger for the month, with its alert.triggered event; one recorded already (by
    the stream worker, say) is skipped without failing the transaction. The count."""
    if not balances:
        return 0
    alerts = (
        session.execute(
            select(AlertRow).where(
                AlertRow.tenant_id == tenant_id,
                AlertRow.kind == "wallet_balance",
                AlertRow.wallet_id.in_(sorted(balances)),
            )
        )
        .scalars()
        .all()
    )
    if not alerts:
        return 0
    period = period_containing(Interval.MONTHLY, now)
    table = AlertTriggerRow.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    connection = session.connection()
    recorded = 0
    for alert in alerts:
        value = balances[str(alert.wallet_id)]
        for threshold in reached(alert.thresholds, value, falling=True):
            trigger_id = new_id("atr")
            inserted = connection.execute(
                insert(table)  # type: ignore[arg-type]
                .values(
                    id=trigger_id,
                    tenant_id=tenant_id,
                    alert_id=alert.id,
                    threshold=threshold,
                    value=value,
                    period_start=period.start,
                    triggered_at=now,
                )
                .on_conflict_do_nothing()
                .returning(table.c.id)  # rowcount is -1 for this statement on psycopg
            )
            if inserted.first() is None:
                continue  # this threshold fired already this month
            trigger = Trigger(
                trigger_id, tenant_id, alert.id, None, alert.wallet_id, threshold, value,
                period.start, now,
            )  # fmt: skip
            data = orjson.loads(trigger.message())
            events.record(session, tenant_id, "alert.triggered", trigger_id, data, now)
            recorded += 1
    return recorded


class AlertWatch:
    """The stream worker's alert step: after a stored batch, the alerts of its
    customers are measured and what they reached is recorded once."""

    def __init__(self, sessions: sessionmaker[Session], usage: UsageStore) -> None:
        self._sessions = sessions
        self._usage = usage

    def after_write(self, events: Sequence[UsageEvent], now: datetime) -> list[Trigger]:
        customers: dict[str, set[str]] = {}
        for event in events:
            customers.setdefault(event.tenant_id, set()).add(event.customer_id)
        for tenant_id, external_ids in customers.items():
            for alert, subscription_external in self._alerts(tenant_id, external_ids):
                self._evaluate(tenant_id, alert, subscription_external, now)
        return self.pending(list(customers))

    def _alerts(self, tenant_id: str, external_ids: set[str]) -> list[tuple[AlertRow, str]]:
        """(alert, customer external id) of the customers' subscriptions and wallets."""
        with self._sessions() as session:
            by_subscription = session.execute(
                select(AlertRow, CustomerRow.external_id)
                .join(SubscriptionRow, SubscriptionRow.id == AlertRow.subscription_id)
                .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
                .where(AlertRow.tenant_id == tenant_id, CustomerRow.external_id.in_(external_ids))
            ).all()
            by_wallet = session.execute(
                select(AlertRow, CustomerRow.external_id)
                .join(WalletRow, WalletRow.id == AlertRow.wallet_id)
                .join(CustomerRow, CustomerRow.id == WalletRow.customer_id)
                .where(AlertRow.tenant_id == tenant_id, CustomerRow.external_id.in_(external_ids))
            ).all()
            session.expunge_all()
        return [(row[0], str(row[1])) for row in [*by_subscription, *by_wallet]]

    def _evaluate(self, tenant_id: str, alert: AlertRow, external_id: str, now: datetime) -> None:
        if alert.kind == "wallet_balance":
            with self._sessions() as session:
                wallet = session.get(WalletRow, alert.wallet_id)
                if wallet is None:
                    return
                value = wallet.balance
            # A balance has no billing period: each threshold triggers once a month.
            period = period_containing(Interval.MONTHLY, now)
            self._record(tenant_id, alert, value, period.start, now, falling=True)
            return
        _, metrics, subscriptions = customer_subscriptions(self._sessions, tenant_id, external_id)
        subscription = next((s for s in subscriptions if s.id == alert.subscription_id), None)
        if subscription is None or active_at([subscription], now) is None:
            return
        period = period_containing(subscription.plan.interval, now, subscription.customer.zone)
        value = self._value(tenant_id, alert, subscription, period, metrics, now)
        self._record(tenant_id, alert, value, period.start, now, falling=False)

    def _value(
        self,
        tenant_id: str,
        alert: AlertRow,
        subscription: Subscription,
        period: Period,
        metrics: dict[str, Any],
        now: datetime,
    ) -> Decimal:
        external_id = subscription.customer.external_id
        active = period.overlap(subscription.start, subscription.end) or period
        if alert.kind == "usage_units":
            metric = metrics.get(alert.metric or "")
            if metric is None:
                return ZERO
            rows = self._usage.customer_usage(
                tenant_id, external_id, [metric], active.start, active.end
            )
            return _total(metric.rounded(q) for _code, _group, q in rows)
        readout = customer_usage(
            self._sessions, self._usage, tenant_id, external_id, period.start, period.end, now
        )
        if alert.metric:
            current = _total(
                Decimal(m["amount"]) for m in readout["metrics"] if m["metric"] == alert.metric
            )
        else:
            current = Decimal(readout["amount"])
        if alert.kind == "usage_amount":
            return current
        with self._sessions() as session:
            billed = session.execute(
                select(func.coalesce(func.sum(InvoiceLineRow.amount), 0))
                .join(InvoiceRow, InvoiceRow.id == InvoiceLineRow.invoice_id)
                .where(
                    InvoiceRow.tenant_id == tenant_id,
                    InvoiceRow.subscription_id == subscription.id,
                    InvoiceRow.status != "VOID",
                    InvoiceRow.period_end <= period.start,
                    # Period-end invoices bill each period's usage whole (progressive
                    # invoices of it are deducted there): counted once.
                    InvoiceRow.type == "subscription",
                    InvoiceLineRow.type == "USAGE_FEE",
                )
            ).scalar()
        return EXACT.add(to_decimal(billed or 0), current)

    def _record(
        self,
        tenant_id: str,
        alert: AlertRow,
        value: Decimal,
        period_start: datetime,
        now: datetime,
        *,
        falling: bool,
    ) -> None:
        hits = reached(alert.thresholds, value, falling=falling)
        metrics.ALERT_EVALUATIONS.labels(alert.kind, "reached" if hits else "below").inc()
        if not hits:
            return
        with self._sessions() as session:
            known = set(
                session.execute(
                    select(AlertTriggerRow.threshold).where(
                        AlertTriggerRow.alert_id == alert.id,
                        AlertTriggerRow.period_start == period_start,
                    )
                ).scalars()
            )
        for threshold in hits:
            if threshold in known:
                continue
            try:
                with self._sessions() as session, session.begin():
                    row = AlertTriggerRow(
                        id=new_id("atr"),
                        tenant_id=tenant_id,
                        alert_id=alert.id,
                        threshold=threshold,
                        value=value,
                        period_start=period_start,
                        triggered_at=now,
                    )
                    session.add(row)
                    trigger = Trigger(
                        row.id,
                        tenant_id,
                        alert.id,
                        alert.subscription_id,
                        alert.wallet_id,
                        threshold,
                        value,
                        period_start,
                        now,
                    )
                    data = orjson.loads(trigger.message())
                    events.record(session, tenant_id, "alert.triggered", row.id, data, now)
            except IntegrityError:
                continue  # recorded by another worker: once

    def pending(self, tenant_ids: Iterable[str] | None) -> list[Trigger]:
        """Triggers Kafka does not have yet (of these tenants, or of all), oldest first."""
        query = (
            select(AlertTriggerRow, AlertRow.subscription_id, AlertRow.wallet_id)
            .join(AlertRow, AlertRow.id == AlertTriggerRow.alert_id)
            .where(AlertTriggerRow.published_at.is_(None))
            .order_by(AlertTriggerRow.triggered_at, AlertTriggerRow.threshold)
        )
        if tenant_ids is not None:
            tenants = list(tenant_ids)
            if not tenants:
                return []
            query = query.where(AlertTriggerRow.tenant_id.in_(tenants))
        with self._sessions() as session:
            rows = session.execute(query).all()
            return [
                Trigger(
                    t.id,
                    t.tenant_id,
                    t.alert_id,
                    sub,
                    wallet,
                    t.threshold,
                    t.value,
                    t.period_start,
                    t.triggered_at,
                )
                for t, sub, wallet in rows
            ]

    def published(self, triggers: Sequence[Trigger], now: datetime) -> None:
        if not triggers:
            return
        with self._sessions() as session, session.begin():
            session.execute(
                update(AlertTriggerRow)
                .where(AlertTriggerRow.id.in_([t.id for t in triggers]))
                .values(published_at=now)
            )


def _total(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total
