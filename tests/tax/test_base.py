"""The shared pieces: exact JSON, request validation, taxable lines of an invoice, and
the provider factory."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from invoicing.tax import (
    AvalaraProvider,
    LocalRatesProvider,
    TaxableLine,
    TaxRate,
    TaxRequest,
    VertexProvider,
    provider_from_config,
    taxable_lines,
)
from invoicing.tax.base import dumps_exact, loads_exact
from rating.model import InvoiceLine, LineType


def test_decimals_are_written_as_exact_json_numbers() -> None:
    body = {"amount": Decimal("33.33"), "tiny": Decimal("0.000000000001"), "big": Decimal("1E+3")}
    text = dumps_exact({"lines": [body], "n": 1, "ok": True, "none": None, "s": 'a"b'})
    assert text == (
        '{"lines":[{"amount":33.33,"tiny":0.000000000001,"big":1000}],'
        '"n":1,"ok":true,"none":null,"s":"a\\"b"}'
    )
    assert json.loads(text)["s"] == 'a"b'
    assert loads_exact(text)["lines"][0]["amount"] == Decimal("33.33")


def test_floats_and_non_finite_decimals_are_refused() -> None:
    with pytest.raises(TypeError):
        dumps_exact({"amount": 0.1})
    with pytest.raises(ValueError):
        dumps_exact(Decimal("NaN"))


def test_provider_numbers_parse_without_float_rounding() -> None:
    parsed = loads_exact(b'{"rate": 0.0725, "tax": 2.41, "n": 3}')
    assert parsed == {"rate": Decimal("0.0725"), "tax": Decimal("2.41"), "n": 3}
    assert isinstance(parsed["rate"], Decimal)


def test_request_lines_need_unique_keys_and_decimal_amounts() -> None:
    line = TaxableLine("0", Decimal("1.00"), "CHARGE")
    with pytest.raises(ValueError, match="unique"):
        TaxRequest("t", "c", "US", None, "USD", date(2025, 1, 1), (line, line))
    with pytest.raises(ValueError, match="Decimal"):
        TaxableLine("0", 1.0, "CHARGE")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ISO 4217"):
        TaxRequest("t", "c", "US", None, "US", date(2025, 1, 1), (line,))


def test_taxable_lines_of_a_rated_invoice() -> None:
    lines = (
        InvoiceLine(LineType.CHARGE, "Pro plan", Decimal("50.00")),
        InvoiceLine(
            LineType.USAGE_FEE,
            "API calls",
            Decimal("100.00"),
            metric="api_calls",
            discount_amount=Decimal("10.00"),
        ),
        InvoiceLine(LineType.DISCOUNT, "WELCOME10", Decimal("-10.00")),
        InvoiceLine(LineType.CREDIT, "Prepaid credit", Decimal("-5.00")),
    )
    assert taxable_lines(lines) == (
        TaxableLine("0", Decimal("50.00"), "CHARGE", description="Pro plan"),
        TaxableLine(
            "1", Decimal("90.00"), "USAGE_FEE", metric="api_calls", description="API calls"
        ),
    )


def test_factory_builds_the_local_provider_from_table_rows() -> None:
    rows = [TaxRate("VAT", "VAT", Decimal("20"), country="FR")]
    provider = provider_from_config("local", {}, rows)
    assert isinstance(provider, LocalRatesProvider) and provider.rates == tuple(rows)


def test_factory_builds_adapters_from_camel_or_snake_case() -> None:
    avalara = provider_from_config(
        "avalara",
        {"baseUrl": "https://sandbox-rest.avatax.com", "accountId": "1", "licenseKey": "k",
         "companyCode": "DEFAULT"},
    )  # fmt: skip
    vertex = provider_from_config(
        "vertex",
        {"base_url": "https://x.ondemand.vertexinc.com", "client_id": "id",
         "client_secret": "s", "company": "ACME"},
    )  # fmt: skip
    assert isinstance(avalara, AvalaraProvider) and avalara.customer_specific
    assert isinstance(vertex, VertexProvider) and vertex.name == "vertex"
    avalara.close()
    vertex.close()


def test_factory_rejects_unknown_providers_and_bad_settings_without_echoing_secrets() -> None:
    with pytest.raises(ValidationFailed) as unknown:
        provider_from_config("taxjar", {})
    assert unknown.value.code == "unknown_tax_provider"

    with pytest.raises(ValidationFailed) as invalid:
        provider_from_config(
            "avalara",
            {"baseUrl": "https://rest.avatax.com", "licenseKey": "TOP-SECRET", "accountID": 7},
        )
    error = invalid.value
    assert error.code == "invalid_tax_configuration"
    assert {problem["field"] for problem in error.details} == {
        "accountId",
        "companyCode",
        "accountID",
    }
    assert "TOP-SECRET" not in repr(error.details) + error.message
