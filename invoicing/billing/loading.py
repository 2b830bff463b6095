"""The subscriptions a bill run considers, read from the ledger page by page.

Pages follow the billing order: customers by external id (keyset pagination over the
ledger's unique index), and each customer's subscriptions by creation, then id. A page
holds the subscriptions of `size` customers, so a run over a million subscriptions
never holds more than one page, every customer's subscriptions share a page, and a
page's customers form one range of external ids: the range the usage store reads.
Plans are read once per run, and each distinct (plan, overrides) rating plan is built
once: most subscriptions share a handful of plans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, sessionmaker

from invoicing import plan_versions
from invoicing.billing.contexts import batches
from invoicing.billing.selection import InvoicedKey, earliest_end, ledger_window
from invoicing.catalog import metrics_by_code, plan_domain
from invoicing.db import json_dumps
from invoicing.models import CustomerRow, InvoiceRow, PlanRow, SubscriptionRow
from rating.model import Customer, Period, Plan, Subscription
from rating.periods import zone_of


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
    plans: dict[tuple[str, str, str], Plan] = {}

    def rating_plan(row: PlanRow, overrides: Any) -> Plan:
        key = (row.id, json_dumps(overrides or {}), json_dumps(plan_versions.definition(row)))
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = plan_domain(row, metrics, overrides)
        return plan

    after: str | None = None
    while True:
        with sessions() as session:
            last = _last_customer(session, tenant_id, after, size)
            rows = _page(session, tenant_id, window, after, last)
        after = last
        page = []
        for row in rows:
            # A patched plan's earlier versions pinned on the subscription (if any).
            current, history = plan_versions.pinned(plan_rows[row.plan_id], row.plan_versions)
            plan = rating_plan(current, row.overrides)
            customer = Customer(
                external_id=row.external_id,
                name=row.name,
                currency=row.currency,
                country=row.country,
                region=row.region,
                tax_exempt=row.tax_exempt,
                zone=zone_of(row.timezone),
            )
            subscription = Subscription(
                id=row.id,
                customer=customer,
                plan=plan,
                start=row.start_date,
                end=row.end_date,
                plan_history=tuple((until, rating_plan(p, row.overrides)) for until, p in history),
            )
            page.append((subscription, row.customer_id))
        if page:
            yield page
        if last is None:
            return


def _last_customer(session: Session, tenant_id: str, after: str | None, size: int) -> str | None:
    """The external id of the `size`-th customer after `after`: the page's upper bound
    (None when fewer are left: the page runs to the end)."""
    query = select(CustomerRow.external_id).where(CustomerRow.tenant_id == tenant_id)
    if after is not None:
        query = query.where(CustomerRow.external_id > after)
    query = query.order_by(CustomerRow.external_id).offset(size - 1).limit(1)
    return session.execute(query).scalar()


def _page(
    session: Session, tenant_id: str, window: Period, after: str | None, last: str | None
) -> Sequence[Row[Any]]:
    """The subscriptions that may bill in `window` of the customers in (after, last]."""
    query = (
        # Plain column rows, not ORM objects: a run reads every subscription of a tenant.
        select(
            SubscriptionRow.id,
            SubscriptionRow.created_at,
            SubscriptionRow.plan_id,
            SubscriptionRow.overrides,
            SubscriptionRow.plan_versions,
            SubscriptionRow.start_date,
            SubscriptionRow.end_date,
            SubscriptionRow.customer_id,
            CustomerRow.external_id,
            CustomerRow.name,
            CustomerRow.currency,
            CustomerRow.country,
            CustomerRow.region,
            CustomerRow.tax_exempt,
            CustomerRow.timezone,
        )
        .join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id)
        .where(
            SubscriptionRow.tenant_id == tenant_id,
            SubscriptionRow.start_date < ledger_window(window).end,
            SubscriptionRow.end_date.is_(None) | (SubscriptionRow.end_date > earliest_end(window)),
        )
        .order_by(CustomerRow.external_id, SubscriptionRow.created_at, SubscriptionRow.id)
    )
    if after is not None:
        query = query.where(CustomerRow.external_id > after)
    if last is not None:
        query = query.where(CustomerRow.external_id <= last)
    return session.execute(query).all()


def invoiced_keys(
    session: Session, tenant_id: str, window: Period, subscription_ids: Sequence[str]
) -> set[InvoicedKey]:
    """The (subscription, period) keys of invoices the ledger already holds in `window`."""
    keys: set[InvoicedKey] = set()
    window = ledger_window(window)  # the local periods of customers in other zones
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
