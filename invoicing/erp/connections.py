"""A tenant's ERP connections: connect, authorize (OAuth), test, disconnect.

`connect` checks the config against the provider's model and keeps its secrets sealed.
A connector without OAuth (NetSuite, the custom webhook) is `active` at once; an OAuth
one (QuickBooks, Xero) is `pending_authorization` with an `authorizeUrl` carrying a
random `state` (and Xero's S256 PKCE challenge) until `GET /erp/oauth/callback` brings
the code back. Only one connection may be active or awaiting authorization at a time
unless the tenant turned `multiErp` on (a second is a 409). `disconnect` stops future
syncs only: the rows stay for the log and whatever the ERP holds stays there.

A test on connect proves the credentials work (NetSuite at once, OAuth ones at the
callback); its outcome is kept on the connection, it never blocks it. A custom webhook
is not called on connect (its endpoint would receive a body that is not a document):
`test` sends it a signed `erp.test` ping when asked.

Every call to a vendor happens outside a ledger transaction: the functions that talk
to one take the session factory.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, InvalidInput, NotFound, UpstreamFailed
from invoicing import tenant_settings
from invoicing.erp.base import (
    OAUTH_PROVIDERS,
    Connector,
    Context,
    Credentials,
    OAuthConnector,
    SyncError,
)
from invoicing.erp.connectors import adapter
from invoicing.models import ErpConnectionRow, new_id
from invoicing.secrets import SecretBox

LIVE = ("active", "pending_authorization")
FETCHED = ("url", "baseUrl", "tokenUrl")  # config URLs the server itself calls


@dataclass(frozen=True)
class Opened:
    """A connection's provider, plain config and credentials, for building its connector."""

    id: str
    tenant_id: str
    provider: str
    config: dict[str, Any]
    credentials: Credentials


def connect(
    sessions: sessionmaker[Session],
    tenant_id: str,
    provider: str,
    config: Mapping[str, Any],
    box: SecretBox,
    context: Context,
    *,
    check_url: Callable[[str], object] | None = None,
) -> ErpConnectionRow:
    """A new connection (`check_url(url)` vets a custom webhook's destination)."""
    found = adapter(provider)
    found.connector(config, Credentials(), context).close()  # the config is checked here
    if check_url is not None:
        for key in FETCHED:
            if isinstance(config.get(key), str):
                check_url(config[key])
    now = context.now()
    row = ErpConnectionRow(
        id=new_id("erp"),
        tenant_id=tenant_id,
        provider=provider,
        status="active",
        config=_seal_config(dict(config), found.secrets, box),
        created_at=now,
        updated_at=now,
    )
    with sessions() as session, session.begin():
        _may_add(session, tenant_id)
        if found.oauth:
            state = secrets.token_urlsafe(32)
            connector = _oauth(found.connector(config, Credentials(), context))
            authorization = connector.authorize(state)
            connector.close()
            row.status = "pending_authorization"
            row.oauth_state = _digest(state)
            row.authorize_url = box.seal(authorization.url)
            if authorization.code_verifier is not None:
                row.code_verifier = box.seal(authorization.code_verifier)
        else:
            row.activated_at = now
        session.add(row)
        session.flush()
        session.expunge(row)
    if not found.oauth and provider != "custom_webhook":
        return test(sessions, tenant_id, row.id, box, context)
    return row


def complete(
    sessions: sessionmaker[Session],
    state: str,
    code: str,
    params: Mapping[str, str],
    box: SecretBox,
    context: Context,
    *,
    tenant_id: str | None = None,
) -> ErpConnectionRow:
    """The OAuth callback: the code traded for tokens, the connection active and tested.
    `tenant_id`, when the caller presented a key, must be the connection's tenant."""
    with sessions() as session:
        row = session.execute(
            select(ErpConnectionRow).where(ErpConnectionRow.oauth_state == _digest(state))
        ).scalar_one_or_none()
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise InvalidInput(
                "state does not match a connection awaiting authorization",
                code="invalid_state",
            )
        if row.status != "pending_authorization":
            raise Conflict(f"connection {row.id} is {row.status}", code="invalid_state")
        opened = _opened(row, box)
        verifier = box.open(row.code_verifier) if row.code_verifier else None
    connector = _oauth(build(opened, context))
    try:
        credentials = connector.complete(code, verifier, params)
    except SyncError as error:
        raise UpstreamFailed(
            f"{opened.provider} refused the authorization code: {error.message}",
            code="authorization_failed",
            details={"responseCode": error.response_code},
        ) from None
    finally:
        connector.close()
    now = context.now()
    with sessions() as session, session.begin():
        current = session.get(ErpConnectionRow, opened.id)
        assert current is not None
        if current.status != "pending_authorization":
            raise Conflict(f"connection {current.id} is {current.status}", code="invalid_state")
        if not tenant_settings.get(session, current.tenant_id).multi_erp and _active(
            session, current.tenant_id
        ):
            raise Conflict(
                "another ERP is already connected; disconnect it or turn multiErp on",
                code="erp_already_connected",
            )
        current.status = "active"
        current.credentials = box.seal(json.dumps(credentials.as_dict()))
        current.account = credentials.account
        current.oauth_state = None
        current.code_verifier = None
        current.authorize_url = None
        current.activated_at = now
        current.updated_at = now
    return test(sessions, opened.tenant_id, opened.id, box, context)


