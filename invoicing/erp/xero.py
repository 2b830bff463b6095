"""The Xero connector: OAuth 2.0 with PKCE (S256), then the Accounting API.

Authorization: the user is sent to `authorizeUrl` with an S256 code challenge; the
callback's code and our verifier are traded at `tokenUrl` (with HTTP Basic client
authentication when the app has a secret, a PKCE-only app has none); `GET
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

import base64
import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

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
from invoicing.tax.base import dumps_exact, loads_exact

NAME = "xero"
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Meterline-ERP-Sync/1"
API = "/api.xro/2.0"
# Xero's granular scopes: apps created since 2 March 2026 cannot ask for the broad
# accounting.transactions (older apps may, until September 2027, through `scope`).
SCOPE = "offline_access accounting.invoices accounting.contacts accounting.settings.read"
VERIFIER_BYTES = 48  # 64 characters of [A-Za-z0-9_-], inside PKCE's 43..128
KIND = {  # our kind -> Xero's collection and the id field of its records
    "invoice": ("Invoices", "InvoiceID"),
    "credit_note": ("CreditNotes", "CreditNoteID"),
}


class XeroConfig(OAuthConfig):
    client_secret: str | None = Field(default=None, min_length=1)
    base_url: str | None = Field(default="https://api.xero.com", pattern=r"^https?://")
    token_url: str | None = Field(
        default="https://identity.xero.com/connect/token", pattern=r"^https?://"
    )
    authorize_url: str | None = Field(
        default="https://login.xero.com/identity/connect/authorize", pattern=r"^https?://"
    )
    account_code: str = Field(default="200", min_length=1, max_length=10)
    tenant_id: str | None = Field(default=None, min_length=1)
    tax_type: str | None = Field(default=None, min_length=1)
    scope: str = Field(default=SCOPE, min_length=1)


def challenge(verifier: str) -> str:
    """PKCE's S256 code challenge: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


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
        self._base = (config.base_url or "").rstrip("/")
        self._contacts: dict[str, str] = {}  # our customer id -> ContactID, this instance
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    # -- OAuth ---------------------------------------------------------------------

    @property
    def _redirect_uri(self) -> str:
        return self.config.redirect_uri or self.context.redirect_uri

    def authorize(self, state: str) -> Authorization:
        verifier = secrets.token_urlsafe(VERIFIER_BYTES)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": self._redirect_uri,
                "scope": self.config.scope,
                "state": state,
                "code_challenge": challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return Authorization(f"{self.config.authorize_url}?{query}", verifier)

    def complete(
        self, code: str, code_verifier: str | None, params: Mapping[str, str]
    ) -> Credentials:
        form = {"grant_type": "authorization_code", "code": code}
        form["redirect_uri"] = self._redirect_uri
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        elif self.config.client_secret is None:
            raise SyncError("no PKCE code verifier for an app without a client secret")
        self._token(form)
        connections = self._send("GET", f"{self._base}/connections", tenant=False)
        self.credentials.account = _tenant(connections.json(), self.config.tenant_id)
        return self.credentials

    def _refresh(self) -> None:
        if not self.credentials.refresh_token:
            raise SyncError("the Xero access token expired and there is no refresh token")
        self._token(
            {"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token}
        )

    def _token(self, form: dict[str, str]) -> None:
        """Tokens from Xero's token endpoint into `credentials` (a new refresh token each
        time: Xero rotates them and the old one stops working)."""
        form["client_id"] = self.config.client_id
        auth = None
        if self.config.client_secret is not None:
            auth = httpx.BasicAuth(self.config.client_id, self.config.client_secret)
        assert self.config.token_url is not None
        try:
            response = self._client.post(
                self.config.token_url,
                data=form,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise SyncError(
                f"Xero's token endpoint did not answer in {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise SyncError(f"Xero's token endpoint: {type(error).__name__}: {error}") from None
        if not response.is_success:
            raise SyncError(
                f"Xero refused the token request: {_describe(response)}", response.status_code
            )
        data = _json(response)
        access = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access, str) or not access:
            raise SyncError("Xero's token answer has no access_token", response.status_code)
        self.credentials.access_token = access
        refresh = data.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self.credentials.refresh_token = refresh
        expires_in = data.get("expires_in")
        seconds = (
            int(expires_in)
            if isinstance(expires_in, int | str) and str(expires_in).isdigit()
            else 1800
        )
        self.credentials.expires_at = self.context.now() + timedelta(seconds=seconds)
        self.credentials.changed = True

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
            self._refresh()
        response = self._once(method, url, params, body, key, tenant)
        if response.status_code == 401 and self.credentials.refresh_token:
            self._refresh()
            response = self._once(method, url, params, body, key, tenant)
        if not response.is_success:
            raise SyncError(_describe(response), response.status_code)
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
        return _json(response), response.status_code

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


def _json(response: httpx.Response) -> Any:
    try:
        return loads_exact(response.content)
    except ValueError:
        raise SyncError(f"Xero answered something that is not JSON (HTTP {response.status_code})",
                        response.status_code) from None  # fmt: skip


def _first_id(data: Any, collection: str, id_field: str) -> str | None:
    records = data.get(collection) if isinstance(data, dict) else None
    if isinstance(records, list) and records and isinstance(records[0], dict):
        found = records[0].get(id_field)
        if isinstance(found, str) and found:
            return found
    return None


def _describe(response: httpx.Response) -> str:
    """Xero's reason for a refusal: its validation messages, its rate limit, else its text."""
    status = response.status_code
    if status == 429:
        problem = response.headers.get("X-Rate-Limit-Problem", "rate")
        wait = response.headers.get("Retry-After")
        return f"HTTP 429: Xero's {problem} limit was reached" + (
            f"; retry after {wait} s" if wait else ""
        )
    try:
        data = loads_exact(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        messages = [
            str(error.get("Message"))
            for element in data.get("Elements") or ()
            if isinstance(element, dict)
            for error in element.get("ValidationErrors") or ()
            if isinstance(error, dict) and error.get("Message")
        ]
        reason = "; ".join(messages) or data.get("Message") or data.get("Detail") \
            or data.get("error_description") or data.get("error") or data.get("Title")  # fmt: skip
        if reason:
            return f"HTTP {status}: {reason}"
    text = response.text.strip().replace("\n", " ")
    return f"HTTP {status}" + (f": {text[:300]}" if text else "")
