"""The NetSuite connector: SuiteTalk REST web services (record API v1) with token-based
authentication (OAuth 1.0a, HMAC-SHA256; see `invoicing.erp.oauth1`).

    PUT {base}/services/rest/record/v1/customer/eid:{our customer id}
    PUT {base}/services/rest/record/v1/invoice/eid:{our invoice id}?replace=item
    PUT {base}/services/rest/record/v1/creditMemo/eid:{our credit note id}?replace=item
    GET {base}/services/rest/record/v1/currency?q=symbol IS "EUR"     (once per instance)
    GET {base}/services/rest/record/v1/invoice/eid:{invoice id}        (a credit's invoice)
    GET {base}/services/rest/record/v1/customer?limit=1                (test)
    Authorization: OAuth realm="<ACCOUNT_ID>", oauth_consumer_key, oauth_token,
                   oauth_signature_method="HMAC-SHA256", oauth_timestamp, oauth_nonce,
                   oauth_version="1.0", oauth_signature

Idempotency is NetSuite's upsert: a PUT to `eid:<external id>` creates the record with
that external id, or updates the one that has it, so every sync of a document names the
same record and a re-sync never duplicates it. Our document id is the external id.
`replace=item` makes an update replace the item sublist (it is not keyed: without it
NetSuite would append the lines again). NetSuite answers 204 with the record's URL in
`Location`; its last segment is the internal id, which is what `Pushed.id` carries.

TBA tokens do not expire, so there is no refresh; a 401 is final (a wrong secret, a
revoked token, a clock far off) and its message is NetSuite's `o:errorDetails`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import Field

from invoicing.erp import oauth1
from invoicing.erp.base import (
    ConnectorConfig,
    Context,
    Document,
    External,
    Pushed,
    SyncError,
)
from invoicing.tax.base import dumps_exact, loads_exact
from rating.money import to_decimal

NAME = "netsuite"
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Meterline-ERP-Sync/1"
RECORDS = "/services/rest/record/v1"
# NetSuite's external ids: letters, digits, '_' and '-' (ours are such ids).
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Lines that are no item lines of the NetSuite invoice: prepaid credits (our
# credit_total, outside the invoice's total) and tax-only adjustments (NetSuite's own
# tax setup computes the tax of the item lines).
_SKIPPED_LINES = frozenset({"CREDIT", "TAX_ADJUSTMENT"})


class NetSuiteConfig(ConnectorConfig):
    account_id: str = Field(pattern=r"^[0-9A-Za-z]+(_[0-9A-Za-z]+)?$", max_length=40)
    consumer_key: str = Field(min_length=1)
    consumer_secret: str = Field(min_length=1)
    token_id: str = Field(min_length=1)
    token_secret: str = Field(min_length=1)
    # The internal id of the (non-inventory / service) item every line is booked on.
    # Required: NetSuite has no default item, and a guessed one would post revenue to
    # whatever item happens to have that id.
    item_id: str = Field(pattern=r"^[0-9]+$")
    # OneWorld accounts: the subsidiary new customers belong to.
    subsidiary_id: str | None = Field(default=None, pattern=r"^[0-9]+$")

    @property
    def realm(self) -> str:
        """The account id as the OAuth realm: upper case, '_' kept (1234567_SB1)."""
        return self.account_id.upper()

    @property
    def api_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.account_id.lower().replace("_", "-")
        return f"https://{host}.suitetalk.api.netsuite.com"


class NetSuiteConnector:
    provider = NAME

    def __init__(
        self,
        config: NetSuiteConfig,
        context: Context,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self._timeout = timeout
        self._token = oauth1.Token(
            realm=config.realm,
            consumer_key=config.consumer_key,
            consumer_secret=config.consumer_secret,
            token_id=config.token_id,
            token_secret=config.token_secret,
        )
        self._currencies: dict[str, str] = {}  # ISO code -> internal id, this instance
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    # -- the connector protocol -------------------------------------------------------

    def push(self, document: Document, existing: External | None) -> Pushed:
        customer = self._upsert_customer(document.customer)
        if document.kind == "invoice":
            body = invoice_body(document.body, customer, self._currency(document.body), self.config)
            record = "invoice"
        else:
            invoice = document.invoice or {}
            created_from = self._internal_id("invoice", str(invoice.get("id") or ""))
            body = credit_memo_body(
                document.body,
                invoice,
                customer,
                self._currency(document.body),
                created_from,
                self.config,
            )
            record = "creditMemo"
        response = self._upsert(record, document.id, body, replace="item")
        found = _location_id(response) or (existing.id if existing else None)
        if found is None:
            raise SyncError(
                f"NetSuite saved the {record} but named no record", response.status_code
            )
        return Pushed(found, None, response.status_code)

    def test(self) -> int | None:
        return self._send("GET", f"{RECORDS}/customer", {"limit": "1"}).status_code

    def close(self) -> None:
        self._client.close()

    # -- records ----------------------------------------------------------------------

    def _upsert_customer(self, customer: Mapping[str, Any]) -> str:
        body: dict[str, Any] = {
            "companyName": customer["name"],
            "currency": {"id": self._currency(customer)},
        }
        if customer.get("email"):
            body["email"] = customer["email"]
        if self.config.subsidiary_id:
            body["subsidiary"] = {"id": self.config.subsidiary_id}
        response = self._upsert("customer", str(customer["id"]), body)
        found = _location_id(response)
        if found is None:
            raise SyncError("NetSuite saved the customer but named no record", response.status_code)
        return found

    def _upsert(
        self, record: str, external_id: str, body: Mapping[str, Any], replace: str | None = None
    ) -> httpx.Response:
        path = f"{RECORDS}/{record}/{_eid(external_id)}"
        return self._send("PUT", path, {"replace": replace} if replace else {}, body)

    def _internal_id(self, record: str, external_id: str) -> str | None:
        """The internal id of the record with that external id; None if there is none."""
        if not external_id:
            return None
        try:
            response = self._send("GET", f"{RECORDS}/{record}/{_eid(external_id)}")
        except SyncError as error:
            if error.response_code == 404:
                return None
            raise
        found = _json(response).get("id")
        return str(found) if found not in (None, "") else None

    def _currency(self, owner: Mapping[str, Any]) -> str:
        """The internal id of the currency whose symbol is `owner`'s ISO code."""
        code = str(owner["currency"]).upper()
        if code not in self._currencies:
            response = self._send("GET", f"{RECORDS}/currency", {"q": f'symbol IS "{code}"'})
            items = _json(response).get("items") or []
            if not items or not items[0].get("id"):
                raise SyncError(
                    f"NetSuite has no currency {code}: add it (Lists > Accounting > "
                    "Currencies) or enable Multiple Currencies",
                    response.status_code,
                )
            self._currencies[code] = str(items[0]["id"])
        return self._currencies[code]

    # -- HTTP ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        url = self.config.api_url + path
        if query:
            url += "?" + urlencode(query, quote_via=quote, safe="")
        headers = {
            "Authorization": oauth1.authorization(
                self._token,
                method,
                url,
                timestamp=int(self.context.now().timestamp()),
                nonce=self.context.nonce(),
            ),
            "Accept": "application/json",
        }
        content = None
        if body is not None:
            content = dumps_exact(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self._client.request(method, url, content=content, headers=headers)
        except httpx.TimeoutException:
            raise SyncError(f"NetSuite did not answer in {self._timeout:g} s") from None
        except httpx.HTTPError as error:
            raise SyncError(f"{type(error).__name__}: {error}") from None
        if not response.is_success:
            raise SyncError(describe(response), response.status_code)
        return response


# -- mapping (pure) -------------------------------------------------------------------


def invoice_body(
    invoice: Mapping[str, Any], customer_id: str, currency_id: str, config: NetSuiteConfig
) -> dict[str, Any]:
    """Our invoice as a NetSuite invoice: one item line per invoice line (prepaid credits
    and tax-only lines aside), amounts before tax; NetSuite's tax setup adds the tax."""
    lines = [
        _item_line(config.item_id, line)
        for line in invoice.get("lines") or []
        if line.get("type") not in _SKIPPED_LINES
    ]
    body: dict[str, Any] = {
        "entity": {"id": customer_id},
        "tranId": invoice.get("number") or invoice["id"],
        "tranDate": _date(invoice.get("issuedAt") or invoice["createdAt"]),
        "currency": {"id": currency_id},
        "memo": _memo(invoice),
        "item": {"items": lines},
    }
    if invoice.get("dueAt"):
        body["dueDate"] = _date(invoice["dueAt"])
    if config.subsidiary_id:
        body["subsidiary"] = {"id": config.subsidiary_id}
    return body


def credit_memo_body(
    note: Mapping[str, Any],
    invoice: Mapping[str, Any],
    customer_id: str,
    currency_id: str,
    created_from: str | None,
    config: NetSuiteConfig,
) -> dict[str, Any]:
    """Our credit note as a NetSuite credit memo: one line of its amount (positive, as
    NetSuite keeps credit memo amounts), linked to the invoice when NetSuite has it."""
    amount = to_decimal(note["amount"])
    credited = invoice.get("number") or note["invoiceId"]
    description = f"Credit note {note['number']} for invoice {credited} ({note['reason']})"
    if note.get("description"):
        description += f": {note['description']}"
    body: dict[str, Any] = {
        "entity": {"id": customer_id},
        "tranId": note["number"],
        "tranDate": _date(note.get("issuedAt") or note["createdAt"]),
        "currency": {"id": currency_id},
        "memo": f"Meterline credit note {note['number']} for invoice {credited}",
        "item": {
            "items": [
                {
                    "item": {"id": config.item_id},
                    "quantity": Decimal(1),
                    "rate": amount,
                    "amount": amount,
                    "description": description[:4000],
                }
            ]
        },
    }
    if created_from is not None:
        body["createdFrom"] = {"id": created_from}
    if config.subsidiary_id:
        body["subsidiary"] = {"id": config.subsidiary_id}
    return body


def _item_line(item_id: str, line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "item": {"id": item_id},
        "quantity": to_decimal(line["quantity"]),
        "rate": to_decimal(line["unitAmount"]),
        "amount": to_decimal(line["amount"]),
        "description": str(line.get("description") or "")[:4000],
    }


def _memo(invoice: Mapping[str, Any]) -> str:
    period = f"{_date(invoice['periodStart'])} to {_date(invoice['periodEnd'])}"
    return f"Meterline invoice {invoice.get('number') or invoice['id']}, period {period}"


def _date(instant: str) -> str:
    """An RFC 3339 instant of our API as the calendar date (UTC) NetSuite takes."""
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).date().isoformat()


