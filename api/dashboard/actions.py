"""Signing in and out, and what an operator does to invoices (finalize, void, the PDF).

The invoice actions are the API's own (api/routes/billing.py, documents), called with
the session's tenant: the same transitions, numbering, collection and refunds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.activity import Recorder
from api.dashboard.render import page
from api.dashboard.session import (
    COOKIE,
    Operator,
    OperatorSession,
    checked_form,
    clear_cookie,
    form_fields,
    new_session,
    same_origin,
    seal,
    set_cookie,
    unseal,
)
from api.deps import RuntimeDep
from api.routes import billing
from core.errors import DomainError
from invoicing.activity import Actor
from invoicing.documents.build import invoice_document
from invoicing.documents.pdf import render_pdf
from invoicing.tenants import KeyOwner, key_owner

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dashboard", include_in_schema=False)

WRONG_KEY = "That API key is not valid (unknown or revoked)."
WRONG_TENANT = "That API key does not belong to this tenant id."
MISSING = "Enter both the tenant id and the API key."


def _next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path only (no open redirect)."""
    if target and target.startswith("/dashboard/") and not target.startswith("//"):
        return target
    return "/dashboard/usage"


@router.get("/sign-in")
def sign_in_page(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    value = request.cookies.get(COOKIE)
    if value and unseal(runtime, value, runtime.clock.now()):
        return RedirectResponse(_next(next), status_code=303)
    return page(request, "sign_in.html", next=_next(next), error=None, tenant_id="")


@router.post("/sign-in")
async def sign_in(request: Request, runtime: RuntimeDep) -> Response:
    fields = await form_fields(request)
    tenant_id = fields.get("tenant_id", "").strip()
    api_key = fields.get("api_key", "").strip()
    target = _next(fields.get("next"))

    def refuse(message: str, status: int) -> HTMLResponse:
        return page(
            request, "sign_in.html", status_code=status, next=target, error=message,
            tenant_id=tenant_id,
        )  # fmt: skip

    if not same_origin(request):
        return refuse("Sign in from the dashboard's own page.", 403)
    if not tenant_id or not api_key:
        return refuse(MISSING, 422)

    def lookup() -> KeyOwner | None:
        with runtime.sessions() as session:
            return key_owner(session, api_key)

    owner = await asyncio.to_thread(lookup)
    if owner is None:
        return refuse(WRONG_KEY, 401)
    if owner.tenant_id != tenant_id:
        return refuse(WRONG_TENANT, 403)
    session = new_session(tenant_id, owner.key_id, runtime.clock.now())
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, seal(runtime, session))
    return response


@router.post("/sign-out")
async def sign_out(request: Request, operator: Operator) -> Response:
    await checked_form(request, operator)
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    clear_cookie(response, request)
    return response


def _recorder(runtime: RuntimeDep, operator: OperatorSession) -> Recorder:
    """The activity log's actor of a dashboard action: the key the operator signed in
    with (by id), as for the same action through the API."""
    return Recorder(operator.tenant_id, Actor("api_key", operator.key_id), runtime.clock)


def _back(fields: dict[str, str], **query: str) -> RedirectResponse:
    status = fields.get("status", "")
    params = {"status": status, **query} if status.isalpha() else query
    text = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    return RedirectResponse(f"/dashboard/invoices?{text}", status_code=303)


@router.post("/invoices/{invoice_id}/finalize")
async def finalize(
    invoice_id: str, request: Request, runtime: RuntimeDep, operator: Operator
) -> Response:
    return await _act(billing.finalize_invoice, "finalized", invoice_id, request, runtime, operator)


@router.post("/invoices/{invoice_id}/void")
async def void(
    invoice_id: str, request: Request, runtime: RuntimeDep, operator: Operator
) -> Response:
    return await _act(billing.void_invoice, "voided", invoice_id, request, runtime, operator)


async def _act(
    action: Callable[..., object],
    done: str,
    invoice_id: str,
    request: Request,
    runtime: RuntimeDep,
    operator: OperatorSession,
) -> Response:
    """An invoice action of the API's own, after the form's CSRF check; back to the
    invoices page with a notice, or the error's code."""
    fields = await checked_form(request, operator)
    try:
        await asyncio.to_thread(
            action, invoice_id, runtime, operator.tenant_id, record=_recorder(runtime, operator)
        )
    except DomainError as exc:
        return _back(fields, error=exc.code)
    return _back(fields, notice=done)


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_pdf(invoice_id: str, runtime: RuntimeDep, operator: Operator) -> Response:
    def work() -> tuple[str, bytes]:
        with runtime.session() as session:
            document = invoice_document(session, operator.tenant_id, invoice_id)
        return document.number, render_pdf(document)

    number, body = await asyncio.to_thread(work)
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )
