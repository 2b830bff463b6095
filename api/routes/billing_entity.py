"""The tenant's billing entity (the seller on its invoice documents)."""

from __future__ import annotations

from fastapi import APIRouter

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.billing_entity import BillingEntityPublic, BillingEntityPut
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
