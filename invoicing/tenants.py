"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from invoicing.models import ApiKey, CreditNoteSequence, InvoiceSequence, Tenant, new_id


@dataclass(frozen=True)
class TenantCredentials:
    tenant_id: str
    api_key: str


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_tenant(session: Session, name: str) -> TenantCredentials:
    """A new tenant with one API key (the key is returned once, only its hash is kept)."""
    tenant = Tenant(id=new_id("ten"), name=name)
    api_key = "ml_" + secrets.token_urlsafe(32)
    session.add(tenant)
    session.flush()
    session.add(
        ApiKey(
            id=new_id("key"), tenant_id=tenant.id, key_hash=hash_key(api_key), prefix=api_key[:10]
        )
    )
    session.add(InvoiceSequence(tenant_id=tenant.id, next_value=1))
    session.add(CreditNoteSequence(tenant_id=tenant.id, next_value=1))
    return TenantCredentials(tenant.id, api_key)


def tenant_for_key(session: Session, api_key: str) -> str | None:
    """The tenant id an API key belongs to, or None for an unknown or revoked key."""
    row = session.execute(
        select(ApiKey.tenant_id).where(
            ApiKey.key_hash == hash_key(api_key), ApiKey.revoked_at.is_(None)
        )
    ).first()
    return row[0] if row else None


@dataclass(frozen=True)
class KeyOwner:
    tenant_id: str
    key_id: str  # the key's id (api_keys.id): what logs name, never the key


def key_owner(session: Session, api_key: str) -> KeyOwner | None:
    """The tenant and id of an API key, or None for an unknown or revoked key."""
    row = session.execute(
        select(ApiKey.tenant_id, ApiKey.id).where(
            ApiKey.key_hash == hash_key(api_key), ApiKey.revoked_at.is_(None)
        )
    ).first()
    return KeyOwner(row[0], row[1]) if row else None


def tenant_exists(session: Session, tenant_id: str) -> bool:
    return session.get(Tenant, tenant_id) is not None
