"""The AvaTax adapter against a loopback server that behaves like AvaTax REST v2.

The fake checks what AvaTax requires of `POST /api/v2/transactions/create` (Basic auth
with account id and license key, the X-Avalara-Client header, a CreateTransactionModel
with exact numeric amounts) and answers a TransactionModel computed the AvaTax way:
one detail per jurisdiction, each rounded to the cent, the line's tax their sum.
"""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from pydantic import SecretStr
from tenacity import wait_none

from invoicing.tax import (
    AvalaraConfig,
    AvalaraProvider,
    CachedTaxProvider,
    RetryPolicy,
    TaxableLine,
    TaxProviderAuthFailed,
    TaxProviderBadResponse,
    TaxProviderError,
    TaxProviderRejected,
    TaxProviderUnavailable,
    TaxRequest,
)
from tests.tax import LoopbackServer, Request, Response

ACCOUNT = "2000134479"
LICENSE = "1A2B3C4D5E6F7G8H"
COMPANY = "METERLINE"
CREATE = "/api/v2/transactions/create"

# (taxName, jurisName, jurisType, rate as a fraction) per (country, region)
JURISDICTIONS: dict[tuple[str, str | None], list[tuple[str, str, str, Decimal]]] = {
    ("US", "CA"): [
        ("CA STATE TAX", "CALIFORNIA", "STA", Decimal("0.06")),
        ("CA COUNTY TAX", "SAN FRANCISCO", "CTY", Decimal("0.0025")),
        ("CA SPECIAL TAX", "SAN FRANCISCO COUNTY DISTRICT TAX SP", "STJ", Decimal("0.01")),
    ],
    ("US", "OR"): [],
    ("DE", None): [("Standard Rate", "GERMANY", "CNT", Decimal("0.19"))],
}

TOP_LEVEL = {
    "type", "companyCode", "date", "customerCode", "currencyCode", "addresses", "lines",
    "commit", "exemptionNo", "entityUseCode", "code", "description",
}  # fmt: skip
LINE_KEYS = {"number", "quantity", "amount", "taxCode", "itemCode", "description"}
ADDRESS_KEYS = {"line1", "city", "region", "country", "postalCode"}


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _is_number(value: Any) -> bool:
    return isinstance(value, Decimal | int) and not isinstance(value, bool)


def _address_problems(where: str, address: Any) -> list[str]:
    if not isinstance(address, dict):
        return [f"{where} must be an object"]
    problems = [
        f"{where}.{k} is not an AddressLocationInfo field" for k in address.keys() - ADDRESS_KEYS
    ]
    if not isinstance(address.get("country"), str):
        problems.append(f"{where}.country is required")
    problems += [
        f"{where}.{k} must be a string"
        for k in ("region", "postalCode", "city", "line1")
        if k in address and not isinstance(address[k], str)
    ]
    return problems


