"""Customers, their current usage, and subscriptions."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import serialize
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas import (
    CustomerCreate,
    CustomerUpdate,
    SubscriptionCreate,
    TerminateBody,
)
from api.usage_schemas import UsageFrom, UsageTo
from invoicing import catalog
from invoicing.models import CustomerRow, SubscriptionRow
from invoicing.usage import customer_usage, projected_usage

router = APIRouter(tags=["customers"])


@router.post("/customers", status_code=201, summary="Create a customer")
def create_customer(body: CustomerCreate, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.customer(catalog.create_customer(session, tenant, body.doc()))


@router.get("/customers", summary="List customers, newest first")
def list_customers(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    query = select(CustomerRow).where(CustomerRow.tenant_id == tenant)
    return serialize.paginate(session, query, CustomerRow, limit, cursor, serialize.customer)


@router.get("/customers/{external_id}", summary="Get a customer")
def get_customer(external_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.customer(catalog.get_customer(session, tenant, external_id))


@router.patch("/customers/{external_id}", summary="Update a customer")
def update_customer(
    external_id: str, body: CustomerUpdate, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return serialize.customer(catalog.update_customer(session, tenant, external_id, body.doc()))


@router.get("/customers/{external_id}/usage", summary="Usage and amount so far (exact)")
async def get_usage(
    external_id: str,
    runtime: RuntimeDep,
    tenant: TenantDep,
    from_: UsageFrom = None,
    to: UsageTo = None,
) -> dict[str, Any]:
    return await asyncio.to_thread(
        customer_usage,
        runtime.sessions,
        runtime.usage,
        tenant,
        external_id,
        from_,
        to,
        runtime.clock.now(),
    )


@router.get("/customers/{external_id}/usage/projected", summary="End-of-period projection")
async def get_projected(external_id: str, runtime: RuntimeDep, tenant: TenantDep) -> dict[str, Any]:
    return await asyncio.to_thread(
        projected_usage,
        runtime.sessions,
        runtime.usage,
        tenant,
        external_id,
        runtime.clock.now(),
    )


@router.post("/subscriptions", status_code=201, summary="Subscribe a customer to a plan")
def create_subscription(
    body: SubscriptionCreate, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = catalog.create_subscription(session, tenant, body.model_dump(by_alias=True))
    session.flush()
    session.refresh(row)
    return serialize.subscription(row)


@router.get("/subscriptions", summary="List subscriptions, newest first")
def list_subscriptions(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    customer_id: str | None = Query(None, alias="customerId"),
) -> dict[str, Any]:
    query = select(SubscriptionRow).where(SubscriptionRow.tenant_id == tenant)
    if customer_id is not None:
        query = query.join(CustomerRow, CustomerRow.id == SubscriptionRow.customer_id).where(
            CustomerRow.external_id == customer_id
        )
    return serialize.paginate(
        session, query, SubscriptionRow, limit, cursor, serialize.subscription
    )


@router.get("/subscriptions/{subscription_id}", summary="Get a subscription")
def get_subscription(
    subscription_id: str, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return serialize.subscription(catalog.get_subscription(session, tenant, subscription_id))


@router.post("/subscriptions/{subscription_id}/terminate", summary="End a subscription now")
def terminate_subscription(
    subscription_id: str, session: SessionDep, tenant: TenantDep, body: TerminateBody | None = None
) -> dict[str, Any]:
    at = body.at if body else None
    return serialize.subscription(
        catalog.terminate_subscription(session, tenant, subscription_id, at)
    )
