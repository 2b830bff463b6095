"""A tenant's switches (`GET/PUT /settings`): today only `multiErp`, whether more than
one ERP may be connected at once. A tenant that never set anything has the defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from invoicing.models import TenantSettingsRow


@dataclass(frozen=True)
class TenantSettings:
    multi_erp: bool = False


def get(session: Session, tenant_id: str) -> TenantSettings:
    row = session.get(TenantSettingsRow, tenant_id)
    return TenantSettings() if row is None else TenantSettings(multi_erp=row.multi_erp)


def update(
    session: Session, tenant_id: str, now: datetime, *, multi_erp: bool | None = None
) -> TenantSettings:
    """Change what is given, keep the rest."""
    row = session.get(TenantSettingsRow, tenant_id)
    if row is None:
        row = TenantSettingsRow(tenant_id=tenant_id, multi_erp=False, updated_at=now)
        session.add(row)
    if multi_erp is not None:
        row.multi_erp = multi_erp
    row.updated_at = now
    session.flush()
    return TenantSettings(multi_erp=row.multi_erp)
