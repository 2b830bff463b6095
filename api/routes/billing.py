"""Bill runs and invoices."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query

from api import serialize
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas import BillRunCreate, PaymentCreate, TaxOverride
from core.errors import ValidationFailed
from invoicing import drafts, invoices
from invoicing.billing import BillRunner, create_bill_run, get_bill_run

router = APIRouter(tags=["billing"])


@router.post("/bill-runs", status_code=202, summary="Start a bill run for a period")
async def start_bill_run(
    body: BillRunCreate, runtime: RuntimeDep, tenant: TenantDep
) -> dict[str, Any]:
    def create() -> str:
        with runtime.session() as session:
            return create_bill_run(session, tenant, body.period_start, body.period_end).id

    run_id = await asyncio.to_thread(create)
    runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, runtime.clock)
    task = asyncio.get_running_loop().run_in_executor(runtime.billing_executor, runner.run, run_id)
    runtime.background.add(task)
    task.add_done_callback(runtime.background.discard)
    return {"id": run_id, "status": "pending"}


@router.get("/bill-runs/{bill_run_id}", summary="Progress and result of a bill run")
def bill_run_status(bill_run_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.bill_run(get_bill_run(session, tenant, bill_run_id))


@router.get("/invoices", summary="List invoices, newest first")
def list_invoices(
    session: SessionDep,
    tenant: TenantDep,
    customer_id: str | None = Query(None, alias="customerId"),
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> dict[str, Any]:
    if status is not None and status.upper() not in invoices.TRANSITIONS:
        raise ValidationFailed(f"status must be one of {', '.join(invoices.TRANSITIONS)}")
    rows = invoices.list_invoices(
        session,
        tenant,
        customer_external_id=customer_id,
        status=status,
        limit=limit + 1,
        before=serialize.decode_cursor(cursor),
    )
    return serialize.page(rows, limit, serialize.invoice)


@router.post("/invoices/finalize-all", summary="Finalize every DRAFT past its grace period")
def finalize_all(runtime: RuntimeDep, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    rows = invoices.finalize_all(
        session, tenant, runtime.settings.invoice_due_days, runtime.clock.now()
    )
    return {"finalized": len(rows), "invoiceIds": [r.id for r in rows]}


@router.get("/invoices/{invoice_id}", summary="Get an invoice with its lines")
def get_invoice(invoice_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.invoice(invoices.get_invoice(session, tenant, invoice_id))


@router.post("/invoices/{invoice_id}/finalize", summary="DRAFT → OPEN, with the next number")
def finalize_invoice(
    invoice_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = invoices.finalize(
        session, tenant, invoice_id, runtime.settings.invoice_due_days, runtime.clock.now()
    )
    return serialize.invoice(row)


@router.post("/invoices/{invoice_id}/refresh", summary="Re-rate a DRAFT with the latest usage")
def refresh_invoice(
    invoice_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    invoice = invoices.get_invoice(session, tenant, invoice_id, lock=True)
    refreshed = drafts.refresh_invoice(
        session, runtime.usage, tenant, invoice, runtime.tax, runtime.clock
    )
    return serialize.invoice(refreshed)


@router.post("/invoices/{invoice_id}/tax-override", summary="Manual tax override on a DRAFT")
def tax_override(
    invoice_id: str, body: TaxOverride, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return serialize.invoice(invoices.override_tax(session, tenant, invoice_id, body.doc()))


@router.post("/invoices/{invoice_id}/void", summary="OPEN or OVERDUE → VOID")
def void_invoice(invoice_id: str, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return serialize.invoice(invoices.void(session, tenant, invoice_id))


@router.post("/invoices/{invoice_id}/payments", summary="Record a payment")
def pay_invoice(
    invoice_id: str, body: PaymentCreate, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = invoices.record_payment(session, tenant, invoice_id, body.amount, body.reference)
    return serialize.invoice(row)