def model_problems(body: Any) -> list[str]:
    """What AvaTax would reject in a CreateTransactionModel (400 ModelStateInvalid)."""
    if not isinstance(body, dict):
        return ["the body must be a CreateTransactionModel object"]
    problems = [f"{k} is not a CreateTransactionModel field" for k in body.keys() - TOP_LEVEL]
    if body.get("type") != "SalesOrder":
        problems.append(f"type must be SalesOrder for an estimate, not {body.get('type')!r}")
    if body.get("companyCode") != COMPANY:
        problems.append(f"companyCode {body.get('companyCode')!r} is not a company of the account")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(body.get("date"))):
        problems.append("date must be yyyy-MM-dd")
    if not isinstance(body.get("customerCode"), str) or not body["customerCode"]:
        problems.append("customerCode is required")
    if not re.fullmatch(r"[A-Z]{3}", str(body.get("currencyCode"))):
        problems.append("currencyCode must be an ISO 4217 code")
    if body.get("commit", False) is not False:
        problems.append("an estimate must not be committed")
    for key in ("exemptionNo", "entityUseCode"):
        if key in body and not isinstance(body[key], str):
            problems.append(f"{key} must be a string")
    addresses = body.get("addresses")
    if not isinstance(addresses, dict):
        problems.append("addresses is required")
    elif set(addresses) == {"singleLocation"}:
        problems += _address_problems("addresses.singleLocation", addresses["singleLocation"])
    elif set(addresses) == {"shipFrom", "shipTo"}:
        problems += _address_problems("addresses.shipFrom", addresses["shipFrom"])
        problems += _address_problems("addresses.shipTo", addresses["shipTo"])
    else:
        problems.append("addresses needs singleLocation, or shipFrom and shipTo")
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        return [*problems, "lines must hold at least one line"]
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if not isinstance(line, dict):
            problems.append(f"{where} must be an object")
            continue
        problems += [f"{where}.{k} is not a LineItemModel field" for k in line.keys() - LINE_KEYS]
        if not isinstance(line.get("number"), str):
            problems.append(f"{where}.number must be a string")
        if not _is_number(line.get("amount")):
            problems.append(f"{where}.amount must be a JSON number, got {line.get('amount')!r}")
        if "quantity" in line and not _is_number(line["quantity"]):
            problems.append(f"{where}.quantity must be a JSON number")
        problems += [
            f"{where}.{k} must be a string"
            for k in ("taxCode", "itemCode", "description")
            if k in line and not isinstance(line[k], str)
        ]
    return problems


def _error(status: int, code: str, message: str, target: str) -> Response:
    detail = {"code": code, "message": message, "description": message, "severity": "Error"}
    return Response(
        status,
        {"error": {"code": code, "message": message, "target": target, "details": [detail]}},
    )


def avatax(request: Request) -> Response:
    """The fake AvaTax service."""
    if request.method != "POST" or request.path != CREATE:
        return _error(404, "NotFound", f"{request.method} {request.path} not found", "Unknown")
    expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{LICENSE}".encode()).decode()
    if request.headers.get("authorization") != expected:
        return _error(
            401, "AuthenticationException", "Authentication failed.", "HttpRequestHeaders"
        )
    client = request.headers.get("x-avalara-client", "")
    if not re.fullmatch(r"Meterline; [^;]+; [^;]+; v2; [^;]+", client):
        return _error(
            400, "InvalidClientHeader", f"X-Avalara-Client {client!r}", "HttpRequestHeaders"
        )
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _error(415, "UnsupportedMediaType", "send application/json", "HttpRequestHeaders")
    if request.query != {"$include": ["Details"]}:
        return _error(400, "InvalidInclude", f"unexpected query {request.query}", "IncorrectData")
    body = request.json()
    problems = model_problems(body)
    if problems:
        return _error(400, "ModelStateInvalid", "; ".join(problems), "IncorrectData")
    addresses = body["addresses"]
    location = addresses.get("singleLocation") or addresses["shipTo"]
    country, region = location["country"], location.get("region")
    jurisdictions = JURISDICTIONS.get((country, region), JURISDICTIONS.get((country, None)))
    if jurisdictions is None:
        message = f"Address not geocoded: {country} {region}"
        return _error(400, "AddressUnknown", message, "IncorrectData")
    exempt = "exemptionNo" in body or "entityUseCode" in body
    lines = []
    for line in body["lines"]:
        amount = Decimal(line["amount"])
        taxable = Decimal(0) if exempt else amount
        details = [
            {
                "country": country,
                "region": region,
                "jurisName": juris_name,
                "jurisType": juris_type,
                "taxName": tax_name,
                "rate": rate,
                "taxableAmount": taxable,
                "exemptAmount": amount - taxable,
                "nonTaxableAmount": 0,
                "tax": _cents(taxable * rate),
                "taxCalculated": _cents(taxable * rate),
            }
            for tax_name, juris_name, juris_type, rate in jurisdictions
        ]
        tax = sum((detail["tax"] for detail in details), Decimal(0))
        lines.append(
            {
                "lineNumber": line["number"],
                "lineAmount": amount,
                "taxCode": line.get("taxCode", "P0000000"),
                "itemCode": line.get("itemCode", ""),
                "exemptAmount": amount - taxable,
                "taxableAmount": taxable,
                "tax": tax,
                "taxCalculated": tax,
                "details": details,
            }
        )
    return Response(
        201,
        {
            "id": 0,
            "code": "3f2bd4d1-7f0e-4d5c-9b2c-5d1b8a7f0c11",
            "companyId": 12345,
            "date": body["date"],
            "status": "Temporary",
            "type": "SalesOrder",
            "currencyCode": body["currencyCode"],
            "customerCode": body["customerCode"],
            "exemptNo": body.get("exemptionNo"),
            "totalAmount": sum((Decimal(line["amount"]) for line in body["lines"]), Decimal(0)),
            "totalTax": sum((line["tax"] for line in lines), Decimal(0)),
            "lines": lines,
        },
    )


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(avatax).running() as running:
        yield running


