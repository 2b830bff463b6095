"""The QuickBooks Online connector: invoices as `Invoice`, credit notes as `CreditMemo`.

Authorization is OAuth 2.0's authorization code flow. `authorize` sends the user to
Intuit's consent page (scope com.intuit.quickbooks.accounting); at the callback
`complete` trades the code for tokens at the token endpoint (HTTP Basic with the
client id and secret, a form body) and keeps the callback's `realmId`, the company, as
`Credentials.account`. Access tokens live about an hour: one that `expires_at` says is
over is refreshed before the call, and a call refused with 401 is refreshed and sent
once more. Intuit may rotate the refresh token on every refresh; the new one is kept
and `changed` set so the engine seals it.

Every call is `/v3/company/{realmId}/…?minorversion=75` with a bearer token and
`Accept: application/json`. A push finds (or creates) the customer by DisplayName and
the item its lines are booked on, then creates the record (`existing` None) or sparse-
updates it (`{"Id", "SyncToken", "sparse": true, …}`: the fields we send change, the
others stay as the accountant left them; `Line` replaces all lines). Writes carry a
`requestid` derived from the document and the exact body, so a retry after a lost
answer is answered with the first result instead of booking twice.

A stale SyncToken (QuickBooks' Fault 5010: the record was edited in QuickBooks since
our last push) is healed once: the record is read for its current SyncToken and the
update sent again; a second refusal is the SyncError. Our document is the source of
truth for the fields we send.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import Field

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
from invoicing.erp.quickbooks_mapping import (
    Entity,
    credit_memo_entity,
    customer_entity,
    display_name,
    invoice_entity,
    query_literal,
    request_id,
)
from invoicing.tax.base import dumps_exact, loads_exact

NAME = "quickbooks"
BASE_URL = "https://quickbooks.api.intuit.com"
SANDBOX_BASE_URL = "https://sandbox-quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = "75"  # the oldest Intuit still honours (since 2025-08-01)
ITEM_NAME = "Meterline usage"  # the service item found or created when no itemId is set
STALE_OBJECT = "5010"
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Meterline-ERP-Sync/1"

ENTITIES = {"invoice": ("invoice", "Invoice"), "credit_note": ("creditmemo", "CreditMemo")}


class QuickBooksConfig(OAuthConfig):
    client_secret: str = Field(min_length=1)
    # The QuickBooks Item (its Id) every line is booked on; else "Meterline usage".
    item_id: str | None = Field(default=None, min_length=1, max_length=40)


class QuickBooksError(SyncError):
    """A refusal by QuickBooks, with its Fault code ("5010", "6240" …) when it gave one."""

    def __init__(self, message: str, response_code: int | None, fault_code: str | None):
        super().__init__(message, response_code)
        self.fault_code = fault_code


class QuickBooksConnector:
    provider = NAME

    def __init__(
        self,
        config: QuickBooksConfig,
        credentials: Credentials,
        context: Context,
        *,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.context = context
        self.timeout = timeout
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        # Found once per connector (one sync run), never kept beyond it.
        self._customers: dict[str, str] = {}
        self._item: str | None = config.item_id

    # -- OAuth -------------------------------------------------------------------------

    @property
    def redirect_uri(self) -> str:
        return self.config.redirect_uri or self.context.redirect_uri

    def authorize(self, state: str) -> Authorization:
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "response_type": "code",
                "scope": SCOPE,
                "redirect_uri": self.redirect_uri,
                "state": state,
            }
        )
        return Authorization(f"{self.config.authorize_url or AUTHORIZE_URL}?{query}")

    def complete(
        self, code: str, code_verifier: str | None, params: Mapping[str, str]
    ) -> Credentials:
        realm = params.get("realmId")
        if not realm:
            raise SyncError("the QuickBooks callback carried no realmId")
        self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        )
        self.credentials.account = realm
        return self.credentials

    def _refresh(self) -> None:
        if not self.credentials.refresh_token:
            raise SyncError("the QuickBooks connection is not authorized (no refresh token)")
        self._token(
            {"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token}
        )

    def _token(self, form: dict[str, str]) -> None:
        """Tokens from Intuit's token endpoint, kept in the credentials."""
        pair = f"{self.config.client_id}:{self.config.client_secret}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        response = self._send(
            "POST", self.config.token_url or TOKEN_URL, data=form, headers=headers
        )
        body = _json(response)
        if not response.is_success:
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise SyncError(
                f"QuickBooks refused the {form['grant_type']} grant: {reason}",
                response.status_code,
            )
        access, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(access, str) or not isinstance(expires_in, int):
            raise SyncError("QuickBooks' token answer has no access_token or expires_in")
        self.credentials.access_token = access
        # Intuit may rotate the refresh token: the one it answers is the one to keep.
        self.credentials.refresh_token = body.get("refresh_token") or self.credentials.refresh_token
        self.credentials.expires_at = self.context.now() + timedelta(seconds=expires_in)
        self.credentials.changed = True

    # -- pushes ------------------------------------------------------------------------

    def push(self, document: Document, existing: External | None) -> Pushed:
        path, name = ENTITIES[document.kind]
        customer = self._customer_id(document.customer)
        item = self._item_id()
        if document.kind == "invoice":
            entity = invoice_entity(document, customer, item)
        else:
            entity = credit_memo_entity(document, customer, item)
        if existing is None:
            status, saved = self._write(path, name, entity, document.id)
        else:
            token = existing.version or self._sync_token(path, name, existing.id)
            try:
                status, saved = self._update(path, name, entity, document.id, existing.id, token)
            except QuickBooksError as error:
                if error.fault_code != STALE_OBJECT:
                    raise
                # Edited in QuickBooks since our last push: once, on its current version.
                token = self._sync_token(path, name, existing.id)
                status, saved = self._update(path, name, entity, document.id, existing.id, token)
        return Pushed(str(saved["Id"]), str(saved.get("SyncToken")), status)

    def _update(
        self, path: str, name: str, entity: Entity, key: str, record: str, token: str
    ) -> tuple[int, Entity]:
        sparse = {"Id": record, "SyncToken": token, "sparse": True, **entity}
        return self._write(path, name, sparse, key)

    def _write(self, path: str, name: str, entity: Entity, key: str) -> tuple[int, Entity]:
        content = dumps_exact(entity).encode()
        rid = request_id(f"{self.credentials.account}/{path}", key, content)
        status, body = self._api("POST", path, content=content, request_id=rid)
        saved = body.get(name)
        if not isinstance(saved, dict) or "Id" not in saved:
            raise SyncError(f"QuickBooks' answer has no {name}.Id", status)
        return status, saved

    def _sync_token(self, path: str, name: str, record: str) -> str:
        _, body = self._api("GET", f"{path}/{record}")
        found = body.get(name)
        if not isinstance(found, dict) or found.get("SyncToken") is None:
            raise SyncError(f"QuickBooks' {name} {record} has no SyncToken")
        return str(found["SyncToken"])

    def _customer_id(self, customer: Mapping[str, Any]) -> str:
        name = display_name(customer)
        if name not in self._customers:
            found = self._query("Customer", "DisplayName", name)
            if found is None:
                found = self._write("customer", "Customer", customer_entity(customer), name)[1]
            self._customers[name] = str(found["Id"])
        return self._customers[name]

    def _item_id(self) -> str:
        if self._item is None:
            found = self._query("Item", "Name", ITEM_NAME)
            if found is None:
                account = self._query("Account", "AccountType", "Income")
                if account is None:
                    raise SyncError("QuickBooks has no Income account to book usage on")
                item = {
                    "Name": ITEM_NAME,
                    "Type": "Service",
                    "IncomeAccountRef": {"value": str(account["Id"])},
                }
                found = self._write("item", "Item", item, ITEM_NAME)[1]
            self._item = str(found["Id"])
        return self._item

    def _query(self, entity: str, field: str, value: str) -> Entity | None:
        statement = f"SELECT * FROM {entity} WHERE {field} = {query_literal(value)} MAXRESULTS 1"
        _, body = self._api("GET", "query", params={"query": statement})
        rows = (body.get("QueryResponse") or {}).get(entity) or []
        return rows[0] if rows and isinstance(rows[0], dict) else None

    def test(self) -> int | None:
        realm = self._realm()
        return self._api("GET", f"companyinfo/{realm}")[0]

    # -- HTTP --------------------------------------------------------------------------

    def _realm(self) -> str:
        if not self.credentials.account:
            raise SyncError("the QuickBooks connection is not authorized (no realmId)")
        return self.credentials.account

    def _api(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One call of the Accounting API, refreshing an expired token before it or once
        after a 401; a refusal is a QuickBooksError."""
        base = (self.config.base_url or BASE_URL).rstrip("/")
        url = f"{base}/v3/company/{self._realm()}/{path}"
        query = {**(params or {}), "minorversion": MINOR_VERSION}
        if request_id is not None:
            query["requestid"] = request_id
        expires = self.credentials.expires_at
        if not self.credentials.access_token or (expires and expires <= self.context.now()):
            self._refresh()
        response = self._call(method, url, content, query)
        if response.status_code == 401:
            self._refresh()
            response = self._call(method, url, content, query)
        body = _json(response)
        if not response.is_success:
            raise _refusal(response, body)
        return response.status_code, body

    def _call(
        self, method: str, url: str, content: bytes | None, query: Mapping[str, str]
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.credentials.access_token}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        return self._send(method, url, content=content, params=query, headers=headers)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise SyncError(f"QuickBooks gave no answer in {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            raise SyncError(f"QuickBooks unreachable: {type(error).__name__}: {error}") from None

    def close(self) -> None:
        self._client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = loads_exact(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(response: httpx.Response, body: Mapping[str, Any]) -> QuickBooksError:
    """QuickBooks' Fault as an error: `Fault.Error[0]` (the 401s spell it in lower case)."""
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    code = first.get("code")
    message = first.get("Message") or first.get("message") or response.reason_phrase
    detail = first.get("Detail") or first.get("detail")
    text = f"QuickBooks HTTP {response.status_code}"
    if code:
        text += f" (Fault {code})"
    text += f": {message}" + (f": {detail}" if detail else "")
    tid = response.headers.get("intuit_tid")
    if tid:
        text += f" [intuit_tid {tid}]"
    return QuickBooksError(text[:500], response.status_code, str(code) if code else None)
