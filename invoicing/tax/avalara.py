"""Avalara AvaTax REST v2 adapter: one estimate transaction per draft invoice.

    POST {base_url}/api/v2/transactions/create?$include=Details
    Authorization: Basic base64(accountId:licenseKey)
    X-Avalara-Client: Meterline; <version>; Meterline AvaTax adapter; v2; <machine>

The body is a CreateTransactionModel of type `SalesOrder`: an estimate that AvaTax
computes but never records or reports (unlike `SalesInvoice`), so asking twice for the
same draft is harmless. The customer's location goes in `addresses.singleLocation`, or
in `shipTo` with the tenant's `origin` as `shipFrom` when one is configured. An exempt
customer is sent with `exemptionNo` (any value makes AvaTax treat the document as
exempt; we send the certificate number when known) and its `entityUseCode` when known.

From the TransactionModel answer we read, per line (`lines[].lineNumber` is the number
we sent): `tax` (the line's tax, rounded by AvaTax per jurisdiction) and
`details[]` (`rate` as a fraction, `tax`, `taxableAmount`, `taxName`, `jurisName`).
The line's rate is the sum of the rates of the details that taxed a non-zero amount,
so an exempt line shows 0 %, not the rate it would have had.
"""

from __future__ import annotations

import socket
from importlib import metadata
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from invoicing.tax.base import (
    LineTax,
    ProviderHttp,
    RetryPolicy,
    TaxableLine,
    TaxComponent,
    TaxProviderBadResponse,
    TaxQuote,
    TaxRequest,
    decimal_field,
    rounded_tax,
)
from rating.money import HUNDRED, ZERO

NAME = "avalara"
DEFAULT_EXEMPTION_NO = "EXEMPT"


def meterline_version() -> str:
    try:
        return metadata.version("meterline")
    except metadata.PackageNotFoundError:
        return "0.1.0"


class Address(BaseModel):
    """A postal address as AvaTax's AddressLocationInfo (region = state/province code)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    country: str
    region: str | None = None
    postal_code: str | None = None
    city: str | None = None
    line1: str | None = None


class AvalaraConfig(BaseModel):
    """A tenant's AvaTax connection (camelCase or snake_case keys)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    base_url: str = Field(description="https://rest.avatax.com or https://sandbox-rest.avatax.com")
    account_id: str
    license_key: SecretStr
    company_code: str
    default_tax_code: str | None = Field(
        default=None, description="Tax code of lines without one; unset = AvaTax's default."
    )
    origin: Address | None = Field(
        default=None, description="Where the tenant sells from; unset = singleLocation."
    )
    machine_name: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    customer_specific: bool = Field(
        default=True,
        description="AvaTax matches exemption certificates by customerCode; keep true "
        "unless the account stores none, so cached quotes are not shared by customers.",
    )


def _error_message(body: Any) -> str | None:
    # ErrorResult: {"error": {"code", "message", "target", "details": [{"message", ...}]}}
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    error = body["error"]
    parts = [str(error.get("code") or ""), str(error.get("message") or "")]
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        detail = details[0].get("description") or details[0].get("message")
        if detail and detail not in parts:
            parts.append(str(detail))
    return ": ".join(part for part in parts if part) or None


