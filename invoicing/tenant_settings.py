"""A tenant's switches (`GET/PUT /settings`): `multiErp`, whether more than one ERP may
be connected at once, and how many days the activity and request logs keep
(docs/audit-log.md). A tenant that never set anything has the defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.errors import InvalidInput
from invoicing.models import TenantSettingsRow

ACTIVITY_RETENTION_DAYS = 365
ACTIVITY_RETENTION_BOUNDS = (1, 3650)
REQUEST_LOG_RETENTION_DAYS = 30
REQUEST_LOG_RETENTION_BOUNDS = (1, 365)


@dataclass(frozen=True)
class TenantSettings:
    multi_erp: bool = False
    activity_retention_days: int = ACTIVITY_RETENTION_DAYS
    request_log_retention_days: int = REQUEST_LOG_RETENTION_DAYS


def get(session: Session, tenant_id: str) -> TenantSettings:
    row = session.get(TenantSettingsRow, tenant_id)
    return TenantSettings() if row is None else _of(row)


def update(
    session: Session,
    tenant_id: str,
    now: datetime,
    *,
    multi_erp: bool | None = None,
    activity_retention_days: int | None = None,
    request_log_retention_days: int | None = None,
) -> TenantSettings:
    """Change what is given, keep the rest."""
    _check("activityRetentionDays", activity_retention_days, ACTIVITY_RETENTION_BOUNDS)
    _check("requestLogRetentionDays", request_log_retention_days, REQUEST_LOG_RETENTION_BOUNDS)
    row = session.get(TenantSettingsRow, tenant_id)
    if row is None:
        row = TenantSettingsRow(tenant_id=tenant_id, multi_erp=False, updated_at=now)
        session.add(row)
    if multi_erp is not None:
        row.multi_erp = multi_erp
    if activity_retention_days is not None:
        row.activity_retention_days = activity_retention_days
    if request_log_retention_days is not None:
        row.request_log_retention_days = request_log_retention_days
    row.updated_at = now
    session.flush()
    return _of(row)


def _of(row: TenantSettingsRow) -> TenantSettings:
    return TenantSettings(
        multi_erp=row.multi_erp,
        activity_retention_days=row.activity_retention_days or ACTIVITY_RETENTION_DAYS,
        request_log_retention_days=row.request_log_retention_days or REQUEST_LOG_RETENTION_DAYS,
    )


def _check(name: str, days: int | None, bounds: tuple[int, int]) -> None:
    if days is not None and not bounds[0] <= days <= bounds[1]:
        raise InvalidInput(f"{name} must be between {bounds[0]} and {bounds[1]} days")