def make_provider(server: LoopbackServer, **overrides: Any) -> AvalaraProvider:
    settings: dict[str, Any] = {
        "baseUrl": server.url,
        "accountId": ACCOUNT,
        "licenseKey": LICENSE,
        "companyCode": COMPANY,
        "machineName": "billing-worker-1",
        "timeoutSeconds": 2,
        **overrides,
    }
    return AvalaraProvider(
        AvalaraConfig.model_validate(settings), retry=RetryPolicy(wait=wait_none())
    )


def make_request(**overrides: Any) -> TaxRequest:
    fields: dict[str, Any] = {
        "tenant_id": "ten_1",
        "customer_id": "cust-42",
        "country": "US",
        "region": "CA",
        "postal_code": "94105",
        "currency": "USD",
        "invoice_date": date(2025, 1, 31),
        "lines": (
            TaxableLine(
                "0", Decimal("100.00"), "USAGE_FEE", metric="api_calls", tax_code="SW054000"
            ),
            TaxableLine("1", Decimal("33.33"), "CHARGE", description="Pro plan"),
        ),
    }
    fields.update(overrides)
    return TaxRequest(**fields)


def test_quote_carries_avatax_amounts_and_rates(server: LoopbackServer) -> None:
    quote = make_provider(server).rates_for(make_request())

    assert quote.provider == "avalara"
    first, second = quote.line("0"), quote.line("1")
    assert (first.rate, first.amount) == (Decimal("7.25"), Decimal("7.25"))
    # AvaTax rounds per jurisdiction: 2.00 + 0.08 + 0.33 = 2.41, where one rate on the
    # whole line would give 33.33 x 7.25 % = 2.416... = 2.42. The provider's amount wins.
    assert (second.rate, second.amount) == (Decimal("7.25"), Decimal("2.41"))
    assert quote.total == Decimal("9.66")
    assert [(c.name, c.jurisdiction, c.rate, c.amount) for c in second.components] == [
        ("CA STATE TAX", "CALIFORNIA", Decimal("6.00"), Decimal("2.00")),
        ("CA COUNTY TAX", "SAN FRANCISCO", Decimal("0.2500"), Decimal("0.08")),
        (
            "CA SPECIAL TAX",
            "SAN FRANCISCO COUNTY DISTRICT TAX SP",
            Decimal("1.00"),
            Decimal("0.33"),
        ),
    ]