class AvalaraProvider:
    """Quotes tax with AvaTax `transactions/create` (type SalesOrder: never committed)."""

    name = NAME

    def __init__(
        self,
        config: AvalaraConfig,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(5.0, config.timeout_seconds))
        )
        self._http = ProviderHttp(
            NAME, self._client, retry=retry or RetryPolicy(), error_message=_error_message
        )
        machine = config.machine_name or socket.gethostname()
        version = meterline_version()
        self._client_header = f"Meterline; {version}; Meterline AvaTax adapter; v2; {machine}"

    @property
    def customer_specific(self) -> bool:
        return self.config.customer_specific

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def rates_for(self, request: TaxRequest) -> TaxQuote:
        """The AvaTax estimate of every line of the request."""
        if not request.lines:
            return TaxQuote(NAME, request.currency)
        answer = self._http.send(
            "POST",
            f"{self.config.base_url.rstrip('/')}/api/v2/transactions/create",
            params={"$include": "Details"},
            json_body=self.transaction(request),
            headers={"X-Avalara-Client": self._client_header},
            auth=(self.config.account_id, self.config.license_key.get_secret_value()),
        )
        return self.parse(request, answer)

    def transaction(self, request: TaxRequest) -> dict[str, Any]:
        """The CreateTransactionModel of a request."""
        destination: dict[str, Any] = {}
        if request.country:
            destination["country"] = request.country
        if request.region:
            destination["region"] = request.region
        if request.postal_code:
            destination["postalCode"] = request.postal_code
        if self.config.origin is None:
            addresses: dict[str, Any] = {"singleLocation": destination}
        else:
            origin = self.config.origin.model_dump(by_alias=True, exclude_none=True)
            addresses = {"shipFrom": origin, "shipTo": destination}
        body: dict[str, Any] = {
            "type": "SalesOrder",
            "companyCode": self.config.company_code,
            "date": request.invoice_date.isoformat(),
            "customerCode": request.customer_id,
            "currencyCode": request.currency,
            "addresses": addresses,
            "lines": [self._line(number, line) for number, line in _numbered(request)],
            "commit": False,
        }
        if request.tax_exempt:
            body["exemptionNo"] = request.exemption_number or DEFAULT_EXEMPTION_NO
            if request.entity_use_code:
                body["entityUseCode"] = request.entity_use_code
        return body

    def _line(self, number: str, line: TaxableLine) -> dict[str, Any]:
        item: dict[str, Any] = {"number": number, "quantity": 1, "amount": line.amount}
        tax_code = line.tax_code or self.config.default_tax_code
        if tax_code:
            item["taxCode"] = tax_code
        if line.metric:
            item["itemCode"] = line.metric
        item["description"] = line.description or line.fee_type
        return item

    def parse(self, request: TaxRequest, answer: Any) -> TaxQuote:
        """Per line tax and rate from AvaTax's TransactionModel."""
        if not isinstance(answer, dict) or not isinstance(answer.get("lines"), list):
            raise TaxProviderBadResponse(NAME, "the transaction has no lines")
        by_number = {
            str(line.get("lineNumber")): line for line in answer["lines"] if isinstance(line, dict)
        }
        lines = []
        for number, line in _numbered(request):
            result = by_number.get(number)
            if result is None:
                raise TaxProviderBadResponse(NAME, f"line {number} is missing from the transaction")
            lines.append(self._line_tax(line.key, number, result, request.currency))
        return TaxQuote(NAME, request.currency, tuple(lines))

    def _line_tax(self, key: str, number: str, result: dict[str, Any], currency: str) -> LineTax:
        if "tax" not in result:
            raise TaxProviderBadResponse(NAME, f"line {number} has no tax")
        amount = rounded_tax(NAME, result["tax"], f"line {number} tax", currency)
        components = []
        rate = ZERO
        for detail in result.get("details") or ():
            if not isinstance(detail, dict):
                continue
            what = f"line {number} detail"
            taxable = detail.get("taxableAmount")
            if taxable is not None and decimal_field(NAME, taxable, f"{what} taxable") == 0:
                continue  # exempt or non-taxable in this jurisdiction: no rate applied
            detail_rate = decimal_field(NAME, detail.get("rate", 0), f"{what} rate") * HUNDRED
            rate += detail_rate
            components.append(
                TaxComponent(
                    name=str(detail.get("taxName") or detail.get("jurisName") or "Tax"),
                    rate=detail_rate,
                    jurisdiction=detail.get("jurisName"),
                    amount=rounded_tax(NAME, detail.get("tax", 0), f"{what} tax", currency),
                )
            )
        return LineTax(key, rate, amount, tuple(components))


def _numbered(request: TaxRequest) -> list[tuple[str, TaxableLine]]:
    # AvaTax line numbers are strings; ours are the 1-based positions in the request.
    return [(str(index), line) for index, line in enumerate(request.lines, start=1)]
