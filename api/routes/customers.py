"""Customers, their current usage, and subscriptions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.customers import (
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    SubscriptionCreate,
    SubscriptionPublic,
)
from api.schemas.usage import QuotaPublic, UsageFrom, UsagePublic, UsageTo
from invoicing import billing_entities, catalog, custom_sections, customers, subscriptions
from invoicing.billing import BillRunner
from invoicing.quotas import quota_state
from invoicing.usage import customer_usage, projected_usage

router = APIRouter(tags=["customers"])


@router.post("/customers", status_code=201, summary="Create a customer")
def create_customer(
    body: CustomerCreate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> CustomerPublic:
    customers.ensure_reusable(session, tenant, body.external_id)
    entity = billing_entities.entity_for_new_customer(session, tenant, body.billing_entity_code)
    row = catalog.create_customer(session, tenant, body.to_spec())
    row.billing_entity = entity
    if body.metadata is not None:
        customers.set_metadata(row, body.metadata)
    custom_sections.set_customer_sections(
        session,
        tenant,
        row,
        codes=body.invoice_custom_section_codes,
        skip=body.skip_invoice_custom_sections,
    )
    record(session, "customer.created", "customer", row.external_id, sent(body))
    return CustomerPublic.from_row(row)


@router.get("/customers", summary="List and search customers, newest first")
def list_customers(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    country: str | None = None,
    currency: str | None = None,
    q: str | None = Query(None, max_length=200, description="Part of name, email or externalId"),
) -> Page[CustomerPublic]:
    # metadata[key]=value, any number of them (FastAPI declares no such family).
    metadata = {
        name[len("metadata[") : -1]: value
        for name, value in request.query_params.multi_items()
        if name.startswith("metadata[") and name.endswith("]")
    }
    page = customers.search_customers(
        session,
        tenant,
        limit=limit,
        cursor=cursor,
        country=country,
        currency=currency,
        metadata=metadata,
        text=q,
    )
    return Page[CustomerPublic].of(page, CustomerPublic.from_row)


@router.get("/customers/{external_id}", summary="Get a customer")
def get_customer(external_id: str, session: SessionDep, tenant: TenantDep) -> CustomerPublic:
    return CustomerPublic.from_row(catalog.get_customer(session, tenant, external_id))


@router.patch("/customers/{external_id}", summary="Update a customer")
def update_customer(
    external_id: str,
    body: CustomerUpdate,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> CustomerPublic:
    row = catalog.update_customer(session, tenant, external_id, body.to_spec())
    if body.metadata is not None:
        customers.merge_metadata(row, body.metadata)
    if body.billing_entity_code is not None:
        billing_entities.move_customer(session, tenant, row, body.billing_entity_code)
    custom_sections.set_customer_sections(
        session,
        tenant,
        row,
        codes=body.invoice_custom_section_codes,
        skip=body.skip_invoice_custom_sections,
    )
    record(session, "customer.updated", "customer", external_id, sent(body))
    return CustomerPublic.from_row(row)


@router.delete(
    "/customers/{external_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a customer (its subscriptions end now with their final invoices; "
    "its invoices stay)",
)
def delete_customer(
    external_id: str,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
    final_invoice: bool = Query(
        True,
        alias="finalInvoice",
        description="false: no invoice now; each period's bill run bills it up to now",
    ),
) -> None:
    runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, runtime.clock)
    done = customers.delete(
        runtime.sessions, runner, tenant, external_id, runtime.clock.now(),
        final_invoice=final_invoice,
    )  # fmt: skip
    record(
        session,
        "customer.deleted",
        "customer",
        external_id,
        {"terminatedSubscriptions": done.terminated, "finalInvoiceIds": done.invoice_ids},
    )


@router.get(
    "/customers/{external_id}/usage",
    summary="Usage and amount so far (exact)",
    response_model_exclude_none=True,  # cap and blocked are absent where there is no cap
)
async def get_usage(
    external_id: str,
    runtime: RuntimeDep,
    tenant: TenantDep,
    from_: UsageFrom = None,
    to: UsageTo = None,
) -> UsagePublic:
    body = await asyncio.to_thread(
        customer_usage,
        runtime.sessions,
        runtime.usage,
        tenant,
        external_id,
        from_,
        to,
        runtime.clock.now(),
    )
    return UsagePublic.model_validate(body)


@router.get(
    "/customers/{external_id}/usage/projected",
    summary="End-of-period projection",
    response_model_exclude_none=True,
)
async def get_projected(external_id: str, runtime: RuntimeDep, tenant: TenantDep) -> UsagePublic:
    body = await asyncio.to_thread(
        projected_usage,
        runtime.sessions,
        runtime.usage,
        tenant,
        external_id,
        runtime.clock.now(),
    )
    return UsagePublic.model_validate(body)


@router.get(
    "/customers/{external_id}/quota/{metric}",
    summary="May this customer go on? The period's use of a metric against its hard cap",
)
async def get_quota(
    external_id: str, metric: str, runtime: RuntimeDep, tenant: TenantDep
) -> QuotaPublic:
    state = await asyncio.to_thread(
        quota_state,
        runtime.sessions,
        runtime.usage,
        tenant,
        external_id,
        metric,
        runtime.clock.now(),
    )
    return QuotaPublic.model_validate(state.to_api())


@router.post("/subscriptions", status_code=201, summary="Subscribe a customer to a plan")
def create_subscription(
    body: SubscriptionCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> SubscriptionPublic:
    row = catalog.create_subscription(session, tenant, body.to_spec())
    record(session, "subscription.created", "subscription", row.id, sent(body))
    return SubscriptionPublic.from_row(row, runtime.clock.now())


@router.get("/subscriptions", summary="List subscriptions, newest first, with filters")
def list_subscriptions(
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    customer_id: str | None = Query(None, alias="customerId"),
    plan_code: str | None = Query(None, alias="planCode"),
    status: str | None = Query(None, description="pending | active | terminated"),
    overridden: bool | None = Query(None, description="with (true) or without overrides"),
) -> Page[SubscriptionPublic]:
    now = runtime.clock.now()
    page = subscriptions.list_subscriptions(
        session,
        tenant,
        limit=limit,
        cursor=cursor,
        now=now,
        customer_external_id=customer_id,
        plan_code=plan_code,
        status=status,
        overridden=overridden,
    )
    return Page[SubscriptionPublic].of(page, lambda row: SubscriptionPublic.from_row(row, now))


@router.get("/subscriptions/{subscription_id}", summary="Get a subscription")
def get_subscription(
    subscription_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> SubscriptionPublic:
    row = catalog.get_subscription(session, tenant, subscription_id)
    return SubscriptionPublic.from_row(row, runtime.clock.now())
