"""The activity log: who changed what (docs/audit-log.md).

An entry is added to the session of the change it describes, so it commits with it
and a change rolled back leaves no entry. `changes` is what the caller asked to
change, never a secret: `redact` keeps the shape and drops the values that could be
credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from invoicing.models import ActivityRow, new_id
from invoicing.pages import Page, keyset_page

REDACTED = "[redacted]"
# Keys whose values may be credentials: API keys, secrets, tokens, passwords, signatures.
_SECRET_KEY = re.compile(r"secret|token|password|passphrase|key|credential|signature|private", re.I)
# Vendor configurations are credentials and their endpoints: only their keys are kept.
_CONFIG_KEYS = frozenset({"config", "credentials"})
# A URL's path or query can carry a token (https://hooks.example/T000/B000/XXXX).
_URL_KEY = re.compile(r"url$", re.I)


@dataclass(frozen=True)
class Actor:
    """Who made a change: an API key (by id, never the key) or the system itself."""

    type: str  # api_key | system
    id: str | None


@dataclass(frozen=True)
class Filters:
    resource_type: str | None = None
    resource_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def record(
    session: Session,
    tenant_id: str,
    actor: Actor,
    at: datetime,
    action: str,
    resource_type: str,
    resource_id: str,
    changes: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> ActivityRow:
    """Add one entry to the session of the change (it commits or rolls back with it)."""
    row = ActivityRow(
        id=new_id("act"),
        tenant_id=tenant_id,
        created_at=at,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        changes=redact(changes) if changes else None,
        request_id=request_id,
    )
    session.add(row)
    return row


def entries(
    session: Session, tenant_id: str, filters: Filters, *, limit: int, cursor: str | None
) -> Page[ActivityRow]:
    """The tenant's entries, newest first, `since` ≤ at ≤ `until`."""
    query = select(ActivityRow).where(ActivityRow.tenant_id == tenant_id)
    if filters.resource_type is not None:
        query = query.where(ActivityRow.resource_type == filters.resource_type)
    if filters.resource_id is not None:
        query = query.where(ActivityRow.resource_id == filters.resource_id)
    if filters.action is not None:
        query = query.where(ActivityRow.action == filters.action)
    if filters.since is not None:
        query = query.where(ActivityRow.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(ActivityRow.created_at <= filters.until)
    return keyset_page(session, query, ActivityRow, limit, cursor)


def purge(session: Session, tenant_id: str, now: datetime, days: int) -> int:
    """Delete the tenant's entries older than `days` before `now`; how many went."""
    cutoff = now - timedelta(days=days)
    result = session.execute(
        delete(ActivityRow).where(
            ActivityRow.tenant_id == tenant_id, ActivityRow.created_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def redact(value: Any, key: str = "") -> Any:
    """`value` with every credential-like value replaced: values under secret-looking
    keys, every value of a vendor config, and the path and query of URLs."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        if key in _CONFIG_KEYS:
            return {str(k): REDACTED for k in value}
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str) and _URL_KEY.search(key):
        return _origin(value)
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return REDACTED
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
