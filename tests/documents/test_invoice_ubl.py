"""GET /invoices/{id}/xml through the HTTP API: valid against the official UBL 2.1
Invoice schema, the EN 16931 core fields, and sums that add up (BR-CO-10, -13, -15,
-16); a credit note built from a hand-made document validates as a UBL CreditNote."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from invoicing.documents.model import (
    Document,
    DocumentLine,
    DocumentReference,
    Party,
    PaymentInstructions,
    Period,
    Totals,
)
from invoicing.documents.pdf import render_pdf
from invoicing.documents.taxes import tax_breakdown
from invoicing.documents.ubl import render_ubl
from tests.documents.builders import buyer, finalized, has_run, pdf_cells, seller
from tests.documents.conftest import UblSchemas
from tests.helpers.ledger_api import ApiClient
from tests.invoices.one_off_builders import Line

pytestmark = pytest.mark.ledger

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def texts(root: etree._Element, path: str) -> list[str]:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    return [str(e.text) if isinstance(e, etree._Element) else str(e) for e in found]


def text(root: etree._Element, path: str) -> str:
    [value] = texts(root, path)
    return value


def number(root: etree._Element, expression: str) -> Decimal:
    """An XPath number (a sum), exact to the cent for the amounts here."""
    value = root.xpath(expression, namespaces=NS)
    assert isinstance(value, float)
    return Decimal(repr(value)).quantize(Decimal("0.01"))


def test_the_invoice_validates_and_holds_the_en16931_core(api: ApiClient, ubl: UblSchemas) -> None:
    seller(api)
    buyer(api)
    invoice_id = finalized(api)
    api.ok("POST", f"/invoices/{invoice_id}/payments", json={"amount": "20.00"})
    response = api.get(f"/invoices/{invoice_id}/xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    assert response.headers["content-disposition"] == 'inline; filename="INV-000001.xml"'
    root = ubl.check(ubl.invoice, response.content)

    assert text(root, "/inv:Invoice/cbc:CustomizationID") == "urn:cen.eu:en16931:2017"
    assert text(root, "/inv:Invoice/cbc:ID") == "INV-000001"
    assert text(root, "/inv:Invoice/cbc:IssueDate") == "2026-11-01"
    assert text(root, "/inv:Invoice/cbc:DueDate") == "2026-12-01"
    assert text(root, "/inv:Invoice/cbc:InvoiceTypeCode") == "380"
    assert text(root, "/inv:Invoice/cbc:DocumentCurrencyCode") == "EUR"
    assert text(root, "//cac:InvoicePeriod[1]/cbc:StartDate") == "2026-10-01"
    assert text(root, "/inv:Invoice/cac:InvoicePeriod/cbc:EndDate") == "2026-10-31"

    supplier = "/inv:Invoice/cac:AccountingSupplierParty/cac:Party"
    assert text(root, f"{supplier}/cac:PartyName/cbc:Name") == "Meterline AG"
    assert text(root, f"{supplier}/cac:PostalAddress/cbc:StreetName") == "Bahnhofstrasse 1"
    assert text(root, f"{supplier}/cac:PostalAddress/cbc:AdditionalStreetName") == "Postfach 12"
    assert text(root, f"{supplier}/cac:PostalAddress/cbc:CityName") == "Zürich"
    assert text(root, f"{supplier}/cac:PostalAddress/cbc:PostalZone") == "8001"
    assert text(root, f"{supplier}/cac:PostalAddress/cac:Country/cbc:IdentificationCode") == "CH"
    assert text(root, f"{supplier}/cac:PartyTaxScheme/cbc:CompanyID") == "CHE-123.456.789 MWST"
    assert text(root, f"{supplier}/cac:PartyTaxScheme/cac:TaxScheme/cbc:ID") == "VAT"
    assert text(root, f"{supplier}/cac:PartyLegalEntity/cbc:RegistrationName") == "Meterline AG"
    assert text(root, f"{supplier}/cac:Contact/cbc:ElectronicMail") == "billing@meterline.example"

    customer = "/inv:Invoice/cac:AccountingCustomerParty/cac:Party"
    assert text(root, f"{customer}/cac:PartyIdentification/cbc:ID") == "lodz"
    assert text(root, f"{customer}/cac:PartyLegalEntity/cbc:RegistrationName") == (
        "Łódź Analytics Sp. z o.o."
    )
    assert text(root, f"{customer}/cac:PostalAddress/cbc:CityName") == "Łódź"
    assert text(root, f"{customer}/cac:PostalAddress/cac:Country/cbc:IdentificationCode") == "PL"
    assert text(root, f"{customer}/cac:PartyTaxScheme/cbc:CompanyID") == "PL7251234567"

    assert text(root, "//cac:PaymentMeans/cbc:PaymentMeansCode") == "30"
    assert text(root, "//cac:PaymentMeans/cbc:PaymentID") == "INV-000001"
    assert text(root, "//cac:PayeeFinancialAccount/cbc:ID") == "CH9300762011623852957"
    assert text(root, "//cac:PaymentTerms/cbc:Note") == "Net 30 days, due 1 December 2026"

    # The coupon is a document-level allowance in the category of the line it reduced.
    allowance = "/inv:Invoice/cac:AllowanceCharge"
    assert text(root, f"{allowance}/cbc:ChargeIndicator") == "false"
    assert text(root, f"{allowance}/cbc:Amount") == "4.90"
    assert text(root, f"{allowance}/cac:TaxCategory/cbc:ID") == "S"
    assert text(root, f"{allowance}/cac:TaxCategory/cbc:Percent") == "20"

    subtotal = "/inv:Invoice/cac:TaxTotal/cac:TaxSubtotal"
    assert text(root, "/inv:Invoice/cac:TaxTotal/cbc:TaxAmount") == "11.82"
    assert texts(root, f"{subtotal}/cbc:TaxableAmount") == ["59.10"]
    assert texts(root, f"{subtotal}/cbc:TaxAmount") == ["11.82"]
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:ID") == ["S"]
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:Percent") == ["20"]

    total = "/inv:Invoice/cac:LegalMonetaryTotal"
    assert text(root, f"{total}/cbc:LineExtensionAmount") == "64.00"
    assert text(root, f"{total}/cbc:TaxExclusiveAmount") == "59.10"
    assert text(root, f"{total}/cbc:TaxInclusiveAmount") == "70.92"
    assert text(root, f"{total}/cbc:AllowanceTotalAmount") == "4.90"
    assert text(root, f"{total}/cbc:PrepaidAmount") == "20.00"
    assert text(root, f"{total}/cbc:PayableAmount") == "50.92"
    currencies = set(texts(root, "//*[@currencyID]/@currencyID"))
    assert currencies == {"EUR"}

    lines = "/inv:Invoice/cac:InvoiceLine"
    assert texts(root, f"{lines}/cbc:ID") == ["1", "2"]
    assert texts(root, f"{lines}/cac:Item/cbc:Name") == [
        "Pro plan – monthly fee",
        "API calls (€ zone)",
    ]
    assert texts(root, f"{lines}/cbc:InvoicedQuantity") == ["1", "1500"]
    assert texts(root, f"{lines}/cbc:InvoicedQuantity/@unitCode") == ["C62", "C62"]
    assert texts(root, f"{lines}/cbc:LineExtensionAmount") == ["49.00", "15.00"]
    assert texts(root, f"{lines}/cac:Price/cbc:PriceAmount") == ["49.00", "0.01"]
    assert texts(root, f"{lines}/cac:Item/cac:ClassifiedTaxCategory/cbc:ID") == ["S", "S"]
    assert texts(root, f"{lines}/cac:Item/cac:SellersItemIdentification/cbc:ID") == ["api_calls"]

    assert_en16931_sums(root, "inv:Invoice", "cac:InvoiceLine")


def assert_en16931_sums(root: etree._Element, doc: str, line: str) -> None:
    total = f"/{doc}/cac:LegalMonetaryTotal"
    lines = number(root, f"sum(/{doc}/{line}/cbc:LineExtensionAmount)")
    extension = number(root, f"number({total}/cbc:LineExtensionAmount)")
    allowances = number(root, f"sum(/{doc}/cac:AllowanceCharge/cbc:Amount)")
    exclusive = number(root, f"number({total}/cbc:TaxExclusiveAmount)")
    inclusive = number(root, f"number({total}/cbc:TaxInclusiveAmount)")
    tax = number(root, f"number(/{doc}/cac:TaxTotal/cbc:TaxAmount)")
    prepaid = number(root, f"number({total}/cbc:PrepaidAmount)")
    payable = number(root, f"number({total}/cbc:PayableAmount)")
    assert lines == extension  # BR-CO-10
    assert allowances == number(root, f"number({total}/cbc:AllowanceTotalAmount)")  # BR-CO-11
    assert exclusive == extension - allowances  # BR-CO-13
    assert tax == number(root, f"sum(/{doc}/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount)")
    assert exclusive == number(root, f"sum(/{doc}/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount)")
    assert inclusive == exclusive + tax  # BR-CO-15
    assert payable == inclusive - prepaid  # BR-CO-16


def test_two_rates_and_an_exempt_buyer(api: ApiClient, ubl: UblSchemas) -> None:
    seller(api)
    buyer(api, taxExempt=True)
    invoice_id = finalized(
        api,
        [
            Line("CHARGE", "1", "10.00", "10.00", "0", "0", description="Support"),
            Line("SETUP_FEE", "2", "5.005", "10.01", "0", "0", description="Setup"),
        ],
    )
    root = ubl.check(ubl.invoice, api.get(f"/invoices/{invoice_id}/xml").content)
    subtotal = "/inv:Invoice/cac:TaxTotal/cac:TaxSubtotal"
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:ID") == ["E"]
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:TaxExemptionReason") == ["Exempt from tax"]
    assert texts(root, f"{subtotal}/cbc:TaxableAmount") == ["20.01"]
    assert texts(root, "//cac:ClassifiedTaxCategory/cbc:ID") == ["E", "E"]
    assert texts(root, "//cac:InvoiceLine/cac:Price/cbc:PriceAmount") == ["10.00", "5.005"]
    assert texts(root, "/inv:Invoice/cbc:Note") == ["The customer is exempt from tax."]
    assert_en16931_sums(root, "inv:Invoice", "cac:InvoiceLine")


def test_several_rates_each_with_its_own_subtotal(api: ApiClient, ubl: UblSchemas) -> None:
    seller(api)
    buyer(api)
    invoice_id = finalized(
        api,
        [
            Line("CHARGE", "1", "100.00", "100.00", "20", "18.00", "10.00", "Standard"),
            Line("USAGE_FEE", "4", "2.50", "10.00", "5.5", "0.50", "1.00", "Reduced"),
            Line("CHARGE", "1", "7.00", "7.00", "0", "0", description="Zero rated"),
            Line("DISCOUNT", "1", "-11.00", "-11.00", description="Coupon 10%"),
        ],
    )
    root = ubl.check(ubl.invoice, api.get(f"/invoices/{invoice_id}/xml").content)
    subtotal = "/inv:Invoice/cac:TaxTotal/cac:TaxSubtotal"
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:Percent") == ["20", "5.5", "0"]
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:ID") == ["S", "S", "Z"]
    assert texts(root, f"{subtotal}/cbc:TaxableAmount") == ["90.00", "9.00", "7.00"]
    assert texts(root, f"{subtotal}/cbc:TaxAmount") == ["18.00", "0.50", "0.00"]
    assert texts(root, "/inv:Invoice/cac:AllowanceCharge/cbc:Amount") == ["10.00", "1.00"]
    assert text(root, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == "124.50"
    assert_en16931_sums(root, "inv:Invoice", "cac:InvoiceLine")


def test_without_a_billing_entity_the_xml_still_validates(api: ApiClient, ubl: UblSchemas) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    root = ubl.check(ubl.invoice, api.get(f"/invoices/{invoice['id']}/xml").content)
    supplier = "/inv:Invoice/cac:AccountingSupplierParty/cac:Party"
    assert text(root, f"{supplier}/cac:PartyName/cbc:Name") == "test"
    assert texts(root, f"{supplier}/cac:PostalAddress") == []
    assert texts(root, f"{supplier}/cac:PartyTaxScheme") == []
    assert text(root, "//cac:PaymentMeans/cbc:PaymentMeansCode") == "1"
    assert texts(root, "/inv:Invoice/cac:AllowanceCharge") == []
    assert text(root, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == "100.00"
    assert_en16931_sums(root, "inv:Invoice", "cac:InvoiceLine")


def test_the_same_invoice_gives_the_same_xml(api: ApiClient) -> None:
    seller(api)
    buyer(api)
    invoice_id = finalized(api)
    first = api.get(f"/invoices/{invoice_id}/xml").content
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert api.get(f"/invoices/{invoice_id}/xml").content == first


def credit_note() -> Document:
    """A credit note of 10 % of INV-000001's fee, made by hand (no ledger)."""
    lines = (
        DocumentLine(
            kind="CHARGE",
            description="Refund: Pro plan – monthly fee (10 %)",
            quantity=Decimal(1),
            unit_amount=Decimal("4.41"),
            amount=Decimal("4.41"),
            tax_amount=Decimal("0.88"),
            tax_rate=Decimal(20),
        ),
    )
    return Document(
        kind="credit_note",
        number="CN-000001",
        issue_date=date(2026, 11, 15),
        currency="EUR",
        seller=Party("Meterline AG", ("Bahnhofstrasse 1",), "Zürich", "8001", "CH", "CHE-1"),
        buyer=Party("Łódź Analytics Sp. z o.o.", (), "Łódź", "90-001", "PL", customer_id="lodz"),
        lines=lines,
        taxes=tax_breakdown(lines, Decimal(0), exempt=False),
        totals=Totals(
            subtotal=Decimal("4.41"),
            discount=Decimal(0),
            tax=Decimal("0.88"),
            total=Decimal("5.29"),
            credit=Decimal(0),
            amount_paid=Decimal(0),
            amount_due=Decimal("5.29"),
        ),
        period=Period(date(2026, 10, 1), date(2026, 10, 31)),
        payment=PaymentInstructions(terms="Refunded to the original payment method"),
        refers_to=DocumentReference("INV-000001", date(2026, 11, 1)),
    )