def _eid(external_id: str) -> str:
    if not _EXTERNAL_ID.match(external_id):
        raise SyncError(f"{external_id!r} cannot be a NetSuite external id")
    return f"eid:{external_id}"


# -- answers ---------------------------------------------------------------------------


def _location_id(response: httpx.Response) -> str | None:
    location = response.headers.get("location", "").rstrip("/")
    found = location.rsplit("/", 1)[-1] if location else ""
    return found if found.isdigit() else None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = loads_exact(response.content)
    except ValueError:
        raise SyncError(
            "NetSuite answered something that is not JSON", response.status_code
        ) from None
    if not isinstance(data, dict):
        raise SyncError("NetSuite answered JSON that is not an object", response.status_code)
    return data


def describe(response: httpx.Response) -> str:
    """NetSuite's error (RFC 7807-like, `o:errorDetails`) as one line."""
    prefix = f"HTTP {response.status_code}"
    try:
        data = loads_exact(response.content)
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return prefix + (f": {text[:300]}" if text else "")
    details = data.get("o:errorDetails") if isinstance(data, dict) else None
    if isinstance(details, list) and details:
        parts = []
        for detail in details:
            if isinstance(detail, dict):
                code = detail.get("o:errorCode")
                text = str(detail.get("detail") or "")
                parts.append(f"{code}: {text}" if code else text)
        return f"{prefix}: " + "; ".join(parts)[:1000]
    title = data.get("title") if isinstance(data, dict) else None
    return prefix + (f": {title}" if title else "")
