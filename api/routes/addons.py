"""Add-ons: catalog products billed once, on one-off invoices."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.addons import AddOnCreate, AddOnPublic, AddOnUpdate
from api.schemas.common import Page
from invoicing import addons

router = APIRouter(tags=["catalog"])


@router.post("/add-ons", status_code=201, summary="Create an add-on")
def create_add_on(
    body: AddOnCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> AddOnPublic:
    row = addons.create_add_on(session, tenant, body.to_spec(), runtime.clock.now())
    record(session, "add_on.created", "add_on", row.code, sent(body))
    return AddOnPublic.from_row(row)


@router.get("/add-ons", summary="List add-ons, newest first")
def list_add_ons(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[AddOnPublic]:
    page = addons.list_add_ons(session, tenant, limit=limit, cursor=cursor)
    return Page[AddOnPublic].of(page, AddOnPublic.from_row)


@router.get("/add-ons/{code}", summary="Get an add-on")
def get_add_on(code: str, session: SessionDep, tenant: TenantDep) -> AddOnPublic:
    return AddOnPublic.from_row(addons.get_add_on(session, tenant, code))


@router.patch("/add-ons/{code}", summary="Update an add-on (invoices keep what they copied)")
def update_add_on(
    code: str,
    body: AddOnUpdate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> AddOnPublic:
    row = addons.update_add_on(session, tenant, code, body.to_spec(), runtime.clock.now())
    record(session, "add_on.updated", "add_on", code, sent(body))
    return AddOnPublic.from_row(row)


@router.delete(
    "/add-ons/{code}", status_code=204, response_class=Response, summary="Delete an add-on"
)
def delete_add_on(code: str, session: SessionDep, tenant: TenantDep, record: ActivityDep) -> None:
    addons.delete_add_on(session, tenant, code)
    record(session, "add_on.deleted", "add_on", code)
