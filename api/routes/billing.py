"""Bill runs and invoices."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query

from api.activity import ActivityDep, MaybeActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.billing import (
    BillRunAccepted,
    BillRunCreate,
    BillRunPublic,
    FinalizeAllResult,
    InvoicePublic,
    TaxOverride,
)
from api.schemas.common import Page
from api.schemas.credit_notes import VoidInvoice
from api.schemas.payments import PaymentCreate, PaymentPublic
from invoicing import credit_notes, drafts, invoices
from invoicing.billing import BillRunner, create_bill_run, get_bill_run
from invoicing.payments import providers
from invoicing.payments.collection import collect
from invoicing.payments.providers import GatewayFactory

router = APIRouter(tags=["billing"])


def _gateways(runtime: RuntimeDep) -> GatewayFactory:
    return providers.gateways(runtime.settings.secrets)


@router.post("/bill-runs", status_code=202, summary="Start a bill run for a period")
async def start_bill_run(
    body: BillRunCreate, runtime: RuntimeDep, tenant: TenantDep, record: ActivityDep
) -> BillRunAccepted:
    def create() -> str:
        with runtime.session() as session:
            run = create_bill_run(session, tenant, body.period_start, body.period_end)
            record(session, "bill_run.started", "bill_run", run.id, sent(body))
            return run.id

    run_id = await asyncio.to_thread(create)
    runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, runtime.clock)
    task = asyncio.get_running_loop().run_in_executor(runtime.billing_executor, runner.run, run_id)
    runtime.background.add(task)
    task.add_done_callback(runtime.background.discard)
    return BillRunAccepted(id=run_id, status="pending")


@router.get("/bill-runs/{bill_run_id}", summary="Progress and result of a bill run")
def bill_run_status(bill_run_id: str, session: SessionDep, tenant: TenantDep) -> BillRunPublic:
    return BillRunPublic.from_row(get_bill_run(session, tenant, bill_run_id))


@router.get("/invoices", summary="List invoices, newest first")
def list_invoices(
    session: SessionDep,
    tenant: TenantDep,
    customer_id: str | None = Query(None, alias="customerId"),
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[InvoicePublic]:
    page = invoices.list_invoices(
        session, tenant, customer_external_id=customer_id, status=status, limit=limit, cursor=cursor
    )
    return Page[InvoicePublic].of(page, InvoicePublic.from_row)


@router.post("/invoices/finalize-all", summary="Finalize every DRAFT past its grace period")
def finalize_all(runtime: RuntimeDep, tenant: TenantDep, record: ActivityDep) -> FinalizeAllResult:
    now = runtime.clock.now()
    with runtime.session() as session:
        ids = [
            row.id
            for row in invoices.finalize_all(
                session, tenant, runtime.settings.invoice_due_days, now
            )
        ]
        for invoice_id in ids:
            record(session, "invoice.finalized", "invoice", invoice_id)
    for invoice_id in ids:  # collected after the commit, as a single finalize is
        collect(runtime.sessions, tenant, invoice_id, "finalize", now, _gateways(runtime))
    return FinalizeAllResult(finalized=len(ids), invoice_ids=ids)


@router.get("/invoices/{invoice_id}", summary="Get an invoice with its lines")
def get_invoice(invoice_id: str, session: SessionDep, tenant: TenantDep) -> InvoicePublic:
    return InvoicePublic.from_row(invoices.get_invoice(session, tenant, invoice_id))


@router.post(
    "/invoices/{invoice_id}/finalize",
    summary="DRAFT → OPEN, with the next number; collects it where the customer has a provider",
)
def finalize_invoice(
    invoice_id: str, runtime: RuntimeDep, tenant: TenantDep, record: MaybeActivityDep = None
) -> InvoicePublic:
    now = runtime.clock.now()
    with runtime.session() as session:
        invoices.finalize(session, tenant, invoice_id, runtime.settings.invoice_due_days, now)
        if record is not None:  # None: called as a function, by a caller that records
            record(session, "invoice.finalized", "invoice", invoice_id)
    # After the commit: no ledger lock is held while the provider answers.
    collect(runtime.sessions, tenant, invoice_id, "finalize", now, _gateways(runtime))
    with runtime.session() as session:
        return InvoicePublic.from_row(invoices.get_invoice(session, tenant, invoice_id))


@router.post("/invoices/{invoice_id}/refresh", summary="Re-rate a DRAFT with the latest usage")
def refresh_invoice(
    invoice_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> InvoicePublic:
    invoice = invoices.get_invoice(session, tenant, invoice_id, lock=True)
    refreshed = drafts.refresh_invoice(
        session, runtime.usage, tenant, invoice, runtime.tax, runtime.clock
    )
    record(session, "invoice.refreshed", "invoice", invoice_id)
    return InvoicePublic.from_row(refreshed)


@router.post("/invoices/{invoice_id}/tax-override", summary="Manual tax override on a DRAFT")
def tax_override(
    invoice_id: str, body: TaxOverride, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> InvoicePublic:
    row = invoices.override_tax(session, tenant, invoice_id, body.to_spec())
    record(session, "invoice.tax_overridden", "invoice", invoice_id, sent(body))
    return InvoicePublic.from_row(row)


@router.post(
    "/invoices/{invoice_id}/void",
    summary="OPEN or OVERDUE → VOID, optionally crediting or refunding what was paid",
)
def void_invoice(
    invoice_id: str,
    runtime: RuntimeDep,
    tenant: TenantDep,
    body: VoidInvoice | None = None,
    record: MaybeActivityDep = None,
) -> InvoicePublic:
    now = runtime.clock.now()
    note = body.credit_note if body else None
    with runtime.session() as session:
        _, created = credit_notes.void_invoice(
            session,
            tenant,
            invoice_id,
            now,
            note.type if note else None,
            note.amount if note else None,
        )
        if record is not None:  # None: called as a function, by a caller that records
            changes = sent(body)
            if created is not None:
                changes = {**(changes or {}), "creditNoteId": created.id}
            record(session, "invoice.voided", "invoice", invoice_id, changes)
    if created is not None:
        # A refund goes out after the commit, as an applied refund note's does.
        credit_notes.send_refund(runtime.sessions, tenant, created.id, now, _gateways(runtime))
    with runtime.session() as session:
        return InvoicePublic.from_row(invoices.get_invoice(session, tenant, invoice_id))


@router.post(
    "/invoices/{invoice_id}/regenerate",
    status_code=201,
    summary="A new DRAFT from a VOID invoice (same period and lines, next revision)",
)
def regenerate_invoice(
    invoice_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> InvoicePublic:
    row = invoices.regenerate(session, tenant, invoice_id, runtime.clock.now())
    record(session, "invoice.regenerated", "invoice", invoice_id, {"draftId": row.id})
    return InvoicePublic.from_row(row)


@router.post(
    "/invoices/{invoice_id}/payments",
    status_code=201,
    summary="Record a payment (at most the amount due); 0 due makes the invoice PAID",
)
def pay_invoice(
    invoice_id: str,
    body: PaymentCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> PaymentPublic:
    row = invoices.record_payment(
        session, tenant, invoice_id, body.amount, body.reference, runtime.clock.now()
    )
    changes = {**(sent(body) or {}), "paymentId": row.id}
    record(session, "invoice.payment_recorded", "invoice", invoice_id, changes)
    return PaymentPublic.from_row(row)
