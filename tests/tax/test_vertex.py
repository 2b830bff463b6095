"""The Vertex adapter against a loopback server that behaves like Vertex O Series v2.

The fake issues OAuth 2.0 client-credentials tokens at `/oseries-auth/oauth/token`
(form body, expiring tokens, revocation) and answers `POST /vertex-ws/v2/supplies`
only with a valid Bearer token, after checking the SaleRequestType the OpenAPI
description of the Tax Calculation API v2 defines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from tenacity import wait_none

from core.clock import FrozenClock
from invoicing.tax import (
    RetryPolicy,
    TaxableLine,
    TaxProviderAuthFailed,
    TaxProviderRejected,
    TaxProviderUnavailable,
    TaxRequest,
    VertexConfig,
    VertexProvider,
)
from tests.tax import LoopbackServer, Request, Response

CLIENT_ID = "meterline-prod"
CLIENT_SECRET = "s3cr3t-Vx"
COMPANY = "Meterline Inc"
TOKEN = "/oseries-auth/oauth/token"
SUPPLIES = "/vertex-ws/v2/supplies"
TOKEN_LIFETIME = 1200  # seconds

# (jurisdiction, jurisdictionType, imposition, effectiveRate, taxCollectedFromParty)
TAXES: dict[tuple[str, str], list[tuple[str, str, str, Decimal, str]]] = {
    ("US", "PA"): [
        ("PENNSYLVANIA", "STATE", "Sales and Use Tax", Decimal("0.06"), "BUYER"),
        ("ALLEGHENY", "COUNTY", "Local Sales and Use Tax", Decimal("0.01"), "BUYER"),
    ],
    ("US", "WA"): [
        ("WASHINGTON", "STATE", "Retail Sales Tax", Decimal("0.065"), "BUYER"),
        ("WASHINGTON", "STATE", "Business and Occupation Tax", Decimal("0.015"), "SELLER"),
    ],
}


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _is_number(value: Any) -> bool:
    return isinstance(value, Decimal | int) and not isinstance(value, bool)


def sale_problems(body: Any) -> list[str]:
    """What Vertex would reject in a SaleRequestType (400)."""
    if not isinstance(body, dict):
        return ["the body must be a SaleRequestType"]
    allowed = {
        "saleMessageType", "transactionType", "documentDate", "currency", "seller",
        "customer", "lineItems", "documentNumber", "transactionId",
    }  # fmt: skip
    problems = [f"{k} is not a SaleRequestType field" for k in body.keys() - allowed]
    if body.get("saleMessageType") != "QUOTATION":
        problems.append(f"saleMessageType {body.get('saleMessageType')!r} is not a quotation")
    if body.get("transactionType") != "SALE":
        problems.append("transactionType is required: SALE, RENTAL or LEASE")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(body.get("documentDate"))):
        problems.append("documentDate must be a date")
    currency = body.get("currency")
    if not isinstance(currency, dict) or not re.fullmatch(
        r"[A-Z]{3}", str(currency.get("isoCurrencyCodeAlpha"))
    ):
        problems.append("currency.isoCurrencyCodeAlpha must be [A-Z]{3}")
    seller = body.get("seller")
    if not isinstance(seller, dict) or seller.get("company") != COMPANY:
        problems.append("seller.company is not a taxpayer of this instance")
    customer = body.get("customer")
    if not isinstance(customer, dict):
        return [*problems, "customer is required"]
    code = customer.get("customerCode")
    if not isinstance(code, dict) or not isinstance(code.get("value"), str):
        problems.append("customer.customerCode.value must be a string")
    destination = customer.get("destination")
    if not isinstance(destination, dict) or not isinstance(destination.get("country"), str):
        problems.append("customer.destination.country is required")
    elif destination.keys() - {"country", "mainDivision", "postalCode", "city"}:
        problems.append(f"customer.destination has unknown fields {sorted(destination)}")
    if "isTaxExempt" in customer and not isinstance(customer["isTaxExempt"], bool):
        problems.append("customer.isTaxExempt must be a boolean")
    items = body.get("lineItems")
    if not isinstance(items, list) or not items:
        return [*problems, "each transaction requires at least one line item"]
    for index, item in enumerate(items):
        where = f"lineItems[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be an object")
            continue
        if not isinstance(item.get("lineItemNumber"), int) or isinstance(
            item.get("lineItemNumber"), bool
        ):
            problems.append(f"{where}.lineItemNumber must be an integer")
        if not _is_number(item.get("extendedPrice")):
            problems.append(
                f"{where}.extendedPrice must be a number, got {item.get('extendedPrice')!r}"
            )
        quantity = item.get("quantity", {"value": 1})
        if not isinstance(quantity, dict) or not _is_number(quantity.get("value")):
            problems.append(f"{where}.quantity.value must be a number")
        product = item.get("product")
        if not isinstance(product, dict) or not isinstance(product.get("value"), str):
            problems.append(f"{where}.product.value must be a string")
        elif len(product["value"]) > 40 or len(product.get("productClass", "")) > 40:
            problems.append(f"{where}.product: size must be between 0 and 40")
    return problems


class FakeVertex:
    """The fake O Series instance: an OAuth server and the supplies endpoint."""

    def __init__(self) -> None:
        self.valid_tokens: set[str] = set()
        self.issued = 0

    def revoke_all(self) -> None:
        self.valid_tokens.clear()

    def __call__(self, request: Request) -> Response:
        if request.method == "POST" and request.path == TOKEN:
            return self.token(request)
        if request.method == "POST" and request.path == SUPPLIES:
            return self.supplies(request)
        return Response(404, {"errors": [{"code": "404", "message": "Not Found"}]})

    def token(self, request: Request) -> Response:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return Response(400, {"error": "invalid_request", "error_description": "form body"})
        form = request.form()
        expected = {
            "grant_type": ["client_credentials"],
            "client_id": [CLIENT_ID],
            "client_secret": [CLIENT_SECRET],
        }
        if {k: v for k, v in form.items() if k != "scope"} != expected:
            return Response(
                401, {"error": "invalid_client", "error_description": "Bad client credentials"}
            )
        self.issued += 1
        token = f"tok-{self.issued}"
        self.valid_tokens.add(token)
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": TOKEN_LIFETIME,
                "scope": form.get("scope", ["calc-rest-api"])[0],
            },
        )

    def supplies(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        if authorization.removeprefix("Bearer ") not in self.valid_tokens:
            return Response(401, {"errors": [{"code": "401", "message": "Invalid access token"}]})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Response(415, {"errors": [{"code": "415", "message": "Unsupported Media Type"}]})
        body = request.json()
        problems = sale_problems(body)
        if problems:
            errors = [{"code": "400", "message": problem, "target": "body"} for problem in problems]
            return Response(400, {"errors": errors})
        customer = body["customer"]
        destination = customer["destination"]
        taxes = TAXES.get((destination["country"], destination.get("mainDivision", "")), [])
        exempt = customer.get("isTaxExempt", False)
        items: list[dict[str, Any]] = []
        for item in body["lineItems"]:
            price = Decimal(item["extendedPrice"])
            results: list[dict[str, Any]] = [
                {
                    "jurisdiction": {
                        "jurisdictionType": juris_type,
                        "jurisdictionId": "31152",
                        "effectiveDate": "1970-01-01",
                        "value": juris,
                    },
                    "imposition": {"impositionId": "1", "value": imposition},
                    "impositionType": {
                        "impositionTypeId": "1",
                        "value": "General Sales and Use Tax",
                    },
                    "taxResult": "EXEMPT" if exempt else "TAXABLE",
                    "taxType": "SALES",
                    "situs": "DESTINATION",
                    "taxCollectedFromParty": party,
                    "effectiveRate": rate,
                    "taxable": Decimal(0) if exempt else price,
                    "exempt": price if exempt else Decimal(0),
                    "calculatedTax": Decimal(0) if exempt else _cents(price * rate),
                }
                for juris, juris_type, imposition, rate, party in taxes
            ]
            items.append(
                {
                    "lineItemNumber": item["lineItemNumber"],
                    "extendedPrice": price,
                    "product": item["product"],
                    "totalTax": sum((r["calculatedTax"] for r in results), Decimal(0)),
                    "taxes": results,
                }
            )
        total_tax = sum((item["totalTax"] for item in items), Decimal(0))
        data = {
            "saleMessageType": "QUOTATION",
            "transactionType": "SALE",
            "documentDate": body["documentDate"],
            "currency": body["currency"],
            "seller": body["seller"],
            "customer": customer,
            "subTotal": sum((item["extendedPrice"] for item in items), Decimal(0)),
            "totalTax": total_tax,
            "lineItems": items,
        }
        meta = {
            "app": "vertex-o-series",
            "timeElapsed(ms)": 4,
            "timeReceived": "2025-01-31T10:00:00.000Z",
        }
        return Response(200, {"data": data, "meta": meta})


def start_clock() -> FrozenClock:
    return FrozenClock(datetime(2025, 1, 31, 10, 0, tzinfo=UTC))


@pytest.fixture
def fake() -> FakeVertex:
    return FakeVertex()


@pytest.fixture
def server(fake: FakeVertex) -> Iterator[LoopbackServer]:
    with LoopbackServer(fake).running() as running:
        yield running


@pytest.fixture
def clock() -> FrozenClock:
    return start_clock()


def make_provider(server: LoopbackServer, clock: FrozenClock, **overrides: Any) -> VertexProvider:
    settings: dict[str, Any] = {
        "base_url": server.url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "company": COMPANY,
        "timeout_seconds": 2,
        **overrides,
    }
    return VertexProvider(
        VertexConfig.model_validate(settings), retry=RetryPolicy(wait=wait_none()), clock=clock
    )


def make_request(**overrides: Any) -> TaxRequest:
    fields: dict[str, Any] = {
        "tenant_id": "ten_1",
        "customer_id": "cust-42",
        "country": "US",
        "region": "PA",
        "postal_code": "15222",
        "currency": "USD",
        "invoice_date": date(2025, 1, 31),
        "lines": (
            TaxableLine("a", Decimal("100.00"), "USAGE_FEE", metric="api_calls", tax_code="SAAS"),
            TaxableLine("b", Decimal("19.99"), "CHARGE"),
        ),
    }
    fields.update(overrides)
    return TaxRequest(**fields)


def test_quote_carries_vertex_amounts_and_rates(server: LoopbackServer, clock: FrozenClock) -> None:
    quote = make_provider(server, clock).rates_for(make_request())

    assert quote.provider == "vertex"
    assert (quote.line("a").rate, quote.line("a").amount) == (Decimal("7.00"), Decimal("7.00"))
    # Per imposition: 19.99 x 6 % = 1.1994 -> 1.20, x 1 % = 0.1999 -> 0.20.
    assert (quote.line("b").rate, quote.line("b").amount) == (Decimal("7.00"), Decimal("1.40"))
    assert [(c.name, c.jurisdiction, c.rate, c.amount) for c in quote.line("b").components] == [
        ("Sales and Use Tax", "PENNSYLVANIA", Decimal("6.00"), Decimal("1.20")),
        ("Local Sales and Use Tax", "ALLEGHENY", Decimal("1.00"), Decimal("0.20")),
    ]


def test_request_is_a_quotation_with_exact_amounts(
    server: LoopbackServer, clock: FrozenClock
) -> None:
    make_provider(server, clock, division="EMEA").rates_for(make_request())

    token_request, sale = server.requests
    assert (token_request.method, token_request.path) == ("POST", TOKEN)
    assert token_request.form() == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert (sale.method, sale.path) == ("POST", SUPPLIES)
    assert sale.headers["authorization"] == "Bearer tok-1"
    assert sale.json() == {
        "saleMessageType": "QUOTATION",
        "transactionType": "SALE",
        "documentDate": "2025-01-31",
        "currency": {"isoCurrencyCodeAlpha": "USD"},
        "seller": {"company": COMPANY, "division": "EMEA"},
        "customer": {
            "customerCode": {"value": "cust-42"},
            "destination": {"country": "US", "mainDivision": "PA", "postalCode": "15222"},
        },
        "lineItems": [
            {
                "lineItemNumber": 1,
                "extendedPrice": Decimal("100.00"),
                "quantity": {"value": 1},
                "product": {"value": "api_calls", "productClass": "SAAS"},
            },
            {
                "lineItemNumber": 2,
                "extendedPrice": Decimal("19.99"),
                "quantity": {"value": 1},
                "product": {"value": "CHARGE"},
            },
        ],
    }
    assert b'"extendedPrice":19.99' in sale.body


def test_scope_is_sent_when_configured(server: LoopbackServer, clock: FrozenClock) -> None:
    make_provider(server, clock, scope="calc-rest-api").rates_for(make_request())
    assert server.requests[0].form()["scope"] == ["calc-rest-api"]


def test_token_is_fetched_once_and_reused(server: LoopbackServer, clock: FrozenClock) -> None:
    provider = make_provider(server, clock)

    for _ in range(3):
        provider.rates_for(make_request())
        clock.advance(timedelta(minutes=5))

    assert server.count(TOKEN) == 1 and server.count(SUPPLIES) == 3
    assert {r.headers["authorization"] for r in server.requests if r.path == SUPPLIES} == {
        "Bearer tok-1"
    }


def test_token_is_renewed_before_it_expires(server: LoopbackServer, clock: FrozenClock) -> None:
    provider = make_provider(server, clock)
    provider.rates_for(make_request())

    clock.advance(timedelta(seconds=TOKEN_LIFETIME - 61))  # still 61 s to go: reused
    provider.rates_for(make_request())
    assert server.count(TOKEN) == 1

    clock.advance(timedelta(seconds=2))  # within the 60 s margin: renewed
    provider.rates_for(make_request())
    assert server.count(TOKEN) == 2
    assert server.requests[-1].headers["authorization"] == "Bearer tok-2"


def test_revoked_token_is_replaced_once(
    server: LoopbackServer, fake: FakeVertex, clock: FrozenClock
) -> None:
    provider = make_provider(server, clock)
    provider.rates_for(make_request())
    fake.revoke_all()

    quote = provider.rates_for(make_request())

    assert quote.line("a").amount == Decimal("7.00")
    assert [r.path for r in server.requests] == [TOKEN, SUPPLIES, SUPPLIES, TOKEN, SUPPLIES]


def test_bad_client_credentials_are_not_retried(server: LoopbackServer, clock: FrozenClock) -> None:
    with pytest.raises(TaxProviderAuthFailed) as caught:
        make_provider(server, clock, client_secret="wrong").rates_for(make_request())

    assert server.count(TOKEN) == 1 and server.count(SUPPLIES) == 0
    assert "invalid_client: Bad client credentials" in caught.value.message


def test_seller_collected_tax_is_not_charged(server: LoopbackServer, clock: FrozenClock) -> None:
    quote = make_provider(server, clock).rates_for(make_request(region="WA", postal_code="98101"))

    line = quote.line("a")
    assert (line.rate, line.amount) == (Decimal("6.500"), Decimal("6.50"))
    assert [c.name for c in line.components] == ["Retail Sales Tax"]


def test_exempt_customer_is_sent_as_exempt(server: LoopbackServer, clock: FrozenClock) -> None:
    quote = make_provider(server, clock).rates_for(
        make_request(tax_exempt=True, exemption_number="PA-EX-1234")
    )

    customer = server.requests[-1].json()["customer"]
    assert customer["isTaxExempt"] is True
    assert customer["exemptionCertificate"] == {"exemptionCertificateNumber": "PA-EX-1234"}
    assert [(line.rate, line.amount) for line in quote.lines] == [
        (Decimal(0), Decimal("0.00")),
        (Decimal(0), Decimal("0.00")),
    ]


def test_server_errors_are_retried(server: LoopbackServer, clock: FrozenClock) -> None:
    provider = make_provider(server, clock)
    provider.rates_for(make_request())  # token cached
    server.script(Response(503), Response(502, b"<html>Bad Gateway</html>"))

    quote = provider.rates_for(make_request())

    assert server.count(SUPPLIES) == 4 and quote.line("b").amount == Decimal("1.40")


def test_server_errors_give_up_after_three_attempts(
    server: LoopbackServer, clock: FrozenClock
) -> None:
    provider = make_provider(server, clock)
    provider.rates_for(make_request())
    server.script(*[Response(500, {"errors": [{"code": "500", "message": "engine down"}]})] * 3)

    with pytest.raises(TaxProviderUnavailable, match="500: engine down"):
        provider.rates_for(make_request())

    assert server.count(SUPPLIES) == 4


def test_invalid_request_is_rejected_without_retry(
    server: LoopbackServer, clock: FrozenClock
) -> None:
    long_metric = "m" * 41
    request = make_request(lines=(TaxableLine("a", Decimal("5.00"), "USAGE_FEE", long_metric),))

    with pytest.raises(TaxProviderRejected, match="size must be between 0 and 40"):
        make_provider(server, clock).rates_for(request)

    assert server.count(SUPPLIES) == 1
