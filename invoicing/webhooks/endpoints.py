"""Webhook endpoints: where each tenant wants its events, which types, and the secret
that signs them (sealed at rest, never shown again)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from invoicing.events import TYPES
from invoicing.models import WebhookDeliveryRow, WebhookEndpointRow, new_id
from invoicing.secrets import SecretBox

MAX_ENDPOINTS = 20  # per tenant


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    secret: str
    events: Sequence[str] | None = None
    description: str | None = None


@dataclass(frozen=True)
class EndpointChanges:
    url: str | None = None
    secret: str | None = None
    events: Sequence[str] | None = None
    events_set: bool = False  # `events` given (null = every type again)
    description: str | None = None
    status: str | None = None


def create(
    session: Session,
    tenant_id: str,
    spec: EndpointSpec,
    box: SecretBox,
    now: datetime,
    *,
    block_private: bool = False,
) -> WebhookEndpointRow:
    live = select(WebhookEndpointRow.id).where(
        WebhookEndpointRow.tenant_id == tenant_id, WebhookEndpointRow.deleted_at.is_(None)
    )
    if len(session.execute(live).all()) >= MAX_ENDPOINTS:
        raise ValidationFailed(f"at most {MAX_ENDPOINTS} webhook endpoints per tenant")
    row = WebhookEndpointRow(
        id=new_id("we"),
        tenant_id=tenant_id,
        url=check_url(spec.url, block_private=block_private),
        secret=box.seal(_secret(spec.secret)),
        events=_types(spec.events),
        description=spec.description,
        status="enabled",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpointRow:
    row = session.get(WebhookEndpointRow, endpoint_id)
    if row is None or row.tenant_id != tenant_id or row.deleted_at is not None:
        raise NotFound(f"webhook endpoint {endpoint_id!r} not found")
    return row


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpointRow]:
    """Oldest first."""
    return list(
        session.execute(
            select(WebhookEndpointRow)
            .where(
                WebhookEndpointRow.tenant_id == tenant_id, WebhookEndpointRow.deleted_at.is_(None)
            )
            .order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.id)
        ).scalars()
    )


def change(
    session: Session,
    tenant_id: str,
    endpoint_id: str,
    changes: EndpointChanges,
    box: SecretBox,
    now: datetime,
    *,
    block_private: bool = False,
) -> WebhookEndpointRow:
    row = get(session, tenant_id, endpoint_id)
    if changes.url is not None:
        row.url = check_url(changes.url, block_private=block_private)
    if changes.secret is not None:
        row.secret = box.seal(_secret(changes.secret))
    if changes.events_set:
        row.events = _types(changes.events)
    if changes.description is not None:
        row.description = changes.description
    if changes.status is not None:
        row.status = changes.status
    row.updated_at = now
    return row


def delete(session: Session, tenant_id: str, endpoint_id: str, now: datetime) -> None:
    """No more deliveries to it; what was still waiting is given up (the log stays)."""
    row = get(session, tenant_id, endpoint_id)
    row.deleted_at = now
    session.execute(
        update(WebhookDeliveryRow)
        .where(WebhookDeliveryRow.endpoint_id == row.id, WebhookDeliveryRow.status == "pending")
        .values(status="failed", last_error="the endpoint was deleted")
    )


def wants(row: WebhookEndpointRow, type_: str) -> bool:
    return row.status == "enabled" and (row.events is None or type_ in row.events)


def check_url(url: str, *, block_private: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(f"url: {url!r} is not an http(s) URL", code="invalid_url")
    if parts.username or parts.password:
        raise ValidationFailed("url: credentials in the URL are not allowed (use the secret)")
    if block_private and private_host(parts.hostname):
        raise ValidationFailed(
            f"url: {parts.hostname} is a loopback or private address, refused on this server",
            code="private_destination",
        )
    return url


def private_host(host: str) -> bool:
    """True when `host` is, or resolves to, an address not on the public internet."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False  # unresolvable now: the attempt fails and is retried
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return True
    return False


def _secret(value: str) -> str:
    if not value.strip():
        raise ValidationFailed("secret must not be blank")
    return value


def _types(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for index, value in enumerate(values):
        if value not in TYPES:
            raise ValidationFailed(
                f"events[{index}]: {value!r} is not an event type (one of: {', '.join(TYPES)})",
                code="unknown_event_type",
            )
        if value not in out:
            out.append(value)
    if not out:
        raise ValidationFailed("events: give at least one type, or null for every type")
    return out
