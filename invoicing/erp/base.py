"""What an ERP connector does for us, whatever the ERP: put one finalized document (an
invoice or a credit note) into the ERP, creating it the first time and updating the
same record after, and say whether the connection works.

The sync engine (`invoicing.erp.sync`) owns everything around a push: when it runs,
the retries, the log, the ERP's id of each document. A connector makes one attempt and
answers `Pushed` (the ERP's id and version of the record) or raises `SyncError` (with
the ERP's HTTP status when there was one). It never retries a failed push itself: the
engine does, and logs each attempt. The one thing it repeats is a request refused for
an expired access token, once, after refreshing the token.

OAuth connectors keep their tokens in `Credentials`, which the engine loads sealed
from the ledger and writes back (sealed) after every push when `changed` is set.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from core.errors import InvalidInput

PROVIDERS = ("quickbooks", "xero", "netsuite", "custom_webhook")
OAUTH_PROVIDERS = ("quickbooks", "xero")

Kind = Literal["invoice", "credit_note"]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Document:
    """One document to put into the ERP, as our API shows it."""

    kind: Kind
    id: str
    tenant_id: str
    body: Mapping[str, Any]  # the invoice / credit note as its GET returns it (camelCase)
    customer: Mapping[str, Any]  # the customer as GET /customers/{id} returns it
    # For a credit note: the invoice it credits, as GET returns it.
    invoice: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class External:
    """The ERP's record of a document, from an earlier successful push."""

    id: str
    version: str | None = None  # QuickBooks' SyncToken; None where the ERP has none


@dataclass(frozen=True)
class Pushed:
    id: str  # the ERP's id of the record
    version: str | None
    response_code: int | None  # the status of the ERP's last answer


class SyncError(Exception):
    """One attempt failed. `response_code` is the ERP's HTTP status, None when it never
    answered (timeout, refused connection)."""

    def __init__(self, message: str, response_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.response_code = response_code


@dataclass
class Credentials:
    """What an OAuth connection holds after authorization (sealed at rest)."""

    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    # The company the tokens are for: QuickBooks' realmId, Xero's tenant id.
    account: str | None = None
    changed: bool = field(default=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
            "account": self.account,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Credentials:
        raw = raw or {}
        expires = raw.get("expiresAt")
        return cls(
            access_token=raw.get("accessToken"),
            refresh_token=raw.get("refreshToken"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            account=raw.get("account"),
        )


def _nonce() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Context:
    """What a connector is given besides its config and credentials."""

    now: Clock  # token expiry, signed timestamps (injected: tests are exact)
    redirect_uri: str  # our OAuth callback, unless the config names another
    nonce: Callable[[], str] = _nonce  # OAuth 1.0a nonces, OAuth state


@dataclass(frozen=True)
class Authorization:
    """The start of an OAuth authorization: where to send the user."""

    url: str
    code_verifier: str | None = None  # PKCE (Xero): kept sealed until the callback


class ConnectorConfig(BaseModel):
    """A connection's config, as stored (camelCase keys, no others)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    # Where the ERP's API is; a sandbox or a local test server can stand in for it.
    base_url: str | None = Field(default=None, pattern=r"^https?://")


class OAuthConfig(ConnectorConfig):
    client_id: str = Field(min_length=1)
    # Where the ERP's token endpoint is (tests point it at a local server).
    token_url: str | None = Field(default=None, pattern=r"^https?://")
    authorize_url: str | None = Field(default=None, pattern=r"^https?://")
    # Our callback as registered with the ERP; defaults to METERLINE_PUBLIC_URL +
    # /api/v1/erp/oauth/callback.
    redirect_uri: str | None = Field(default=None, pattern=r"^https?://")


C = TypeVar("C", bound=ConnectorConfig)


def parse_config(model: type[C], config: Mapping[str, Any]) -> C:
    """`config` checked against the connector's model; what is wrong, as InvalidInput."""
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in ("config", *error["loc"]))
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{where}: {message}")
        raise InvalidInput("; ".join(problems)) from None


class Connector(Protocol):
    provider: str

    def push(self, document: Document, existing: External | None) -> Pushed:
        """Create the document in the ERP (`existing` None) or update that record."""
        ...

    def test(self) -> int | None:
        """A harmless call proving the connection works; the ERP's status. Raises
        SyncError when it does not."""
        ...

    def close(self) -> None: ...


class OAuthConnector(Connector, Protocol):
    credentials: Credentials

    def authorize(self, state: str) -> Authorization:
        """The URL that starts the user's consent (with a PKCE challenge where used)."""
        ...

    def complete(
        self, code: str, code_verifier: str | None, params: Mapping[str, str]
    ) -> Credentials:
        """Trade the callback's `code` for tokens (`params`: the callback's other query
        parameters, e.g. QuickBooks' realmId); raises SyncError when refused."""
        ...
