"""Billing entities: the sellers named on the tenant's invoices (docs/billing-entities.md).

`/billing-entity` (singular) is the tenant's default entity, as it was before a tenant
could have several; `/billing-entities` are all of them, by code.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.billing_entity import (
    BillingEntityCreate,
    BillingEntityFull,
    BillingEntityPublic,
    BillingEntityPut,
    BillingEntityUpdate,
)
from api.schemas.common import Page
from invoicing import billing_entities

router = APIRouter(tags=["billing entity"])


@router.get("/billing-entity", summary="The seller named on the tenant's invoices")
def get_billing_entity(session: SessionDep, tenant: TenantDep) -> BillingEntityPublic:
    return BillingEntityPublic.from_row(billing_entities.get_billing_entity(session, tenant))


@router.put("/billing-entity", summary="Set the seller named on the tenant's invoices")
def put_billing_entity(
    body: BillingEntityPut,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> BillingEntityPublic:
    row = billing_entities.put_billing_entity(session, tenant, body.to_spec(), runtime.clock.now())
    record(session, "billing_entity.updated", "billing_entity", tenant, sent(body))
    return BillingEntityPublic.from_row(row)


@router.post(
    "/billing-entities",
    status_code=201,
    summary="Create a billing entity (its own invoice numbers, address and taxes)",
)
def create_entity(
    body: BillingEntityCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> BillingEntityFull:
    row = billing_entities.create_entity(session, tenant, body.to_spec(), runtime.clock.now())
    record(session, "billing_entity.created", "billing_entity", row.code, sent(body))
    return BillingEntityFull.from_row(row)


@router.get("/billing-entities", summary="List billing entities, newest first")
def list_entities(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    archived: bool = Query(False, description="true: the archived entities instead"),
) -> Page[BillingEntityFull]:
    page = billing_entities.list_entities(
        session, tenant, limit=limit, cursor=cursor, archived=archived
    )
    return Page[BillingEntityFull].of(page, BillingEntityFull.from_row)


@router.get("/billing-entities/{code}", summary="Get a billing entity")
def get_entity(code: str, session: SessionDep, tenant: TenantDep) -> BillingEntityFull:
    return BillingEntityFull.from_row(billing_entities.get_entity(session, tenant, code))


@router.patch("/billing-entities/{code}", summary="Update a billing entity")
def update_entity(
    code: str,
    body: BillingEntityUpdate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> BillingEntityFull:
    row = billing_entities.update_entity(
        session, tenant, code, body.to_patch(), runtime.clock.now()
    )
    record(session, "billing_entity.updated", "billing_entity", code, sent(body))
    return BillingEntityFull.from_row(row)


@router.delete(
    "/billing-entities/{code}",
    status_code=204,
    response_class=Response,
    summary="Archive a billing entity (refused for the default and while customers use it)",
)
def archive_entity(
    code: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> None:
    billing_entities.archive_entity(session, tenant, code, runtime.clock.now())
    record(session, "billing_entity.archived", "billing_entity", code)