def test_request_is_a_sales_order_with_exact_amounts(server: LoopbackServer) -> None:
    make_provider(server).rates_for(make_request())

    (sent,) = server.requests
    assert (sent.method, sent.path, sent.query) == ("POST", CREATE, {"$include": ["Details"]})
    credentials = base64.b64encode(f"{ACCOUNT}:{LICENSE}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {credentials}"
    assert sent.headers["x-avalara-client"].startswith("Meterline; ")
    assert sent.headers["x-avalara-client"].endswith("; v2; billing-worker-1")
    assert sent.json() == {
        "type": "SalesOrder",
        "companyCode": COMPANY,
        "date": "2025-01-31",
        "customerCode": "cust-42",
        "currencyCode": "USD",
        "addresses": {"singleLocation": {"country": "US", "region": "CA", "postalCode": "94105"}},
        "lines": [
            {
                "number": "1",
                "quantity": 1,
                "amount": Decimal("100.00"),
                "taxCode": "SW054000",
                "itemCode": "api_calls",
                "description": "USAGE_FEE",
            },
            {"number": "2", "quantity": 1, "amount": Decimal("33.33"), "description": "Pro plan"},
        ],
        "commit": False,
    }
    # Amounts are JSON number literals written from the Decimal, never through a float.
    assert b'"amount":100.00' in sent.body and b'"amount":33.33' in sent.body


def test_exempt_customer_is_sent_with_its_exemption(server: LoopbackServer) -> None:
    provider = make_provider(server)
    quote = provider.rates_for(
        make_request(tax_exempt=True, exemption_number="CA-RESALE-7781", entity_use_code="G")
    )

    body = server.requests[-1].json()
    assert (body["exemptionNo"], body["entityUseCode"]) == ("CA-RESALE-7781", "G")
    assert [(line.rate, line.amount, line.components) for line in quote.lines] == [
        (Decimal(0), Decimal("0.00"), ()),
        (Decimal(0), Decimal("0.00"), ()),
    ]

    provider.rates_for(make_request(tax_exempt=True))
    body = server.requests[-1].json()
    assert body["exemptionNo"] == "EXEMPT" and "entityUseCode" not in body


def test_taxable_customer_sends_no_exemption_fields(server: LoopbackServer) -> None:
    make_provider(server).rates_for(make_request())
    body = server.requests[-1].json()
    assert "exemptionNo" not in body and "entityUseCode" not in body


def test_configured_origin_is_ship_from(server: LoopbackServer) -> None:
    origin = {"line1": "100 Main St", "city": "Portland", "region": "OR", "country": "US"}
    provider = make_provider(server, origin=origin, defaultTaxCode="SW054000")

    quote = provider.rates_for(make_request(country="DE", region=None, postal_code="10115"))

    body = server.requests[-1].json()
    assert body["addresses"] == {
        "shipFrom": {"country": "US", "region": "OR", "city": "Portland", "line1": "100 Main St"},
        "shipTo": {"country": "DE", "postalCode": "10115"},
    }
    assert [line["taxCode"] for line in body["lines"]] == ["SW054000", "SW054000"]
    assert [(line.rate, line.amount) for line in quote.lines] == [
        (Decimal("19.00"), Decimal("19.00")),
        (Decimal("19.00"), Decimal("6.33")),
    ]


def test_jurisdiction_without_tax_quotes_zero(server: LoopbackServer) -> None:
    quote = make_provider(server).rates_for(make_request(region="OR", postal_code="97201"))
    assert [(line.rate, line.amount) for line in quote.lines] == [
        (Decimal(0), Decimal("0.00")),
        (Decimal(0), Decimal("0.00")),
    ]


def test_server_errors_are_retried_until_success(server: LoopbackServer) -> None:
    server.script(Response(500, {"error": {"message": "boom"}}), Response(503))

    quote = make_provider(server).rates_for(make_request())

    assert server.count(CREATE) == 3
    assert quote.line("0").amount == Decimal("7.25")


def test_three_failed_attempts_give_up_as_unavailable(server: LoopbackServer) -> None:
    server.script(*[Response(500, {"error": {"code": "ServerError", "message": "down"}})] * 5)

    with pytest.raises(TaxProviderUnavailable) as caught:
        make_provider(server).rates_for(make_request())

    assert server.count(CREATE) == 3
    assert caught.value.code == "tax_provider_unavailable" and caught.value.retryable
    assert "HTTP 500 after 3 attempts: ServerError: down" in caught.value.message


def test_throttling_is_retried(server: LoopbackServer) -> None:
    throttled = Response(429, {"error": {"message": "Too many requests"}}, {"Retry-After": "0"})
    server.script(throttled)

    make_provider(server).rates_for(make_request())

    assert server.count(CREATE) == 2


def test_slow_answer_times_out_and_is_retried(server: LoopbackServer) -> None:
    server.script(Response(201, b"{}", delay=0.6))

    quote = make_provider(server, timeoutSeconds=0.2).rates_for(make_request())

    assert server.count(CREATE) == 2
    assert quote.line("1").amount == Decimal("2.41")


def test_always_slow_gives_up_after_three_timeouts(server: LoopbackServer) -> None:
    server.script(*[Response(201, b"{}", delay=0.4)] * 3)

    with pytest.raises(TaxProviderUnavailable, match="ReadTimeout after 3 attempts"):
        make_provider(server, timeoutSeconds=0.15).rates_for(make_request())

    assert server.count(CREATE) == 3


def test_bad_credentials_are_not_retried(server: LoopbackServer) -> None:
    with pytest.raises(TaxProviderAuthFailed) as caught:
        make_provider(server, licenseKey="WRONG").rates_for(make_request())

    assert server.count(CREATE) == 1
    assert caught.value.http_status == 401 and caught.value.code == "tax_provider_auth_failed"
    assert "AuthenticationException: Authentication failed." in caught.value.message


def test_rejected_request_is_not_retried_and_carries_avatax_message(
    server: LoopbackServer,
) -> None:
    with pytest.raises(TaxProviderRejected) as caught:
        make_provider(server).rates_for(make_request(country="ZZ", region=None))

    assert server.count(CREATE) == 1
    assert caught.value.code == "tax_provider_rejected"
    assert "AddressUnknown: Address not geocoded: ZZ" in caught.value.message


def test_answer_without_the_line_is_a_bad_response(server: LoopbackServer) -> None:
    server.script(Response(201, {"id": 0, "lines": [{"lineNumber": "1", "tax": 7.25}]}))

    with pytest.raises(TaxProviderBadResponse, match="line 2 is missing"):
        make_provider(server).rates_for(make_request())


def test_invoice_without_taxable_lines_makes_no_request(server: LoopbackServer) -> None:
    quote = make_provider(server).rates_for(make_request(lines=()))
    assert quote.lines == () and server.requests == []


def test_cached_quote_is_served_without_a_request(server: LoopbackServer) -> None:
    cached = CachedTaxProvider(make_provider(server))

    first = cached.rates_for(make_request())
    again = cached.rates_for(make_request())
    other_customer = cached.rates_for(make_request(customer_id="cust-43"))
    other_place = cached.rates_for(make_request(postal_code="94016"))

    assert server.count(CREATE) == 3  # first, other customer, other postal code
    assert again == first and other_customer.total == first.total
    assert other_place.line("1").amount == Decimal("2.41")


def test_refused_connection_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = AvalaraConfig(
        base_url=f"http://127.0.0.1:{port}",
        account_id=ACCOUNT,
        license_key=SecretStr(LICENSE),
        company_code=COMPANY,
    )
    provider = AvalaraProvider(config, retry=RetryPolicy(wait=wait_none()))

    with pytest.raises(TaxProviderUnavailable, match="ConnectError after 3 attempts"):
        provider.rates_for(make_request())


def test_unsendable_request_fails_at_once() -> None:
    config = AvalaraConfig(
        base_url="ftp://127.0.0.1", account_id=ACCOUNT, license_key=SecretStr(LICENSE),
        company_code=COMPANY,
    )  # fmt: skip
    provider = AvalaraProvider(config, retry=RetryPolicy(wait=wait_none()))

    with pytest.raises(TaxProviderError, match="UnsupportedProtocol") as caught:
        provider.rates_for(make_request())
    assert not isinstance(caught.value, TaxProviderUnavailable)
