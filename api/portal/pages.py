"""The portal's pages at /portal: server-rendered HTML of the account views.

`/portal?token=…` (the link of POST /customers/{id}/portal-url) verifies the token,
sets an HttpOnly, SameSite=Lax session cookie signed for the session purpose with the
token's expiry, and redirects (303) to the same page without the token, so it stays
out of the address bar and history. Every page after that reads the cookie. The pages
are GET only (read-only, nothing to forge), sent with no-store, no referrer and a
content security policy that allows the portal's own CSS and script only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import RuntimeDep
from api.portal import reads
from api.portal.access import SESSION_COOKIE, AccountHolder, holder_for, signing_key
from api.ports import ApiRuntime
from core.errors import DomainError, NotFound, Transient, Unauthenticated
from invoicing.portal_tokens import ACCESS, SESSION, sign, verify
from rating.money import format_money

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC = {"portal.css": "text/css", "portal.js": "text/javascript"}

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
}

T = TypeVar("T")


def _ts(value: Any) -> str:
    """An instant as 2026-11-01 09:00 UTC (the script shows it in the reader's zone)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value or "")


def _day(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC).strftime("%Y-%m-%d") if isinstance(value, datetime) else ""


def _percent(used: Any, of: Any) -> int:
    """used/of as a whole percent for a progress bar (0 when there is nothing to fill)."""
    try:
        whole = Decimal(str(of))
        part = Decimal(str(used))
    except InvalidOperation:
        return 0
    if whole <= 0:
        return 0
    return int((part * 100 / whole).to_integral_value())


def _money(amount: Any, currency: str) -> str:
    """A plan's price as its invoice shows it: 49 USD -> "49.00 USD"."""
    try:
        return f"{format_money(Decimal(str(amount)), currency)} {currency}"
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"


TEMPLATES.filters.update(ts=_ts, iso=_iso, day=_day, money=_money)
TEMPLATES.globals.update(percent=_percent, min=min)


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _refused(error: DomainError) -> HTMLResponse:
    """A page saying why the portal cannot be opened, and what to do."""
    expired = error.code == "token_expired"
    return _page(
        "refused.html",
        status=401,
        title="This link has expired" if expired else "This link is not valid",
        expired=expired,
        message=error.message,
    )


def _holder(request: Request, runtime: ApiRuntime) -> AccountHolder:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated(
            "there is no portal session in this browser; open the portal link you were sent",
            code="no_session",
        )
    return holder_for(runtime, cookie, SESSION)


async def _render(
    request: Request,
    runtime: ApiRuntime,
    section: str,
    template: str,
    load: Callable[[ApiRuntime, AccountHolder], dict[str, Any]],
) -> Response:
    try:
        holder = await asyncio.to_thread(_holder, request, runtime)
    except Unauthenticated as error:
        return _refused(error)
    try:
        context = await asyncio.to_thread(load, runtime, holder)
    except NotFound as error:
        return _page(
            "missing.html", status=404, title="Not found", message=error.message, holder=holder
        )
    return _page(template, section=section, holder=holder, **context)


@router.get("/portal")
async def portal_home(request: Request, runtime: RuntimeDep, token: str | None = None) -> Response:
    """The subscription page; with `?token=` it first trades the token for a session."""
    if token is not None:
        try:
            grant = verify(signing_key(runtime, ACCESS), token, runtime.clock.now())
            await asyncio.to_thread(holder_for, runtime, token, ACCESS)
        except Unauthenticated as error:
            return _refused(error)
        redirect = RedirectResponse("/portal", status_code=303, headers=HEADERS)
        redirect.set_cookie(
            SESSION_COOKIE,
            sign(signing_key(runtime, SESSION), grant),
            max_age=max(1, int((grant.expires_at - runtime.clock.now()).total_seconds())),
            path="/portal",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return redirect

    def load(rt: ApiRuntime, holder: AccountHolder) -> dict[str, Any]:
        view = reads.subscription(rt, holder)
        return {"view": view, "wallets": reads.wallets(rt, holder).data}

    return await _render(request, runtime, "subscription", "subscription.html", load)


@router.get("/portal/usage")
async def portal_usage(request: Request, runtime: RuntimeDep) -> Response:
    def load(rt: ApiRuntime, holder: AccountHolder) -> dict[str, Any]:
        try:
            return {"usage": reads.usage(rt, holder), "unavailable": None}
        except Transient as error:
            return {"usage": None, "unavailable": error.message}

    return await _render(request, runtime, "usage", "usage.html", load)


@router.get("/portal/invoices")
async def portal_invoices(
    request: Request, runtime: RuntimeDep, cursor: str | None = None
) -> Response:
    def load(rt: ApiRuntime, holder: AccountHolder) -> dict[str, Any]:
        return {"page": reads.invoices(rt, holder, limit=25, cursor=cursor)}

    return await _render(request, runtime, "invoices", "invoices.html", load)


@router.get("/portal/invoices/{invoice_id}")
async def portal_invoice(invoice_id: str, request: Request, runtime: RuntimeDep) -> Response:
    def load(rt: ApiRuntime, holder: AccountHolder) -> dict[str, Any]:
        return {"invoice": reads.invoice(rt, holder, invoice_id)}

    return await _render(request, runtime, "invoices", "invoice.html", load)


@router.get("/portal/invoices/{invoice_id}/pdf")
async def portal_invoice_pdf(invoice_id: str, request: Request, runtime: RuntimeDep) -> Response:
    def work() -> tuple[str, bytes]:
        return reads.invoice_pdf(runtime, _holder(request, runtime), invoice_id)

    try:
        name, body = await asyncio.to_thread(work)
    except Unauthenticated as error:
        return _refused(error)
    except NotFound as error:
        return _page("missing.html", status=404, title="Not found", message=error.message)
    headers = {**HEADERS, "Content-Disposition": f'inline; filename="{name}"'}
    return Response(body, media_type="application/pdf", headers=headers)


@router.get("/portal/wallet")
async def portal_wallet(request: Request, runtime: RuntimeDep) -> Response:
    def load(rt: ApiRuntime, holder: AccountHolder) -> dict[str, Any]:
        return {"wallets": reads.wallets(rt, holder).data}

    return await _render(request, runtime, "wallet", "wallet.html", load)


@router.post("/portal/sign-out")
def portal_sign_out() -> Response:
    response = _page("signed_out.html", title="Signed out")
    response.delete_cookie(SESSION_COOKIE, path="/portal", httponly=True, samesite="lax")
    return response


@router.get("/portal/static/{name}")
def portal_static(name: str) -> Response:
    media_type = STATIC.get(name)
    if media_type is None:
        return Response(status_code=404)
    body = (HERE / "static" / name).read_bytes()
    return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=300"})
