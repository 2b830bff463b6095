"""The operator's session: an opaque cookie, and the CSRF token of its forms.

Signing in with a tenant's API key gives a cookie whose value is the session sealed
with the ledger's secret box (Fernet: AES with an HMAC-SHA256 tag, so it can be neither
read nor forged): tenant id, API key id (never the key), a random CSRF token and the
expiry, on the runtime's clock. Every request re-reads the key: revoking it ends its
sessions at once. The cookie is HttpOnly, SameSite=Strict, scoped to /dashboard, and
Secure when the request came over https.

State-changing requests must carry the session's CSRF token (form field `csrf_token`
or header `X-CSRF-Token`), and, when the browser sends an Origin, come from this origin.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response

from api.deps import RuntimeDep
from api.ports import ApiRuntime
from invoicing.operations import key_active

COOKIE = "meterline_dashboard"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LIFETIME = timedelta(hours=8)  # absolute: a working day, then sign in again
PATH = "/dashboard"


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, data answers 401."""


class CsrfRefused(Exception):
    """A state-changing request without this session's token, or from another origin."""


@dataclass(frozen=True)
class OperatorSession:
    tenant_id: str
    key_id: str
    csrf: str
    expires_at: datetime


def new_session(tenant_id: str, key_id: str, now: datetime) -> OperatorSession:
    return OperatorSession(tenant_id, key_id, secrets.token_urlsafe(32), now + LIFETIME)


def seal(runtime: ApiRuntime, session: OperatorSession) -> str:
    payload = {
        "t": session.tenant_id,
        "k": session.key_id,
        "c": session.csrf,
        "e": session.expires_at.isoformat(),
    }
    return runtime.settings.secrets.seal(json.dumps(payload, separators=(",", ":")))


def unseal(runtime: ApiRuntime, value: str, now: datetime) -> OperatorSession | None:
    """The session in a cookie value, or None when forged, foreign or expired."""
    try:
        payload = json.loads(runtime.settings.secrets.open(value))
        found = OperatorSession(
            tenant_id=str(payload["t"]),
            key_id=str(payload["k"]),
            csrf=str(payload["c"]),
            expires_at=datetime.fromisoformat(payload["e"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return found if found.expires_at > now else None


def set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(LIFETIME.total_seconds()),
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def operator_session(request: Request, runtime: RuntimeDep) -> OperatorSession:
    """The signed-in operator of this request (SignInRequired otherwise)."""
    value = request.cookies.get(COOKIE)
    found = unseal(runtime, value, runtime.clock.now()) if value else None
    if found is None:
        raise SignInRequired()

    def active() -> bool:
        with runtime.sessions() as session:
            return key_active(session, found.tenant_id, found.key_id)

    if not await asyncio.to_thread(active):
        raise SignInRequired()
    return found


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every cross-origin POST; "null" is an opaque origin
        # (a sandboxed frame, a file:// page): refused below by the missing token anyway.
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}", f"https://{host}")


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as single values (last one wins)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def checked_form(request: Request, operator: OperatorSession) -> dict[str, str]:
    """The form of a state-changing request whose CSRF token and origin are right."""
    if not same_origin(request):
        raise CsrfRefused("the request comes from another site")
    fields = await form_fields(request)
    token = request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD, "")
    if not hmac.compare_digest(token.encode(), operator.csrf.encode()):
        raise CsrfRefused("the form's security token is missing or stale; reload the page")
    return fields


Operator = Annotated[OperatorSession, Depends(operator_session)]
