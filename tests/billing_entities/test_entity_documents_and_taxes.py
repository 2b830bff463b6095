"""The seller on documents and the taxes of a billing entity, through the HTTP API
(docs/billing-entities.md). SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from invoicing.billing_entities import with_entity_taxes
from rating.context import TaxRate
from tests.billing_entities.builders import NORTH, entity
from tests.documents.builders import pdf_cells
from tests.documents.conftest import UblSchemas
from tests.helpers.ledger_api import ApiClient

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
SUPPLIER = "/inv:Invoice/cac:AccountingSupplierParty/cac:Party"


def _text(root: etree._Element, path: str) -> str:
    [found] = root.xpath(path, namespaces=NS)
    assert isinstance(found, etree._Element)
    return str(found.text)


@pytest.mark.ledger
def test_documents_name_the_entity_of_the_invoice(api: ApiClient, ubl: UblSchemas) -> None:
    entity(api)
    entity(api, NORTH, iban="SE45 5000 0000 0583 9825 7466")
    api.customer("acme", country="FR")
    api.customer("nordic", country="SE", billingEntityCode="north")
    german = api.open_invoice("acme")["id"]
    nordic = api.open_invoice("nordic")["id"]

    root = ubl.check(ubl.invoice, api.get(f"/invoices/{german}/xml").content)
    assert _text(root, "/inv:Invoice/cbc:ID") == "ACME-000001"
    assert _text(root, f"{SUPPLIER}/cac:PartyLegalEntity/cbc:RegistrationName") == "Acme GmbH"
    assert _text(root, f"{SUPPLIER}/cac:PostalAddress/cbc:CityName") == "Berlin"
    assert _text(root, f"{SUPPLIER}/cac:PartyTaxScheme/cbc:CompanyID") == "DE123456789"

    response = api.get(f"/invoices/{nordic}/xml")
    assert response.headers["content-disposition"] == 'inline; filename="NORTH-000001.xml"'
    root = ubl.check(ubl.invoice, response.content)
    assert _text(root, f"{SUPPLIER}/cac:PartyLegalEntity/cbc:RegistrationName") == (
        "Acme Nordic AB"
    )
    assert _text(root, "//cac:PayeeFinancialAccount/cbc:ID") == "SE4550000000058398257466"

    cells = pdf_cells(api.get(f"/invoices/{nordic}/pdf").content)
    assert "Acme Nordic AB" in cells and "Acme GmbH" not in cells
    assert "Acme GmbH" in pdf_cells(api.get(f"/invoices/{german}/pdf").content)

    # The seller was fixed at finalize: a later default change leaves the document as it is.
    api.ok("PATCH", "/billing-entities/north", json={"isDefault": True})
    root = ubl.check(ubl.invoice, api.get(f"/invoices/{german}/xml").content)
    assert _text(root, f"{SUPPLIER}/cac:PartyLegalEntity/cbc:RegistrationName") == "Acme GmbH"


def _one_off(api: ApiClient, customer: str) -> dict[str, Any]:
    body = {
        "customerId": customer,
        "currency": "USD",
        "lines": [{"description": "Consulting", "quantity": 1, "unitAmount": "100.00"}],
    }
    result: dict[str, Any] = api.ok("POST", "/invoices", json=body)
    return result


@pytest.mark.ledger
def test_entity_taxes_replace_the_tenant_defaults_where_the_place_has_none(
    api: ApiClient,
) -> None:
    api.ok("POST", "/taxes", json={"code": "fr20", "name": "TVA", "rate": "20", "country": "FR"})
    api.ok("POST", "/taxes", json={"code": "std5", "name": "Standard", "rate": "5"})
    api.ok("POST", "/taxes", json={"code": "acme19", "name": "MwSt", "rate": "19", "country": "LU"})
    api.ok("PUT", "/billing-entity", json={**_seller(), "country": "US"})  # the default
    entity(api, taxCodes=["acme19"])
    api.customer("us-acme", billingEntityCode="acme-de", country="US")
    api.customer("fr-acme", billingEntityCode="acme-de", country="FR")
    api.customer("exempt", billingEntityCode="acme-de", country="US", taxExempt=True)
    api.customer("us-home", country="US")

    taxes = {c: _one_off(api, c)["taxTotal"] for c in ("us-acme", "fr-acme", "exempt", "us-home")}
    assert taxes == {
        "us-acme": "19.00",  # the entity's tax in place of the tenant's 5 %
        "fr-acme": "20.00",  # the customer's country has a rate: it wins
        "exempt": "0.00",
        "us-home": "5.00",  # the default entity has no taxes: the tenant's defaults
    }
    # A rate an entity names stays (deleting it would change what its customers pay).
    error = api.error("DELETE", "/taxes/acme19", 409)
    assert (error["code"], error["details"]) == (
        "tax_in_use",
        {"usedBy": ["billing entity 'acme-de'"]},
    )
    # Taking the codes off the entity gives its customers the tenant's defaults again.
    api.ok("PATCH", "/billing-entities/acme-de", json={"taxCodes": []})
    assert _one_off(api, "us-acme")["taxTotal"] == "5.00"
    assert api.delete("/taxes/acme19").status_code == 204


def _seller() -> dict[str, str]:
    return {
        "legalName": "Home Inc",
        "addressLine1": "1 Main St",
        "city": "Springfield",
        "postalCode": "12345",
    }


FR = TaxRate("fr20", "TVA", Decimal("20"), country="FR")
STD = TaxRate("std5", "Standard", Decimal("5"))
LU = TaxRate("acme19", "MwSt", Decimal("19"), country="LU")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((), (FR, STD, LU)),  # no entity taxes: the table as it is
        (("acme19",), (FR, LU, TaxRate("acme19", "MwSt", Decimal("19")))),
        (("std5", "gone"), (FR, LU, STD)),  # a code no longer in the table is skipped
    ],
)
def test_with_entity_taxes(codes: tuple[str, ...], expected: tuple[TaxRate, ...]) -> None:
    assert with_entity_taxes((FR, STD, LU), codes) == expected
