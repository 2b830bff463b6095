"""The activity recorder a changing route asks for (`ActivityDep`).

A route calls it after the domain call, on the session of the change: the entry commits
with the change, and an error of the change (any 4xx) rolls both back. The actor is the
request's API key, by id (`current_tenant` puts it on the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, TenantDep
from core.clock import Clock
from invoicing import activity
from invoicing.activity import Actor


@dataclass(frozen=True)
class Recorder:
    tenant_id: str
    actor: Actor
    clock: Clock
    request_id: str | None = None

    def __call__(
        self,
        session: Session,
        action: str,
        resource_type: str,
        resource_id: str,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """One entry, in `session` (the change's): `action` is `<resource>.<verb>`."""
        activity.record(
            session,
            self.tenant_id,
            self.actor,
            self.clock.now(),
            action,
            resource_type,
            resource_id,
            changes,
            self.request_id,
        )


def get_recorder(request: Request, tenant: TenantDep, runtime: RuntimeDep) -> Recorder:
    key_id = getattr(request.state, "api_key_id", None)
    request_id = getattr(request.state, "request_id", None)
    return Recorder(tenant, Actor("api_key", key_id), runtime.clock, request_id)


ActivityDep = Annotated[Recorder, Depends(get_recorder)]
# For a route that other code also calls as a function (the dashboard's invoice
# actions): a request always gets a recorder, a direct caller passes its own or None.
MaybeActivityDep = Annotated[Recorder | None, Depends(get_recorder)]


def sent(body: BaseModel | None) -> dict[str, Any] | None:
    """The fields a request body set, as sent (camelCase, JSON values): an entry's
    `changes` (redacted by the activity log)."""
    if body is None:
        return None
    fields: dict[str, Any] = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return fields or None
