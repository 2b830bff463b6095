"""Vertex O Series REST v2 adapter: one QUOTATION sale per draft invoice.

    POST {token_url}  (default {base_url}/oseries-auth/oauth/token)
        form: grant_type=client_credentials, client_id, client_secret[, scope]
        → {"access_token", "token_type", "expires_in"}   cached until shortly before expiry
    POST {base_url}/vertex-ws/v2/supplies   Authorization: Bearer <token>
        SaleRequestType with saleMessageType QUOTATION, transactionType SALE

A quotation is an estimate: Vertex computes it but does not store it in the Tax Journal
(unlike INVOICE), so asking twice for the same draft is harmless. The customer's
location is `customer.destination` (country, mainDivision, postalCode); an exempt
customer is sent with `customer.isTaxExempt` (and its certificate number when known).
Each line is a `lineItems[]` entry: `lineItemNumber` (our 1-based position),
`extendedPrice` (the amount after discounts), `product.value` (metric or fee type) and
`product.productClass` (the tax code, when the line has one).

From ApiSuccessResponseTransactionResponseType we read `data.lineItems[]`: per line the
`taxes[]` (`effectiveRate` as a fraction, `calculatedTax`, `jurisdiction.value`,
`imposition.value`, `taxResult`, `taxCollectedFromParty`). Following the API's own
notes, taxes collected from the SELLER and DEFERRED taxes are not charged to the
customer and are left out of the line's tax; a line without a `taxes` breakdown falls
back to its `totalTax`. A 401 on a cached token (revoked, or expired early) fetches one
fresh token and tries once more.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from core.clock import SYSTEM_CLOCK, Clock
from invoicing.tax.base import (
    LineTax,
    ProviderHttp,
    RetryPolicy,
    TaxableLine,
    TaxComponent,
    TaxProviderAuthFailed,
    TaxProviderBadResponse,
    TaxQuote,
    TaxRequest,
    decimal_field,
    rounded_tax,
)
from rating.money import HUNDRED, ZERO, ratio, round_money

NAME = "vertex"
RATE_PLACES = 4  # decimals of a rate derived from a total tax (percent)


class VertexConfig(BaseModel):
    """A tenant's Vertex O Series connection (camelCase or snake_case keys)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    base_url: str = Field(description="O Series host, e.g. https://tenant.ondemand.vertexinc.com")
    client_id: str
    client_secret: SecretStr
    company: str = Field(description="seller.company: the tenant's legal entity in Vertex")
    division: str | None = None
    scope: str | None = Field(default=None, description="OAuth scope, when the host needs one")
    token_url: str | None = Field(
        default=None, description="unset = {base_url}/oseries-auth/oauth/token"
    )
    timeout_seconds: float = Field(default=10.0, gt=0)
    token_refresh_margin_seconds: float = Field(default=60.0, ge=0)
    customer_specific: bool = Field(
        default=True,
        description="Vertex applies customer exemptions and exceptions by customerCode; "
        "keep true so cached quotes are not shared by customers.",
    )


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


def _error_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    # ApiErrorResponse: {"errors": [{"code", "message", "target"}]}
    errors = body.get("errors")
    if isinstance(errors, list):
        messages = [
            ": ".join(str(e[k]) for k in ("code", "message") if e.get(k))
            for e in errors
            if isinstance(e, dict)
        ]
        return "; ".join(m for m in messages if m) or None
    # OAuth 2.0 error: {"error": "invalid_client", "error_description": "..."}
    if isinstance(body.get("error"), str):
        description = body.get("error_description")
        return f"{body['error']}: {description}" if description else str(body["error"])
    return None


