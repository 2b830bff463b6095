"""One-off invoices (`POST /invoices`) and fee adjustments of DRAFT lines.

The invoice routes of the bill run (list, get, finalize, refresh …) are in billing.py;
`POST /invoices` is a method that path has nowhere else.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.billing import InvoicePublic
from api.schemas.one_off import AdjustmentIn, OneOffCreate, preview_public
from invoicing import adjustments, one_off

router = APIRouter(tags=["billing"])

ADJUSTMENT = "/invoices/{invoice_id}/lines/{line_id}/adjustment"


@router.post("/invoices", status_code=201, summary="Create a one-off invoice (DRAFT)")
def create_one_off(
    body: OneOffCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> InvoicePublic:
    row = one_off.create_one_off(session, tenant, body.to_spec(), runtime.tax, runtime.clock.now())
    record(session, "invoice.created", "invoice", row.id, sent(body))
    return InvoicePublic.from_row(row)


@router.post(ADJUSTMENT, summary="Adjust a DRAFT line's units and/or unit price (or preview)")
def adjust_line(
    invoice_id: str,
    line_id: str,
    body: AdjustmentIn,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> InvoicePublic:
    if body.preview:
        preview = adjustments.preview_adjustment(
            session, tenant, invoice_id, line_id, body.to_spec()
        )
        return preview_public(preview)
    row = adjustments.adjust_line(
        session, tenant, invoice_id, line_id, body.to_spec(), runtime.clock.now()
    )
    changes = {**(sent(body) or {}), "lineId": line_id}
    record(session, "invoice.line_adjusted", "invoice", invoice_id, changes)
    return InvoicePublic.from_row(row)


@router.delete(ADJUSTMENT, summary="Remove a line's adjustment: the computed line comes back")
def restore_line(
    invoice_id: str,
    line_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> InvoicePublic:
    row = adjustments.restore_line(session, tenant, invoice_id, line_id, runtime.clock.now())
    record(session, "invoice.line_restored", "invoice", invoice_id, {"lineId": line_id})
    return InvoicePublic.from_row(row)
