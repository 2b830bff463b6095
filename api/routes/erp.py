"""ERP sync (docs/erp-sync.md): connections and their OAuth callback, a test call, the
sync log, a manual sync; and the tenant's settings (`multiErp`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from api import render
from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.erp import (
    ConnectionCreate,
    ConnectionList,
    ConnectionPublic,
    SettingsPublic,
    SettingsUpdate,
    SyncLogEntry,
    SyncLogPage,
    SyncRequest,
    SyncResult,
)
from api.schemas.money import parse_instant
from core.errors import InvalidInput
from invoicing import tenant_settings
from invoicing.erp import connections, sync
from invoicing.erp.base import Context
from invoicing.webhooks.endpoints import check_url

router = APIRouter(tags=["erp"])

Status = Literal["SUCCESS", "FAILED"]


def _context(runtime: RuntimeDep) -> Context:
    return Context(now=runtime.clock.now, redirect_uri=runtime.settings.erp_redirect_uri)


@router.post("/erp/connections", status_code=201, summary="Connect an ERP")
async def create_connection(
    body: ConnectionCreate, runtime: RuntimeDep, tenant: TenantDep, record: ActivityDep
) -> ConnectionPublic:
    settings = runtime.settings
    row = await asyncio.to_thread(
        connections.connect,
        runtime.sessions,
        tenant,
        body.provider,
        body.config,
        settings.secrets,
        _context(runtime),
        check_url=partial(check_url, block_private=settings.webhook_block_private),
    )

    # `connect` commits itself (it may call the ERP first): the entry follows in a
    # transaction of its own (docs/audit-log.md).
    def recorded() -> None:
        with runtime.session() as session:
            record(session, "erp_connection.created", "erp_connection", row.id, sent(body))

    await asyncio.to_thread(recorded)
    return ConnectionPublic.from_row(row, settings.secrets)


@router.get("/erp/connections", summary="The ERP connections, newest first")
def list_connections(runtime: RuntimeDep, session: SessionDep, tenant: TenantDep) -> ConnectionList:
    box = runtime.settings.secrets
    rows = connections.list_connections(session, tenant)
    return ConnectionList(data=[ConnectionPublic.from_row(r, box) for r in rows])


@router.get("/erp/connections/{connection_id}", summary="Get an ERP connection")
def get_connection(
    connection_id: str, runtime: RuntimeDep, session: SessionDep, tenant: TenantDep
) -> ConnectionPublic:
    row = connections.get(session, tenant, connection_id)
    return ConnectionPublic.from_row(row, runtime.settings.secrets)


@router.delete(
    "/erp/connections/{connection_id}",
    status_code=204,
    response_class=Response,
    summary="Disconnect an ERP (future syncs stop; the log and the ERP's records stay)",
)
def delete_connection(
    connection_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> Response:
    connections.disconnect(session, tenant, connection_id, runtime.clock.now())
    record(session, "erp_connection.disconnected", "erp_connection", connection_id)
    return Response(status_code=204)


@router.post(
    "/erp/connections/{connection_id}/test",
    summary="Call the ERP harmlessly; the outcome is kept as the connection's lastTest",
)
async def test_connection(
    connection_id: str, runtime: RuntimeDep, tenant: TenantDep
) -> ConnectionPublic:
    box = runtime.settings.secrets
    row = await asyncio.to_thread(
        connections.test, runtime.sessions, tenant, connection_id, box, _context(runtime)
    )
    return ConnectionPublic.from_row(row, box)


@router.get(
    "/erp/oauth/callback",
    summary="Where the ERP sends the user back after consent (the state authenticates)",
)
async def oauth_callback(request: Request, runtime: RuntimeDep) -> ConnectionPublic:
    params = dict(request.query_params)
    if "error" in params:
        reason = params.get("error_description") or params["error"]
        raise HTTPException(400, f"the ERP did not authorize the connection: {reason}")
    code, state = params.pop("code", ""), params.pop("state", "")
    if not code or not state:
        raise HTTPException(400, "the callback needs both code and state")
    box = runtime.settings.secrets
    try:
        row = await asyncio.to_thread(
            connections.complete, runtime.sessions, state, code, params, box, _context(runtime)
        )
    except InvalidInput as error:
        raise HTTPException(400, error.message) from None
    return ConnectionPublic.from_row(row, box)


@router.get("/erp/sync-log", summary="Every sync attempt, newest first")
def sync_log(
    session: SessionDep,
    tenant: TenantDep,
    start: str | None = Query(None, alias="from", description="at ≥ from"),
    end: str | None = Query(None, alias="to", description="at ≤ to (a date: that whole day)"),
    status: Status | None = None,
    invoice_id: str | None = Query(None, alias="invoiceId"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
) -> SyncLogPage:
    page = sync.sync_log(
        session,
        tenant,
        since=_instant(start, "from", end=False),
        until=_instant(end, "to", end=True),
        status=status,
        invoice_id=invoice_id,
        limit=limit,
        cursor=cursor,
    )
    return SyncLogPage(
        data=[SyncLogEntry.from_row(r) for r in page.rows], next_cursor=page.next_cursor
    )


@router.post("/erp/sync", summary="Sync an invoice to every connected ERP now")
async def sync_invoice(body: SyncRequest, runtime: RuntimeDep, tenant: TenantDep) -> SyncResult:
    logged = await asyncio.to_thread(
        sync.sync_now,
        runtime.sessions,
        runtime.settings.secrets,
        render.document,
        tenant,
        body.invoice_id,
        _context(runtime),
    )
    return SyncResult(data=[SyncLogEntry.from_row(r) for r in logged])


@router.get("/settings", summary="The tenant's settings")
def get_settings(session: SessionDep, tenant: TenantDep) -> SettingsPublic:
    return SettingsPublic.of(tenant_settings.get(session, tenant))


@router.put("/settings", summary="Change the tenant's settings (what is absent stays)")
def put_settings(
    body: SettingsUpdate,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
) -> SettingsPublic:
    changed = tenant_settings.update(
        session,
        tenant,
        runtime.clock.now(),
        multi_erp=body.multi_erp,
        activity_retention_days=body.activity_retention_days,
        request_log_retention_days=body.request_log_retention_days,
    )
    record(session, "settings.updated", "settings", tenant, sent(body))
    return SettingsPublic.of(changed)


def _instant(value: str | None, name: str, *, end: bool) -> datetime | None:
    if not value:
        return None
    try:
        return parse_instant(value, end=end)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}") from None
