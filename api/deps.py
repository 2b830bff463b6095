"""Request dependencies: the runtime, a ledger session, the authenticated tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.ports import ApiRuntime, IngestRuntime
from core.errors import PermissionDenied, Unauthenticated
from invoicing.portal_tokens import is_portal_token
from invoicing.tenants import KeyOwner, key_owner


def get_runtime(request: Request) -> ApiRuntime:
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ApiRuntime, Depends(get_runtime)]


def get_ingest_runtime(request: Request) -> IngestRuntime:
    runtime: IngestRuntime = request.app.state.runtime
    return runtime


IngestRuntimeDep = Annotated[IngestRuntime, Depends(get_ingest_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """A session per request; the request's work commits at the end, or rolls back."""
    with runtime.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def current_tenant(request: Request, runtime: IngestRuntimeDep) -> str:
    """The tenant of the request: a valid key, and the X-Tenant-Id it belongs to."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("send 'Authorization: Bearer <api key>'")
    key = key.strip()
    if is_portal_token(key):
        raise Unauthenticated(
            "a portal token opens the customer's account API (/api/v1/account/…) only; "
            "this endpoint needs a tenant API key",
            code="portal_token_not_accepted",
        )

    def lookup() -> KeyOwner | None:
        with runtime.sessions() as session:
            return key_owner(session, key)

    # Looked up on every request (one indexed read): a revoked key stops working at once.
    owner = await asyncio.to_thread(lookup)
    if owner is None:
        raise Unauthenticated("the API key is not valid")
    # The request and activity logs name the key by its id (api/request_log.py).
    request.state.tenant_id, request.state.api_key_id = owner.tenant_id, owner.key_id
    tenant = request.headers.get("x-tenant-id")
    if not tenant:
        raise Unauthenticated("send the 'X-Tenant-Id' header with your tenant id")
    if tenant != owner.tenant_id:
        raise PermissionDenied("this API key does not belong to that tenant")
    return owner.tenant_id


TenantDep = Annotated[str, Depends(current_tenant)]