def test(
    sessions: sessionmaker[Session],
    tenant_id: str,
    connection_id: str,
    box: SecretBox,
    context: Context,
) -> ErpConnectionRow:
    """Call the ERP harmlessly and keep what it answered on the connection."""
    with sessions() as session:
        row = get(session, tenant_id, connection_id)
        if row.status != "active":
            raise Conflict(f"connection {row.id} is {row.status}", code="not_active")
        opened = _opened(row, box)
    connector = build(opened, context)
    status, code, error = "SUCCESS", None, None
    try:
        code = connector.test()
    except SyncError as failure:
        status, code, error = "FAILED", failure.response_code, failure.message
    finally:
        connector.close()
    with sessions() as session, session.begin():
        current = get(session, tenant_id, connection_id)
        save_credentials(current, getattr(connector, "credentials", None), box)
        current.test_at = context.now()
        current.test_status, current.test_code, current.test_error = status, code, error
        session.flush()
        session.expunge(current)
        return current


def disconnect(session: Session, tenant_id: str, connection_id: str, now: datetime) -> None:
    """Stop future syncs; what is pending is given up, the log stays."""
    row = get(session, tenant_id, connection_id)
    if row.status == "disconnected":
        return
    row.status = "disconnected"
    row.disconnected_at = now
    row.updated_at = now
    row.oauth_state = None


def get(session: Session, tenant_id: str, connection_id: str) -> ErpConnectionRow:
    row = session.get(ErpConnectionRow, connection_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"ERP connection {connection_id!r} not found")
    return row


def list_connections(session: Session, tenant_id: str) -> list[ErpConnectionRow]:
    """Newest first."""
    return list(
        session.execute(
            select(ErpConnectionRow)
            .where(ErpConnectionRow.tenant_id == tenant_id)
            .order_by(ErpConnectionRow.created_at.desc(), ErpConnectionRow.id.desc())
        ).scalars()
    )


def active(session: Session, tenant_id: str) -> list[ErpConnectionRow]:
    return list(
        session.execute(
            select(ErpConnectionRow)
            .where(ErpConnectionRow.tenant_id == tenant_id, ErpConnectionRow.status == "active")
            .order_by(ErpConnectionRow.created_at, ErpConnectionRow.id)
        ).scalars()
    )


def public_config(row: ErpConnectionRow, box: SecretBox) -> dict[str, Any]:
    """The config as answered: secrets masked to their last four characters."""
    secret_keys = adapter(row.provider).secrets
    shown: dict[str, Any] = {}
    for key, value in row.config.items():
        if key in secret_keys and isinstance(value, str):
            plain = box.open(value)
            shown[key] = f"…{plain[-4:]}" if len(plain) > 8 else "…"
        else:
            shown[key] = value
    return shown


def authorize_url(row: ErpConnectionRow, box: SecretBox) -> str | None:
    return box.open(row.authorize_url) if row.authorize_url else None


def opened(row: ErpConnectionRow, box: SecretBox) -> Opened:
    return _opened(row, box)


def build(opened: Opened, context: Context) -> Connector:
    return adapter(opened.provider).connector(opened.config, opened.credentials, context)


def save_credentials(row: ErpConnectionRow, credentials: object, box: SecretBox) -> None:
    """Keep tokens a connector refreshed (sealed)."""
    if isinstance(credentials, Credentials) and credentials.changed:
        row.credentials = box.seal(json.dumps(credentials.as_dict()))
        row.account = credentials.account or row.account


def _opened(row: ErpConnectionRow, box: SecretBox) -> Opened:
    secret_keys = adapter(row.provider).secrets
    config = {
        key: box.open(value) if key in secret_keys and isinstance(value, str) else value
        for key, value in row.config.items()
    }
    credentials = (
        Credentials.from_dict(json.loads(box.open(row.credentials)))
        if row.credentials
        else Credentials()
    )
    return Opened(row.id, row.tenant_id, row.provider, config, credentials)


def _seal_config(
    config: dict[str, Any], secret_keys: frozenset[str], box: SecretBox
) -> dict[str, Any]:
    return {
        key: box.seal(value) if key in secret_keys and isinstance(value, str) else value
        for key, value in config.items()
    }


def _may_add(session: Session, tenant_id: str) -> None:
    if tenant_settings.get(session, tenant_id).multi_erp:
        return
    live = session.execute(
        select(ErpConnectionRow.id).where(
            ErpConnectionRow.tenant_id == tenant_id, ErpConnectionRow.status.in_(LIVE)
        )
    ).first()
    if live is not None:
        raise Conflict(
            f"ERP connection {live[0]} is already connected; disconnect it first or "
            'turn multi-ERP mode on (PUT /api/v1/settings {"multiErp": true})',
            code="erp_already_connected",
        )


def _active(session: Session, tenant_id: str) -> bool:
    return bool(active(session, tenant_id))


def _oauth(connector: Connector) -> OAuthConnector:
    if not hasattr(connector, "authorize"):
        raise InvalidInput(f"{connector.provider} does not use OAuth")
    return connector  # type: ignore[return-value]


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def is_oauth(provider: str) -> bool:
    return provider in OAUTH_PROVIDERS
