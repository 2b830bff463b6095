"""Request dependencies: the runtime, a ledger session, the authenticated tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from invoicing.tenants import tenant_for_key
from meterline.errors import Forbidden, Unauthorized
from meterline.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """A session per request; the request's work commits at the end, or rolls back."""
    with runtime.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def current_tenant(request: Request, runtime: RuntimeDep) -> str:
    """The tenant of the request: a valid key, and the X-Tenant-Id it belongs to."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send 'Authorization: Bearer <api key>'")
    key = key.strip()

    def lookup() -> str | None:
        with runtime.sessions() as session:
            return tenant_for_key(session, key)

    # Looked up on every request (one indexed read): a revoked key stops working at once.
    owner = await asyncio.to_thread(lookup)
    if owner is None:
        raise Unauthorized("the API key is not valid")
    tenant = request.headers.get("x-tenant-id")
    if not tenant:
        raise Unauthorized("send the 'X-Tenant-Id' header with your tenant id")
    if tenant != owner:
        raise Forbidden("this API key does not belong to that tenant")
    return owner


TenantDep = Annotated[str, Depends(current_tenant)]