class VertexProvider:
    """Quotes tax with Vertex O Series `v2/supplies` (QUOTATION: never journaled)."""

    name = NAME

    def __init__(
        self,
        config: VertexConfig,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self._clock = clock
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(5.0, config.timeout_seconds))
        )
        self._http = ProviderHttp(
            NAME, self._client, retry=retry or RetryPolicy(), error_message=_error_message
        )
        base = config.base_url.rstrip("/")
        self._token_url = config.token_url or f"{base}/oseries-auth/oauth/token"
        self._supplies_url = f"{base}/vertex-ws/v2/supplies"
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    @property
    def customer_specific(self) -> bool:
        return self.config.customer_specific

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        """The Vertex quotation of every line of the request."""
        if not request.lines:
            return TaxQuote(NAME, request.currency)
        body = self.sale_request(request)
        token = self._bearer()
        try:
            answer = self._supplies(body, token)
        except TaxProviderAuthFailed:
            # The cached token was revoked or expired early: one fresh token, one retry.
            self._forget(token)
            answer = self._supplies(body, self._bearer())
        return self.parse(request, answer)

    def sale_request(self, request: TaxRequest) -> dict[str, Any]:
        """The SaleRequestType of a request."""
        destination: dict[str, Any] = {}
        if request.country:
            destination["country"] = request.country
        if request.region:
            destination["mainDivision"] = request.region
        if request.postal_code:
            destination["postalCode"] = request.postal_code
        customer: dict[str, Any] = {
            "customerCode": {"value": request.customer_id},
            "destination": destination,
        }
        if request.tax_exempt:
            customer["isTaxExempt"] = True
            if request.exemption_number:
                customer["exemptionCertificate"] = {
                    "exemptionCertificateNumber": request.exemption_number
                }
        seller: dict[str, Any] = {"company": self.config.company}
        if self.config.division:
            seller["division"] = self.config.division
        return {
            "saleMessageType": "QUOTATION",
            "transactionType": "SALE",
            "documentDate": request.invoice_date.isoformat(),
            "currency": {"isoCurrencyCodeAlpha": request.currency},
            "seller": seller,
            "customer": customer,
            "lineItems": [_line_item(number, line) for number, line in _numbered(request)],
        }

    def parse(self, request: TaxRequest, answer: Any) -> TaxQuote:
        """Per line tax and rate from the `data.lineItems` of Vertex's answer."""
        data = answer.get("data") if isinstance(answer, dict) else None
        items = data.get("lineItems") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise TaxProviderBadResponse(NAME, "the answer has no data.lineItems")
        by_number = {item.get("lineItemNumber"): item for item in items if isinstance(item, dict)}
        lines = []
        for number, line in _numbered(request):
            item = by_number.get(number)
            if item is None:
                raise TaxProviderBadResponse(NAME, f"line item {number} is missing")
            lines.append(_line_tax(line, number, item, request.currency))
        return TaxQuote(NAME, request.currency, tuple(lines))

    # ------------------------------------------------------------------- OAuth token

    def _bearer(self) -> str:
        margin = timedelta(seconds=self.config.token_refresh_margin_seconds)
        with self._token_lock:
            token = self._token
            if token is None or self._clock.now() >= token.expires_at - margin:
                token = self._fetch_token()
                self._token = token
            return token.value

    def _forget(self, value: str) -> None:
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret.get_secret_value(),
        }
        if self.config.scope:
            form["scope"] = self.config.scope
        issued_at = self._clock.now()
        answer = self._http.send("POST", self._token_url, form=form)
        value = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not value:
            raise TaxProviderBadResponse(NAME, "the token answer has no access_token")
        # Without expires_in the token is used for this call only.
        expires_in = decimal_field(NAME, answer.get("expires_in", 0), "expires_in")
        return _Token(value, issued_at + timedelta(seconds=float(expires_in)))

    def _supplies(self, body: dict[str, Any], token: str) -> Any:
        return self._http.send(
            "POST", self._supplies_url, json_body=body, headers={"Authorization": f"Bearer {token}"}
        )


def _numbered(request: TaxRequest) -> list[tuple[int, TaxableLine]]:
    return list(enumerate(request.lines, start=1))


def _line_item(number: int, line: TaxableLine) -> dict[str, Any]:
    product: dict[str, Any] = {"value": line.metric or line.fee_type}
    if line.tax_code:
        product["productClass"] = line.tax_code
    return {
        "lineItemNumber": number,
        "extendedPrice": line.amount,
        "quantity": {"value": 1},
        "product": product,
    }


def _line_tax(line: TaxableLine, number: int, item: dict[str, Any], currency: str) -> LineTax:
    taxes = item.get("taxes")
    if not isinstance(taxes, list) or not taxes:
        if "totalTax" not in item:
            raise TaxProviderBadResponse(NAME, f"line item {number} has neither taxes nor totalTax")
        amount = rounded_tax(NAME, item["totalTax"], f"line item {number} totalTax", currency)
        rate = ratio(amount * HUNDRED, line.amount, RATE_PLACES) if line.amount else ZERO
        return LineTax(line.key, rate, amount)
    exact = ZERO
    rate = ZERO
    components = []
    for tax in taxes:
        if not isinstance(tax, dict):
            continue
        if tax.get("taxCollectedFromParty") == "SELLER" or tax.get("taxResult") == "DEFERRED":
            continue  # borne by the seller, or due later: not on the customer's invoice
        what = f"line item {number} tax"
        calculated = decimal_field(NAME, tax.get("calculatedTax", 0), f"{what} calculatedTax")
        if tax.get("taxResult", "TAXABLE") != "TAXABLE" and calculated == 0:
            continue  # NONTAXABLE, EXEMPT, NO_TAX: no rate applied
        tax_rate = decimal_field(NAME, tax.get("effectiveRate", 0), f"{what} effectiveRate")
        tax_rate *= HUNDRED
        exact += calculated
        rate += tax_rate
        components.append(
            TaxComponent(
                name=_name(tax.get("imposition")) or _name(tax.get("impositionType")) or "Tax",
                rate=tax_rate,
                jurisdiction=_name(tax.get("jurisdiction")),
                amount=round_money(calculated, currency),
            )
        )
    return LineTax(line.key, rate, round_money(exact, currency), tuple(components))


def _name(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("value"), str):
        return str(value["value"])
    return None
