"""Who is asking the account API: the customer a portal token (or the portal's session
cookie) names, checked on every request.

A token must verify under its purpose's key, be unexpired, and name a customer that
still exists in that tenant. Tenant API keys do not open the account API (a 403 that
says what to send instead), and portal tokens open nothing else (api/deps.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from api.deps import RuntimeDep
from api.ports import ApiRuntime
from core.errors import PermissionDenied, Unauthenticated
from invoicing import account
from invoicing.portal_tokens import ACCESS, is_portal_token, verify
from invoicing.tenants import tenant_for_key

SESSION_COOKIE = "meterline_portal"


@dataclass(frozen=True)
class AccountHolder:
    """The customer a valid portal token names."""

    tenant_id: str
    customer_id: str  # ledger id
    external_id: str
    name: str
    email: str | None
    currency: str
    expires_at: datetime


def signing_key(runtime: ApiRuntime, purpose: str) -> bytes:
    return runtime.settings.secrets.derive_key(purpose)


def holder_for(runtime: ApiRuntime, token: str, purpose: str) -> AccountHolder:
    """The holder of `token` (signed for `purpose`), or Unauthenticated."""
    grant = verify(signing_key(runtime, purpose), token, runtime.clock.now())
    with runtime.sessions() as session:
        row = account.customer(session, grant.tenant_id, grant.customer_id)
        if row is None:
            raise Unauthenticated(
                "the customer of this portal token no longer exists", code="invalid_token"
            )
        return AccountHolder(
            tenant_id=grant.tenant_id,
            customer_id=row.id,
            external_id=row.external_id,
            name=row.name,
            email=row.email,
            currency=row.currency,
            expires_at=grant.expires_at,
        )


async def account_holder(request: Request, runtime: RuntimeDep) -> AccountHolder:
    """The customer of the request's `Authorization: Bearer <portal token>`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "send 'Authorization: Bearer <portal token>' "
            "(POST /api/v1/customers/{externalId}/portal-url gives one)"
        )
    if not is_portal_token(token):

        def is_api_key() -> bool:
            with runtime.sessions() as session:
                return tenant_for_key(session, token) is not None

        if await asyncio.to_thread(is_api_key):
            raise PermissionDenied(
                "the account API answers to a customer's portal token, not to a tenant API "
                "key: get one with POST /api/v1/customers/{externalId}/portal-url",
                code="portal_token_required",
            )
        raise Unauthenticated("the portal token is malformed", code="invalid_token")
    return await asyncio.to_thread(holder_for, runtime, token, ACCESS)


AccountDep = Annotated[AccountHolder, Depends(account_holder)]
