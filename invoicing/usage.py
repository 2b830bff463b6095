"""Current usage of a customer: exact quantities so far and what they cost.

The same rating pipeline as the bill run prices the usage, so the amount shown
mid-period is what the invoice would say if the period closed now.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ValidationFailed
from invoicing.catalog import get_customer, metrics_by_code, subscription_domain
from invoicing.models import SubscriptionRow
from rating.context import BillingContext
from rating.model import Aggregation, LineType, MeteredQuantity, Period
from rating.money import EXACT, ZERO, format_decimal, format_money, ratio
from rating.periods import period_containing
from rating.pipeline import rate_subscription
from streams.usage_store import QUANTITY_PLACES, UsageStore

_LINEAR = {Aggregation.COUNT, Aggregation.SUM}


def customer_usage(
    sessions: sessionmaker[Session],
    usage: UsageStore,
    tenant_id: str,
    external_id: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    projected: bool,
) -> dict[str, Any]:
    with sessions() as session:
        customer = get_customer(session, tenant_id, external_id)
        metrics = metrics_by_code(session, tenant_id)
        rows = (
            session.execute(
                select(SubscriptionRow)
                .where(
                    SubscriptionRow.tenant_id == tenant_id,
                    SubscriptionRow.customer_id == customer.id,
                )
                .order_by(SubscriptionRow.start_date.desc())
            )
            .unique()
            .scalars()
            .all()
        )
        subscriptions = [subscription_domain(r, metrics) for r in rows]
    point = start or now
    active = [s for s in subscriptions if s.start <= point and (s.end is None or s.end > point)]
    subscription = active[0] if active else None
    if start is None or end is None:
        if subscription is not None:
            period = period_containing(subscription.plan.interval, now)
        else:
            period = Period(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now)
        start = start or period.start
        end = end or period.end
    if end <= start:
        raise ValidationFailed("'to' must be after 'from'")
    window = Period(start, end)
    currency = subscription.plan.currency if subscription else customer.currency
    if subscription is None:
        quantities = usage.customer_usage(tenant_id, external_id, metrics.values(), start, end)
        items: list[dict[str, Any]] = [
            {
                "metric": m,
                "group": dict(g),
                "quantity": format_decimal(q),
                "amount": format_money(ZERO, currency),
            }
            for m, g, q in quantities
        ]
        return _body(external_id, window, currency, items, ZERO)

    charges = subscription.plan.charges
    charge_metrics = {c.metric.code: c.metric for c in charges}
    measured = usage.customer_usage(tenant_id, external_id, charge_metrics.values(), start, end)
    # A projection scales linear usage by the whole window over the part elapsed.
    span = elapsed = Decimal(1)
    if projected and start < now < end:
        span = Decimal((end - start).total_seconds())
        elapsed = Decimal((now - start).total_seconds())
    metered = []
    for code, group, quantity in measured:
        metric = charge_metrics[code]
        if projected and metric.aggregation in _LINEAR:
            # A projection needs no more precision than a quantity's 12 decimals.
            with localcontext(EXACT):
                quantity = ratio(quantity * span, elapsed, QUANTITY_PLACES).normalize()
        for charge in charges:
            if charge.metric.code == code:
                metered.append(MeteredQuantity(charge_id=charge.id, quantity=quantity, group=group))
    result = rate_subscription(
        BillingContext(subscription=subscription, period=window, usage=tuple(metered))
    )
    lines_out: list[dict[str, Any]] = []
    total = ZERO
    for line in result.invoice.lines:
        if line.type != LineType.USAGE_FEE:
            continue
        quantity = next(
            (
                m.quantity
                for m in metered
                if m.charge_id == line.charge_id and m.group == line.group
            ),
            ZERO,
        )
        lines_out.append(
            {
                "metric": line.metric,
                "group": dict(line.group),
                "quantity": format_decimal(quantity),
                "amount": format_money(line.amount, currency),
            }
        )
        total += line.amount
    return _body(external_id, window, currency, lines_out, total)


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
    return value.isoformat().replace("+00:00", "Z")
