"""CSV exports, streamed."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import RuntimeDep, TenantDep
from api.schemas.money import start_instant
from core.errors import ValidationFailed
from invoicing import exports

router = APIRouter(tags=["exports"])

CSV = "text/csv; charset=utf-8"


def _instant(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return start_instant(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}") from None


def _filter(
    start: str | None, end: str | None, status: str | None, states: tuple[str, ...]
) -> exports.ExportFilter:
    spec = exports.ExportFilter(_instant(start, "from"), _instant(end, "to"), status or None)
    return exports.check_filter(spec, states)


@router.get(
    "/invoices/export.csv",
    summary="Every line of the issued invoices as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_invoices(
    runtime: RuntimeDep,
    tenant: TenantDep,
    start: str | None = Query(None, alias="from", description="issuedAt ≥ from"),
    end: str | None = Query(None, alias="to", description="issuedAt < to"),
    status: str | None = None,
) -> StreamingResponse:
    spec = _filter(start, end, status, exports.EXPORTED_STATES)
    rows = exports.invoice_rows(runtime.sessions, tenant, spec)
    return StreamingResponse(
        exports.csv_chunks(exports.INVOICE_HEADER, rows),
        media_type=CSV,
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )


@router.get(
    "/credit-notes/export.csv",
    summary="Every credit note as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_credit_notes(
    runtime: RuntimeDep,
    tenant: TenantDep,
    start: str | None = Query(None, alias="from", description="createdAt ≥ from"),
    end: str | None = Query(None, alias="to", description="createdAt < to"),
    status: str | None = None,
) -> StreamingResponse:
    spec = _filter(start, end, status, exports.NOTE_STATES)
    rows = exports.credit_note_rows(runtime.sessions, tenant, spec)
    return StreamingResponse(
        exports.csv_chunks(exports.CREDIT_NOTE_HEADER, rows),
        media_type=CSV,
        headers={"Content-Disposition": 'attachment; filename="credit-notes.csv"'},
    )
