"""Revenue analytics (docs/analytics.md): per currency and UTC month, of the calling
tenant only; `from` and `to` are months, both included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.analytics import (
    MonthAmounts,
    MrrMonth,
    MrrMonths,
    OverdueBalance,
    OverdueBalances,
    UsageAmount,
    UsageAmounts,
    parse_currency,
    parse_month,
)
from invoicing import analytics

router = APIRouter(tags=["analytics"])

Currency = Annotated[str | None, Query(description="ISO 4217 code; absent: every currency")]
From = Annotated[
    str | None,
    Query(alias="from", description="first month, YYYY-MM (default: 11 months before `to`)"),
]
To = Annotated[
    str | None, Query(alias="to", description="last month, YYYY-MM, included (default: now's)")
]
Customer = Annotated[str | None, Query(alias="customerId", description="one customer's externalId")]


def _scope(tenant: str, currency: str | None, customer: str | None) -> analytics.Scope:
    return analytics.Scope(
        tenant_id=tenant,
        currency=parse_currency(currency),
        customer_external_id=customer or None,
    )


def _window(runtime: RuntimeDep, start: str | None, end: str | None) -> analytics.Window:
    first, last = parse_month(start, "from"), parse_month(end, "to")
    return analytics.window(first, last, runtime.clock.now())


@dataclass(frozen=True)
class Asked:
    """The query of a monthly figure: whose (tenant, currency, customer) and which months."""

    scope: analytics.Scope
    window: analytics.Window


def _asked(
    runtime: RuntimeDep,
    tenant: TenantDep,
    currency: Currency = None,
    start: From = None,
    end: To = None,
    customer_id: Customer = None,
) -> Asked:
    return Asked(_scope(tenant, currency, customer_id), _window(runtime, start, end))


AskedDep = Annotated[Asked, Depends(_asked)]


@router.get("/analytics/mrr", summary="MRR at each month's end, with its movements")
def mrr(session: SessionDep, asked: AskedDep) -> MrrMonths:
    return MrrMonths(
        data=[MrrMonth.of(f) for f in analytics.mrr(session, asked.scope, asked.window)]
    )


@router.get("/analytics/gross-revenue", summary="Invoiced per month, less credit notes")
def gross_revenue(session: SessionDep, asked: AskedDep) -> MonthAmounts:
    return MonthAmounts.of(analytics.gross_revenue(session, asked.scope, asked.window))


@router.get("/analytics/invoice-collections", summary="Payments received per month")
def invoice_collections(session: SessionDep, asked: AskedDep) -> MonthAmounts:
    return MonthAmounts.of(analytics.invoice_collections(session, asked.scope, asked.window))


@router.get("/analytics/invoiced-usage", summary="Usage fees invoiced per month and metric")
def invoiced_usage(session: SessionDep, asked: AskedDep) -> UsageAmounts:
    figures = analytics.invoiced_usage(session, asked.scope, asked.window)
    return UsageAmounts(data=[UsageAmount.of(f) for f in figures])


@router.get(
    "/analytics/overdue-balances",
    summary="What is still due on invoices past their due date, per currency",
)
def overdue_balances(
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    currency: Currency = None,
    start: Annotated[
        str | None, Query(alias="from", description="only invoices due from this month")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="only invoices due up to this month, included")
    ] = None,
    customer_id: Customer = None,
) -> OverdueBalances:
    scope = _scope(tenant, currency, customer_id)
    first, last = parse_month(start, "from"), parse_month(end, "to")
    win = analytics.due_window(first, last) if first or last else None
    now = runtime.clock.now()
    balances = analytics.overdue_balances(session, scope, now, win)
    return OverdueBalances(data=[OverdueBalance.of(b) for b in balances])
