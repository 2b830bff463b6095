"""The subscriptions a bill run considers, read from the ledger page by page.

Pages follow the billing order (subscriptions by creation, then id) with keyset
pagination, so a run over a million subscriptions never holds more than one page.
Plans are read once per run, and each distinct (plan, overrides) rating plan is built
once: most subscriptions share a handful of plans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from invoicing.billing.contexts import batches
from invoicing.billing.selection import InvoicedKey, earliest_end
from invoicing.catalog import metrics_by_code, plan_domain
from invoicing.db import json_dumps
from invoicing.models import CustomerRow, InvoiceRow, PlanRow, SubscriptionRow
from rating.model import Customer, Period, Plan, Subscription


def subscription_pages(
    sessions: sessionmaker[Session], tenant_id: str, window: Period, size: int
) -> Iterator[list[tuple[Subscription, str]]]:
    """(subscription, customer row id) pairs that may bill in `window`, `size` at a time."""
    with sessions() as session:
        metrics = metrics_by_code(session, tenant_id)
        plan_rows = {
            p.id: p
            for p in session.execute(
                select(PlanRow).where(PlanRow.tenant_id == tenant_id)
            ).scalars()
        }
    plans: dict[tuple[str, str], Plan] = {}
    after: tuple[datetime, str] | None = None
    while True:
        with sessions() as session:
            rows = _page(session, tenant_id, window, after, size)
        if not rows:
            return
        after = (rows[-1].created_at, rows[-1].id)
        page = []
        for row in rows:
            plan_key = (row.plan_id, json_dumps(row.overrides or {}))
            plan = plans.get(plan_key)
            if plan is None:
                plan = plans[plan_key] = plan_domain(plan_rows[row.plan_id], metrics, row.overrides)
            customer = Customer(
                external_id=row.external_id,
                name=row.name,
                currency=row.currency,
                country=row.country,
                region=row.region,
                tax_exempt=row.tax_exempt,
            )
            subscription = Subscription(
                id=row.id, customer=customer, plan=plan, start=row.start_date, end=row.end_date
            )
            page.append((subscription, row.customer_id))
        yield page
        if len(rows) < size:
            return


def _page(
    session: Session, tenant_id: str, window: Period, after: tuple[datetime, str] | None, size: int
) -> Sequence[Row[Any]]:
    query = (
        # Plain column rows, not ORM objects: a run reads every subscription of a tenant.
        select(
            SubscriptionRow.id,
            SubscriptionRow.created_at,
            SubscriptionRow.plan_id,
            SubscriptionRow.overrides,
            SubscriptionRow.start_date,
            SubscriptionRow.end_date,
            SubscriptionRow.customer_id,
            CustomerRow.external_id,
            CustomerRow.name,
            CustomerRow.currency,
            CustomerRow.country,
            CustomerRow.region,
            CustomerRow.tax_exempt,
        )
        .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
        .where(
            SubscriptionRow.tenant_id == tenant_id,
            SubscriptionRow.start_date < window.end,
            SubscriptionRow.end_date.is_(None) | (SubscriptionRow.end_date > earliest_end(window)),
        )
        .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
        .limit(size)
    )
    if after is not None:
        created, ident = after
        query = query.where(
            or_(
                SubscriptionRow.created_at > created,
                and_(SubscriptionRow.created_at == created, SubscriptionRow.id > ident),
            )
        )
    return session.execute(query).all()


def invoiced_keys(
    session: Session, tenant_id: str, window: Period, subscription_ids: Sequence[str]
) -> set[InvoicedKey]:
    """The (subscription, period) keys of invoices the ledger already holds in `window`."""
    keys: set[InvoicedKey] = set()
    for ids in batches(subscription_ids):
        keys.update(
            (str(sub_id), start, end)
            for sub_id, start, end in session.execute(
                select(
                    InvoiceRow.subscription_id, InvoiceRow.period_start, InvoiceRow.period_end
                ).where(
                    InvoiceRow.tenant_id == tenant_id,
                    InvoiceRow.subscription_id.in_(list(ids)),
                    InvoiceRow.period_end > window.start,
                    InvoiceRow.period_start < window.end,
                )
            )
        )
    return keys
