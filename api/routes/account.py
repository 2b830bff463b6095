"""The customer's portal link (tenant API) and the read-only account API (portal token).

`POST /customers/{externalId}/portal-url` is the tenant's: it signs a token for one
customer. `GET /account/*` answers to that token only (no X-Tenant-Id: the token names
the tenant), for that customer only; docs/portal.md has the rules.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from api.deps import RuntimeDep, TenantDep
from api.portal import reads
from api.portal.access import AccountDep, signing_key
from api.schemas.account import AccountSubscription, AccountUsage, PortalUrlCreate, PortalUrlPublic
from api.schemas.billing import InvoicePublic
from api.schemas.catalog import PlanPublic
from api.schemas.common import Page
from api.schemas.credits import WalletPublic
from invoicing import catalog
from invoicing.portal_tokens import ACCESS, issue

router = APIRouter(tags=["account"])

# Billing data of one person's account: never kept by a shared cache or the browser's.
PRIVATE = {"Cache-Control": "no-store"}


@router.post(
    "/customers/{external_id}/portal-url",
    status_code=201,
    summary="A signed, expiring link to the customer's portal, and its account API token",
)
def create_portal_url(
    external_id: str,
    runtime: RuntimeDep,
    tenant: TenantDep,
    response: Response,
    body: PortalUrlCreate | None = None,
) -> PortalUrlPublic:
    lifetime = timedelta(minutes=(body or PortalUrlCreate()).expires_in_minutes)
    with runtime.sessions() as session:
        customer = catalog.get_customer(session, tenant, external_id)
        customer_id = customer.id
    token, grant = issue(
        signing_key(runtime, ACCESS), tenant, customer_id, runtime.clock.now(), lifetime
    )
    base = runtime.settings.public_url.rstrip("/")
    response.headers.update(PRIVATE)
    return PortalUrlPublic(
        url=f"{base}/portal?{urlencode({'token': token})}", token=token, expires_at=grant.expires_at
    )


@router.get("/account/subscription", summary="The customer's current subscription and plan")
def account_subscription(
    runtime: RuntimeDep, holder: AccountDep, response: Response
) -> AccountSubscription:
    response.headers.update(PRIVATE)
    return reads.subscription(runtime, holder)


@router.get(
    "/account/usage",
    summary="The current period's usage against included and capped quantities, and the "
    "projected invoice",
    response_model_exclude_none=True,
)
async def account_usage(
    runtime: RuntimeDep, holder: AccountDep, response: Response
) -> AccountUsage:
    response.headers.update(PRIVATE)
    return await asyncio.to_thread(reads.usage, runtime, holder)


@router.get("/account/invoices", summary="The customer's invoices (not drafts), newest first")
def account_invoices(
    runtime: RuntimeDep,
    holder: AccountDep,
    response: Response,
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[InvoicePublic]:
    response.headers.update(PRIVATE)
    return reads.invoices(runtime, holder, status=status, limit=limit, cursor=cursor)


@router.get("/account/invoices/{invoice_id}", summary="One of the customer's invoices")
def account_invoice(
    invoice_id: str, runtime: RuntimeDep, holder: AccountDep, response: Response
) -> InvoicePublic:
    response.headers.update(PRIVATE)
    return reads.invoice(runtime, holder, invoice_id)


@router.get(
    "/account/invoices/{invoice_id}/pdf",
    summary="One of the customer's invoices as a PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF document"}},
)
async def account_invoice_pdf(invoice_id: str, runtime: RuntimeDep, holder: AccountDep) -> Response:
    name, body = await asyncio.to_thread(reads.invoice_pdf, runtime, holder, invoice_id)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"', **PRIVATE},
    )


@router.get("/account/wallet", summary="The customer's prepaid wallets and their balances")
def account_wallet(
    runtime: RuntimeDep, holder: AccountDep, response: Response
) -> Page[WalletPublic]:
    response.headers.update(PRIVATE)
    return reads.wallets(runtime, holder)


@router.get("/account/plans", summary="Plans the customer could subscribe to (its currency)")
def account_plans(
    runtime: RuntimeDep,
    holder: AccountDep,
    response: Response,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[PlanPublic]:
    response.headers.update(PRIVATE)
    return reads.plans(runtime, holder, limit=limit, cursor=cursor)
