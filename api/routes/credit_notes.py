"""Credit notes."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.credit_notes import CreditNoteCreate, CreditNotePublic, EstimatePublic
from invoicing import credit_notes
from invoicing.payments import providers

router = APIRouter(tags=["credit notes"])


@router.get("/credit-notes/estimate", summary="What an invoice can still be credited and refunded")
def estimate(
    session: SessionDep, tenant: TenantDep, invoice_id: str = Query(alias="invoiceId")
) -> EstimatePublic:
    return EstimatePublic.of(credit_notes.estimate(session, tenant, invoice_id))


@router.post("/credit-notes", status_code=201, summary="Create a DRAFT credit note")
def create(
    body: CreditNoteCreate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> CreditNotePublic:
    row = credit_notes.create(session, tenant, body.to_spec(), runtime.clock.now())
    record(session, "credit_note.created", "credit_note", row.id, sent(body))
    return CreditNotePublic.from_row(row)


@router.get("/credit-notes", summary="List credit notes, newest first")
def list_notes(
    session: SessionDep,
    tenant: TenantDep,
    invoice_id: str | None = Query(None, alias="invoiceId"),
    customer_id: str | None = Query(None, alias="customerId"),
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> Page[CreditNotePublic]:
    page = credit_notes.list_notes(
        session,
        tenant,
        invoice_id=invoice_id,
        customer_external_id=customer_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return Page[CreditNotePublic].of(page, CreditNotePublic.from_row)


@router.get("/credit-notes/{note_id}", summary="Get a credit note")
def get(note_id: str, session: SessionDep, tenant: TenantDep) -> CreditNotePublic:
    return CreditNotePublic.from_row(credit_notes.get(session, tenant, note_id))


@router.post("/credit-notes/{note_id}/issue", summary="DRAFT → ISSUED")
def issue(
    note_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> CreditNotePublic:
    row = credit_notes.issue(session, tenant, note_id, runtime.clock.now())
    record(session, "credit_note.issued", "credit_note", note_id)
    return CreditNotePublic.from_row(row)


@router.post(
    "/credit-notes/{note_id}/apply",
    summary="ISSUED → APPLIED: offset lowers what is due, credit becomes balance, refund pays back",
)
def apply(
    note_id: str, runtime: RuntimeDep, tenant: TenantDep, record: ActivityDep
) -> CreditNotePublic:
    now = runtime.clock.now()
    with runtime.session() as session:
        credit_notes.apply(session, tenant, note_id, now)
        record(session, "credit_note.applied", "credit_note", note_id)
    # After the commit: no ledger lock is held while the provider answers.
    credit_notes.send_refund(
        runtime.sessions, tenant, note_id, now, providers.gateways(runtime.settings.secrets)
    )
    with runtime.session() as session:
        return CreditNotePublic.from_row(credit_notes.get(session, tenant, note_id))


@router.post("/credit-notes/{note_id}/void", summary="DRAFT or ISSUED → VOID")
def void(
    note_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> CreditNotePublic:
    row = credit_notes.void(session, tenant, note_id, runtime.clock.now())
    record(session, "credit_note.voided", "credit_note", note_id)
    return CreditNotePublic.from_row(row)
