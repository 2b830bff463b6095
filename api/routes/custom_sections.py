"""Invoice custom sections: CRUD of the tenant's reusable invoice text blocks
(docs/invoice-custom-sections.md)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.custom_sections import SectionCreate, SectionPublic, SectionUpdate
from invoicing import custom_sections

router = APIRouter(tags=["invoice custom sections"])

PATH = "/invoice-custom-sections"


@router.post(PATH, status_code=201, summary="Create an invoice custom section")
def create_section(
    body: SectionCreate,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
) -> SectionPublic:
    row = custom_sections.create_section(session, tenant, body.to_spec(), runtime.clock.now())
    record(
        session, "invoice_custom_section.created", "invoice_custom_section", row.code, sent(body)
    )
    return SectionPublic.from_row(row)


@router.get(PATH, summary="List invoice custom sections, newest first")
def list_sections(
    session: SessionDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    applies_to_all: bool | None = Query(None, alias="appliesToAll"),
) -> Page[SectionPublic]:
    page = custom_sections.list_sections(
        session, tenant, limit=limit, cursor=cursor, applies_to_all=applies_to_all
    )
    return Page[SectionPublic].of(page, SectionPublic.from_row)


@router.get(PATH + "/{code}", summary="Get an invoice custom section")
def get_section(code: str, session: SessionDep, tenant: TenantDep) -> SectionPublic:
    return SectionPublic.from_row(custom_sections.get_section(session, tenant, code))


@router.patch(
    PATH + "/{code}",
    summary="Update an invoice custom section (issued invoices keep their copy)",
)
def update_section(
    code: str,
    body: SectionUpdate,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
    record: ActivityDep,
) -> SectionPublic:
    row = custom_sections.update_section(session, tenant, code, body.to_spec(), runtime.clock.now())
    record(session, "invoice_custom_section.updated", "invoice_custom_section", code, sent(body))
    return SectionPublic.from_row(row)


@router.delete(
    PATH + "/{code}",
    status_code=204,
    response_class=Response,
    summary="Delete an invoice custom section (soft: invoices keep their copy)",
)
def delete_section(
    code: str, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep, record: ActivityDep
) -> None:
    custom_sections.delete_section(session, tenant, code, runtime.clock.now())
    record(session, "invoice_custom_section.deleted", "invoice_custom_section", code, {})
