"""Invoice and credit-note documents: the PDF a customer reads and the UBL 2.1 XML a
buyer's system imports. Only finalized invoices and issued credit notes have them (a
DRAFT is a 409)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, TenantDep
from invoicing.documents.build import invoice_document
from invoicing.documents.credit_note import credit_note_document
from invoicing.documents.model import Document
from invoicing.documents.pdf import render_pdf
from invoicing.documents.ubl import render_ubl

router = APIRouter(tags=["documents"])

PDF = "application/pdf"
XML = "application/xml"


def _doc_response(media_type: str, description: str) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {media_type: {}}, "description": description}}


Builder = Callable[[Session, str, str], Document]


async def _render(
    runtime: RuntimeDep,
    tenant: str,
    object_id: str,
    render: Callable[[Document], bytes],
    media_type: str,
    suffix: str,
    build: Builder = invoice_document,
) -> Response:
    def work() -> tuple[str, bytes]:
        with runtime.session() as session:
            document = build(session, tenant, object_id)
        return document.number, render(document)

    # Rendering is CPU work of tens of milliseconds: off the event loop.
    number, body = await asyncio.to_thread(work)
    return Response(
        content=body,
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="{number}.{suffix}"'},
    )


@router.get(
    "/invoices/{invoice_id}/pdf",
    summary="The invoice as a PDF (finalized invoices only)",
    response_class=Response,
    responses=_doc_response(PDF, "The PDF document"),
)
async def invoice_pdf(invoice_id: str, runtime: RuntimeDep, tenant: TenantDep) -> Response:
    return await _render(runtime, tenant, invoice_id, render_pdf, PDF, "pdf")


@router.get(
    "/invoices/{invoice_id}/xml",
    summary="The invoice as UBL 2.1 XML, EN 16931 core (finalized invoices only)",
    response_class=Response,
    responses=_doc_response(XML, "The UBL 2.1 Invoice document"),
)
async def invoice_xml(invoice_id: str, runtime: RuntimeDep, tenant: TenantDep) -> Response:
    return await _render(runtime, tenant, invoice_id, render_ubl, XML, "xml")


@router.get(
    "/credit-notes/{note_id}/pdf",
    summary="The credit note as a PDF (issued notes only)",
    response_class=Response,
    responses=_doc_response(PDF, "The PDF document"),
)
async def credit_note_pdf(note_id: str, runtime: RuntimeDep, tenant: TenantDep) -> Response:
    return await _render(runtime, tenant, note_id, render_pdf, PDF, "pdf", credit_note_document)


@router.get(
    "/credit-notes/{note_id}/xml",
    summary="The credit note as a UBL 2.1 CreditNote, EN 16931 core (issued notes only)",
    response_class=Response,
    responses=_doc_response(XML, "The UBL 2.1 CreditNote document"),
)
async def credit_note_xml(note_id: str, runtime: RuntimeDep, tenant: TenantDep) -> Response:
    return await _render(runtime, tenant, note_id, render_ubl, XML, "xml", credit_note_document)
