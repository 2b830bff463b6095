"""The account views: one customer's subscription, usage, invoices, wallets and plans,
as the account API returns them and the portal pages show them (one code path)."""

from __future__ import annotations

from decimal import Decimal

from api.portal.access import AccountHolder
from api.ports import ApiRuntime
from api.schemas.account import (
    AccountCustomer,
    AccountSubscription,
    AccountUsage,
    AccountUsageMetric,
    ProjectedInvoice,
    ProjectedLine,
)
from api.schemas.billing import InvoicePublic
from api.schemas.catalog import ChargePublic, PlanPublic
from api.schemas.common import Page
from api.schemas.credits import WalletPublic
from api.schemas.customers import SubscriptionPublic
from api.schemas.usage import UsageMetricPublic
from core.errors import Transient
from invoicing import account, charge_overrides
from invoicing.documents.build import invoice_document
from invoicing.documents.pdf import render_pdf
from invoicing.models import SubscriptionRow
from invoicing.usage import customer_usage, projected_usage
from rating.money import ZERO, format_decimal, format_money
from streams.usage_store import UsageStore


def subscription(runtime: ApiRuntime, holder: AccountHolder) -> AccountSubscription:
    with runtime.sessions() as session:
        rows = account.subscriptions(session, holder.tenant_id, holder.customer_id)
        current = account.current_subscription(rows, runtime.clock.now())
        return AccountSubscription(
            customer=AccountCustomer(
                external_id=holder.external_id,
                name=holder.name,
                email=holder.email,
                currency=holder.currency,
            ),
            subscription=SubscriptionPublic.from_row(current) if current else None,
            plan=_billed_plan(current) if current else None,
        )


def _billed_plan(row: SubscriptionRow) -> PlanPublic:
    """The plan as this subscription bills it: its own charges (added, removed, their
    terms overridden) in place of the plan's (docs/subscription-lifecycle.md)."""
    plan = PlanPublic.from_row(row.plan)
    charges = charge_overrides.charge_docs(row.plan.charges, row.overrides)
    return plan.model_copy(update={"charges": [ChargePublic.model_validate(c) for c in charges]})


def usage(runtime: ApiRuntime, holder: AccountHolder) -> AccountUsage:
    """The current period's read-out, its included quantities and the projected invoice
    (503 `usage_unavailable` where this process has no usage store)."""
    store: UsageStore | None = runtime.usage
    if store is None:
        raise Transient(
            "usage figures are not available from this server (it has no usage store)",
            code="usage_unavailable",
        )
    now = runtime.clock.now()
    tenant, external = holder.tenant_id, holder.external_id
    current = customer_usage(runtime.sessions, store, tenant, external, None, None, now)
    ahead = projected_usage(runtime.sessions, store, tenant, external, now)
    with runtime.sessions() as session:
        included = account.included_quantities(session, tenant, holder.customer_id, now)
        fixed = account.fixed_part(session, tenant, holder.customer_id, now)
    metrics = []
    for item in current["metrics"]:
        allowance = included.get(item["metric"])
        metrics.append(
            AccountUsageMetric.model_validate(
                {
                    **item,
                    "includedQuantity": format_decimal(allowance)
                    if allowance is not None and allowance > 0
                    else None,
                }
            )
        )
    projected = None
    if fixed is not None:
        currency = fixed.currency
        fixed_total = sum((line.amount for line in fixed.lines), ZERO)
        usage_amount = Decimal(ahead["amount"]) if ahead["currency"] == currency else ZERO
        projected = ProjectedInvoice(
            period_start=fixed.period.start,
            period_end=fixed.period.end,
            currency=currency,
            fixed_lines=[
                ProjectedLine(
                    type=str(line.type),
                    description=line.description,
                    amount=format_money(line.amount, currency),
                )
                for line in fixed.lines
            ],
            usage_amount=format_money(usage_amount, currency),
            subtotal=format_money(fixed_total + usage_amount, currency),
            metrics=[UsageMetricPublic.model_validate(m) for m in ahead["metrics"]],
        )
    return AccountUsage.model_validate({**current, "metrics": metrics, "projected": projected})


def invoices(
    runtime: ApiRuntime,
    holder: AccountHolder,
    *,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[InvoicePublic]:
    with runtime.sessions() as session:
        page = account.invoices(
            session, holder.tenant_id, holder.customer_id, status=status, limit=limit, cursor=cursor
        )
        return Page[InvoicePublic].of(page, InvoicePublic.from_row)


def invoice(runtime: ApiRuntime, holder: AccountHolder, invoice_id: str) -> InvoicePublic:
    with runtime.sessions() as session:
        row = account.invoice(session, holder.tenant_id, holder.customer_id, invoice_id)
        return InvoicePublic.from_row(row)


def invoice_pdf(runtime: ApiRuntime, holder: AccountHolder, invoice_id: str) -> tuple[str, bytes]:
    """The invoice's file name and PDF; NotFound unless it is this customer's."""
    with runtime.session() as session:
        account.invoice(session, holder.tenant_id, holder.customer_id, invoice_id)
        document = invoice_document(session, holder.tenant_id, invoice_id)
    return f"{document.number}.pdf", render_pdf(document)


def wallets(runtime: ApiRuntime, holder: AccountHolder) -> Page[WalletPublic]:
    with runtime.sessions() as session:
        page = account.wallets(session, holder.tenant_id, holder.customer_id)
        return Page[WalletPublic].of(page, WalletPublic.from_row)


def plans(
    runtime: ApiRuntime, holder: AccountHolder, *, limit: int = 50, cursor: str | None = None
) -> Page[PlanPublic]:
    with runtime.sessions() as session:
        page = account.available_plans(
            session, holder.tenant_id, holder.currency, limit=limit, cursor=cursor
        )
        return Page[PlanPublic].of(page, PlanPublic.from_row)
