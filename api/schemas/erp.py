"""ERP connections, the sync log, a manual sync, and the tenant's settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Public
from api.schemas.money import Timestamp
from invoicing import tenant_settings
from invoicing.erp import connections
from invoicing.erp.base import PROVIDERS
from invoicing.models import ErpConnectionRow, ErpSyncLogRow
from invoicing.secrets import SecretBox

Provider = Literal["quickbooks", "xero", "netsuite", "custom_webhook"]
assert set(PROVIDERS) == {"quickbooks", "xero", "netsuite", "custom_webhook"}


class ConnectionCreate(Body):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    config: dict[str, Any] = Field(
        description="the provider's settings (docs/erp-sync.md); secrets are kept "
        "encrypted and shown masked"
    )


class TestPublic(Public):
    at: Timestamp
    status: str = Field(description="SUCCESS | FAILED")
    response_code: int | None
    error: str | None


class ConnectionPublic(Public):
    id: str
    provider: str
    status: str = Field(description="pending_authorization | active | disconnected")
    authorize_url: str | None = Field(
        default=None, description="while pending_authorization: where the user consents"
    )
    account: str | None = Field(description="the ERP company (QuickBooks realm, Xero tenant)")
    config: dict[str, Any] = Field(description="secrets masked to their last 4 characters")
    last_test: TestPublic | None
    created_at: Timestamp
    updated_at: Timestamp
    activated_at: Timestamp | None
    disconnected_at: Timestamp | None

    @classmethod
    def from_row(cls, row: ErpConnectionRow, box: SecretBox) -> ConnectionPublic:
        test = (
            TestPublic(
                at=row.test_at,
                status=row.test_status or "FAILED",
                response_code=row.test_code,
                error=row.test_error,
            )
            if row.test_at is not None
            else None
        )
        return cls(
            id=row.id,
            provider=row.provider,
            status=row.status,
            authorize_url=connections.authorize_url(row, box)
            if row.status == "pending_authorization"
            else None,
            account=row.account,
            config=connections.public_config(row, box),
            last_test=test,
            created_at=row.created_at,
            updated_at=row.updated_at,
            activated_at=row.activated_at,
            disconnected_at=row.disconnected_at,
        )


class ConnectionList(Public):
    data: list[ConnectionPublic]


class SyncLogEntry(Public):
    id: str
    at: Timestamp
    invoice_id: str
    connection_id: str
    provider: str
    status: str = Field(description="SUCCESS | FAILED")
    response_code: int | None
    error: str | None
    attempt: int = Field(description="1, 2, … within one sync")
    document_type: str = Field(description="invoice | credit_note")
    document_id: str
    external_id: str | None = Field(description="the ERP's id of the record")
    manual: bool

    @classmethod
    def from_row(cls, row: ErpSyncLogRow) -> SyncLogEntry:
        return cls(
            id=row.id,
            at=row.created_at,
            invoice_id=row.invoice_id,
            connection_id=row.connection_id,
            provider=row.provider,
            status=row.status,
            response_code=row.response_code,
            error=row.error,
            attempt=row.attempt,
            document_type=row.kind,
            document_id=row.document_id,
            external_id=row.external_id,
            manual=row.manual,
        )


class SyncLogPage(Public):
    data: list[SyncLogEntry]
    next_cursor: str | None


class SyncRequest(Body):
    model_config = ConfigDict(extra="forbid")

    invoice_id: str = Field(min_length=1, max_length=40)


class SyncResult(Public):
    data: list[SyncLogEntry] = Field(description="this sync's attempt, one per connection")


class SettingsPublic(Public):
    multi_erp: bool = Field(description="more than one ERP may be connected at once")
    activity_retention_days: int = Field(description="days the activity log keeps")
    request_log_retention_days: int = Field(description="days the request log keeps")

    @classmethod
    def of(cls, settings: tenant_settings.TenantSettings) -> SettingsPublic:
        return cls(
            multi_erp=settings.multi_erp,
            activity_retention_days=settings.activity_retention_days,
            request_log_retention_days=settings.request_log_retention_days,
        )


class SettingsUpdate(Body):
    model_config = ConfigDict(extra="forbid")

    multi_erp: bool | None = None
    activity_retention_days: int | None = Field(
        None,
        ge=tenant_settings.ACTIVITY_RETENTION_BOUNDS[0],
        le=tenant_settings.ACTIVITY_RETENTION_BOUNDS[1],
    )
    request_log_retention_days: int | None = Field(
        None,
        ge=tenant_settings.REQUEST_LOG_RETENTION_BOUNDS[0],
        le=tenant_settings.REQUEST_LOG_RETENTION_BOUNDS[1],
    )
