"""The Xero connector: OAuth 2.0 with PKCE (S256), then the Accounting API.

Authorization (`xero_auth`): the user is sent to `authorizeUrl` with an S256 code
challenge; the callback's code and our verifier are traded at `tokenUrl` (with HTTP
Basic client authentication when the app has a secret, a PKCE-only app has none); `GET
{baseUrl}/connections` then names the organisations the user connected, and the
configured `tenantId` (else the first ORGANISATION) is the connection's account.
Access tokens live 30 minutes; refresh tokens rotate on every refresh, so the new
pair is kept (`credentials.changed`).

Every API call carries `Authorization: Bearer`, `Xero-tenant-id` and `Accept:
application/json`. A document is created with PUT and updated with POST on its id:

    PUT  /api.xro/2.0/Invoices              {"Invoices": [ACCREC invoice]}
    POST /api.xro/2.0/Invoices/{InvoiceID}  {"Invoices": [ACCREC invoice]}
    PUT  /api.xro/2.0/CreditNotes           {"CreditNotes": [ACCRECCREDIT note]}
    POST /api.xro/2.0/CreditNotes/{CreditNoteID}

each with an `Idempotency-Key` derived from the document id and the exact request, so
the engine's retry of a request whose answer was lost is answered from Xero's memory
instead of creating a second record, while a changed document gets a new key. Before a
create, the document is looked for by its Reference (our id): a record that an earlier
push created, the answer lost, is updated instead of duplicated. The customer is the
contact whose ContactNumber is ours (else whose Name is, Xero's names being unique),
created when there is none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import Field

from invoicing.erp import xero_mapping as mapping
from invoicing.erp.base import (
    Authorization,
    Context,
    Credentials,
    Document,
    External,
    OAuthConfig,
    Pushed,
    SyncError,
)
from invoicing.erp.xero_auth import TokenEndpoint, answer, authorization, describe
from invoicing.tax.base import dumps_exact

NAME = "xero"
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Meterline-ERP-Sync/1"
API = "/api.xro/2.0"
BASE_URL = "https://api.xero.com"
TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (an endpoint, not a secret)
AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
# Xero's granular scopes: apps created since 2 March 2026 cannot ask for the broad
# accounting.transactions (older apps may, until September 2027, through `scope`).
SCOPE = "offline_access accounting.invoices accounting.contacts accounting.settings.read"
KIND = {  # our kind -> Xero's collection and the id field of its records
    "invoice": ("Invoices", "InvoiceID"),
    "credit_note": ("CreditNotes", "CreditNoteID"),
}


class XeroConfig(OAuthConfig):
    client_secret: str | None = Field(default=None, min_length=1)
    base_url: str | None = Field(default=BASE_URL, pattern=r"^https?://")
    token_url: str | None = Field(default=TOKEN_URL, pattern=r"^https?://")
    authorize_url: str | None = Field(default=AUTHORIZE_URL, pattern=r"^https?://")
    account_code: str = Field(default="200", min_length=1, max_length=10)
    tenant_id: str | None = Field(default=None, min_length=1)
    tax_type: str | None = Field(default=None, min_length=1)
    scope: str = Field(default=SCOPE, min_length=1)


def idempotency_key(document_id: str, method: str, path: str, body: bytes) -> str:
    """The same for a repeat of one exact request, another for any change (<= 128 chars)."""
    digest = hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()[:40]
    return f"meterline-{document_id[:60]}-{digest}"


class XeroConnector:
    provider = NAME

    def __init__(
        self,
        config: XeroConfig,
        credentials: Credentials,
        context: Context,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.config = config
        self._timeout = timeout
        self.credentials = credentials
        self.context = context
        self._base = (config.base_url or BASE_URL).rstrip("/")
        self._contacts: dict[str, str] = {}  # our customer id -> ContactID, this instance
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )
        self._tokens = TokenEndpoint(
            self._client,
            config.token_url or TOKEN_URL,
            config.client_id,
            config.client_secret,
            context.now,
        )

    # -- OAuth ---------------------------------------------------------------------

    @property
    def _redirect_uri(self) -> str:
        return self.config.redirect_uri or self.context.redirect_uri

    def authorize(self, state: str) -> Authorization:
        return authorization(
            self.config.authorize_url or AUTHORIZE_URL,
            self.config.client_id,
            self._redirect_uri,
            self.config.scope,
            state,
        )

    def complete(
        self, code: str, code_verifier: str | None, params: Mapping[str, str]
    ) -> Credentials:
        self._tokens.exchange(self.credentials, code, code_verifier, self._redirect_uri)
        connections = self._send("GET", f"{self._base}/connections", tenant=False)
        self.credentials.account = _tenant(answer(connections), self.config.tenant_id)
        return self.credentials

    # -- the API -------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        key: str | None = None,
        tenant: bool = True,
    ) -> httpx.Response:
        """One call, refreshed first when the token is known to be expired and once more
        after a refresh when Xero refuses the token (401)."""
        if not self.credentials.access_token:
            raise SyncError("the Xero connection is not authorized")
        expires = self.credentials.expires_at
        if expires is not None and expires <= self.context.now():
            self._tokens.refresh(self.credentials)
        response = self._once(method, url, params, body, key, tenant)
        if response.status_code == 401 and self.credentials.refresh_token:
            self._tokens.refresh(self.credentials)
            response = self._once(method, url, params, body, key, tenant)
        if not response.is_success:
            raise SyncError(describe(response), response.status_code)
        return response

    def _once(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        key: str | None,
        tenant: bool,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.credentials.access_token}",
            "Accept": "application/json",
        }
        if tenant:
            if not self.credentials.account:
                raise SyncError("the Xero connection has no organisation (tenant id)")
            headers["Xero-tenant-id"] = self.credentials.account
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            return self._client.request(method, url, params=params, content=body, headers=headers)
        except httpx.TimeoutException:
            raise SyncError(f"Xero did not answer in {self._timeout:g} s") from None
        except httpx.HTTPError as error:
            raise SyncError(f"{type(error).__name__}: {error}") from None

    def _api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        record: tuple[str, dict[str, Any]] | None = None,
        document_id: str | None = None,
    ) -> tuple[Any, int]:
        body = key = None
        if record is not None:
            collection, fields = record
            body = dumps_exact({collection: [fields]}).encode()
            if document_id is not None:
                key = idempotency_key(document_id, method, path, body)
        response = self._send(method, f"{self._base}{API}{path}", params=params, body=body, key=key)
        return answer(response), response.status_code

    # -- the connector -------------------------------------------------------------

    def push(self, document: Document, existing: External | None) -> Pushed:
        collection, id_field = KIND[document.kind]
        contact_id = self._contact(document.customer)
        if document.kind == "invoice":
            fields = mapping.invoice(
                document.body, document.customer, contact_id,
                self.config.account_code, self.config.tax_type,
            )  # fmt: skip
        else:
            fields = mapping.credit_note(
                document.body, document.customer, document.invoice, contact_id,
                self.config.account_code, self.config.tax_type,
            )  # fmt: skip
        target = existing.id if existing else self._by_reference(collection, id_field, document.id)
        params = {"unitdp": str(mapping.UNIT_PLACES)}
        method, path = (
            ("PUT", f"/{collection}") if target is None else ("POST", f"/{collection}/{target}")
        )
        data, status = self._api(
            method, path, params=params, record=(collection, fields), document_id=document.id
        )
        found = _first_id(data, collection, id_field)
        if found is None:
            raise SyncError(f"Xero answered without a {id_field}", status)
        return Pushed(found, None, status)

    def _by_reference(self, collection: str, id_field: str, reference: str) -> str | None:
        """The id of a record of ours that Xero already holds (its Reference is our id)."""
        data, _ = self._api(
            "GET", f"/{collection}", params={"where": _equals("Reference", reference)}
        )
        return _first_id(data, collection, id_field)

    def _contact(self, customer: Mapping[str, Any]) -> str:
        """The ContactID of our customer: found by ContactNumber, else by Name, else new."""
        ours = str(customer["id"])
        if ours in self._contacts:
            return self._contacts[ours]
        found = None
        for field, value in (
            ("ContactNumber", mapping.contact_number(customer)),
            ("Name", str(customer["name"])[: mapping.NAME_MAX]),
        ):
            data, _ = self._api("GET", "/Contacts", params={"where": _equals(field, value)})
            found = _first_id(data, "Contacts", "ContactID")
            if found is not None:
                break
        if found is None:
            data, status = self._api(
                "PUT", "/Contacts", record=("Contacts", mapping.contact(customer)),
                document_id=ours,
            )  # fmt: skip
            found = _first_id(data, "Contacts", "ContactID")
            if found is None:
                raise SyncError("Xero answered a new contact without a ContactID", status)
        self._contacts[ours] = found
        return found

    def test(self) -> int | None:
        _, status = self._api("GET", "/Organisation")
        return status

    def close(self) -> None:
        self._client.close()


def _equals(field: str, value: str) -> str:
    """A `where` filter matching one exact string (quotes and backslashes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{field}=="{escaped}"'


def _tenant(connections: Any, wanted: str | None) -> str:
    """The organisation to work in among the user's connections."""
    tenants = (
        [c for c in connections if isinstance(c, dict)] if isinstance(connections, list) else []
    )
    if wanted is not None:
        if any(c.get("tenantId") == wanted for c in tenants):
            return wanted
        raise SyncError(f"tenant {wanted} is not among the organisations the user connected")
    for entry in tenants:
        if entry.get("tenantType") == "ORGANISATION" and isinstance(entry.get("tenantId"), str):
            return str(entry["tenantId"])
    raise SyncError("the user connected no Xero organisation")


def _first_id(data: Any, collection: str, id_field: str) -> str | None:
    records = data.get(collection) if isinstance(data, dict) else None
    if isinstance(records, list) and records and isinstance(records[0], dict):
        found = records[0].get(id_field)
        if isinstance(found, str) and found:
            return found
    return None