def test_a_credit_note_validates_as_a_ubl_credit_note(ubl: UblSchemas) -> None:
    root = ubl.check(ubl.credit_note, render_ubl(credit_note()))
    assert text(root, "/cn:CreditNote/cbc:ID") == "CN-000001"
    assert text(root, "/cn:CreditNote/cbc:CreditNoteTypeCode") == "381"
    reference = "/cn:CreditNote/cac:BillingReference/cac:InvoiceDocumentReference"
    assert text(root, f"{reference}/cbc:ID") == "INV-000001"
    assert text(root, f"{reference}/cbc:IssueDate") == "2026-11-01"
    assert texts(root, "/cn:CreditNote/cac:CreditNoteLine/cbc:CreditedQuantity") == ["1"]
    assert text(root, "//cac:LegalMonetaryTotal/cbc:PayableAmount") == "5.29"
    assert_en16931_sums(root, "cn:CreditNote", "cac:CreditNoteLine")
    # The same document is not a valid Invoice: the two schemas really differ.
    assert not ubl.invoice.validate(root)


def test_a_credit_note_pdf_is_titled_and_names_the_invoice() -> None:
    cells = pdf_cells(render_pdf(credit_note()))
    assert has_run(cells, ["Credit note", "BILL TO"]) or "Credit note" in cells
    assert has_run(cells, ["Credit note number", "CN-000001", "Issue date", "15 November 2026"])
    assert has_run(cells, ["Corrects invoice", "INV-000001"])
    assert has_run(cells, ["Total", "5.29", "Credited (EUR)", "5.29"])
