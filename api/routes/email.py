"""Email: send an invoice, a credit note or a payment receipt (again), to the
customer or to other recipients, and what became of each email (docs/email.md)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.email import EmailDeliveryList, EmailDeliveryPublic, EmailRequest
from core.errors import Conflict
from invoicing.email import queue

router = APIRouter(tags=["email"])

Status = Literal["pending", "sent", "failed"]


def _queue(
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: str,
    kind: str,
    object_id: str,
    body: EmailRequest | None,
) -> EmailDeliveryPublic:
    if runtime.settings.smtp is None:
        raise Conflict(
            "email is not configured on this server (METERLINE_SMTP_HOST)",
            code="email_not_configured",
        )
    body = body or EmailRequest()
    row = queue.request(
        session, tenant, kind, object_id, runtime.clock.now(), to=body.to, cc=body.cc, bcc=body.bcc
    )
    return EmailDeliveryPublic.from_row(row)


@router.post(
    "/invoices/{invoice_id}/email",
    status_code=202,
    summary="Email a finalized invoice, its PDF attached",
)
def email_invoice(
    invoice_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    body: EmailRequest | None = None,
) -> EmailDeliveryPublic:
    return _queue(runtime, session, tenant, "invoice", invoice_id, body)


@router.post(
    "/credit-notes/{note_id}/email",
    status_code=202,
    summary="Email an issued credit note, its PDF attached",
)
def email_credit_note(
    note_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    body: EmailRequest | None = None,
) -> EmailDeliveryPublic:
    return _queue(runtime, session, tenant, "credit_note", note_id, body)


@router.post(
    "/payments/{payment_id}/email", status_code=202, summary="Email the receipt of a payment"
)
def email_receipt(
    payment_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    body: EmailRequest | None = None,
) -> EmailDeliveryPublic:
    return _queue(runtime, session, tenant, "receipt", payment_id, body)


@router.get("/email-deliveries", summary="Emails queued, sent and failed, newest first")
def list_deliveries(
    session: SessionDep,
    tenant: TenantDep,
    object_id: str | None = Query(None, alias="objectId"),
    status: Status | None = None,
    limit: int = Query(100, ge=1, le=500),
) -> EmailDeliveryList:
    rows = queue.list_deliveries(session, tenant, object_id=object_id, status=status, limit=limit)
    return EmailDeliveryList(data=[EmailDeliveryPublic.from_row(row) for row in rows])


@router.get("/email-deliveries/{delivery_id}", summary="One email and its attempts")
def get_delivery(delivery_id: str, session: SessionDep, tenant: TenantDep) -> EmailDeliveryPublic:
    return EmailDeliveryPublic.from_row(queue.get_delivery(session, tenant, delivery_id))
