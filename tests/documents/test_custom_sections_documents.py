"""Invoice custom sections on the documents, through the HTTP API (SQLite and
PostgreSQL): the PDF prints each section after the totals (heading, then its text
wrapped, a long one carried onto the next page), the UBL XML carries each as a
`cbc:Note` and still validates; the documents show the copy frozen at finalize."""

from __future__ import annotations

import io

import pytest
from lxml import etree
from pypdf import PdfReader

from tests.documents.builders import buyer, finalized, pdf_cells, seller
from tests.documents.conftest import UblSchemas
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
BANK = "Pay to IBAN CH93 0076 2011 6238 5295 7.\nBIC UBSWCHZH80A, Zürich."
# ~3,000 characters in 20 paragraphs: more than the rest of the first page holds.
TERMS = "\n\n".join(
    f"Clause {i}. The services are provided as described in the order form; fees are "
    f"payable within the term stated on this invoice, late amounts bear interest. {i}"
    for i in range(1, 21)
)


def sections(api: ApiClient) -> None:
    section = {"code": "bank", "name": "Bank", "displayName": "Bank details", "details": BANK}
    api.ok("POST", "/invoice-custom-sections", json={**section, "appliesToAll": True})
    terms = {"code": "terms", "name": "Terms of service", "details": TERMS}
    api.ok("POST", "/invoice-custom-sections", json={**terms, "appliesToAll": True})


def test_the_pdf_prints_each_section_after_the_totals(api: ApiClient) -> None:
    seller(api)
    buyer(api)
    sections(api)
    invoice_id = finalized(api)
    response = api.get(f"/invoices/{invoice_id}/pdf")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2  # the terms run onto a second page
    cells = pdf_cells(response.content)
    due = cells.index("Amount due (EUR)")
    bank = cells.index("Bank details")
    terms = cells.index("Terms of service")
    assert due < bank < terms
    assert cells[bank + 1 : bank + 3] == [
        "Pay to IBAN CH93 0076 2011 6238 5295 7.",
        "BIC UBSWCHZH80A, Zürich.",
    ]
    # Every clause is printed, in order, none lost at the page break.
    text = " ".join(cells)
    positions = [text.index(f"Clause {i}.") for i in range(1, 21)]
    assert positions == sorted(positions)
    page_two = reader.pages[1].extract_text()
    assert "Clause 20." in page_two and "Page 2 of 2" in page_two
    assert "Terms of service" in reader.pages[0].extract_text()  # heading not orphaned


def test_the_pdf_shows_the_copy_frozen_at_finalize(api: ApiClient) -> None:
    seller(api)
    buyer(api)
    sections(api)
    invoice_id = finalized(api)
    before = api.get(f"/invoices/{invoice_id}/pdf").content
    api.ok("PATCH", "/invoice-custom-sections/bank", json={"details": "Changed later"})
    api.delete("/invoice-custom-sections/terms")
    after = api.get(f"/invoices/{invoice_id}/pdf").content
    assert after == before
    assert "Changed later" not in " ".join(pdf_cells(after))


def test_an_invoice_without_sections_prints_none(api: ApiClient) -> None:
    seller(api)
    buyer(api, skipInvoiceCustomSections=True)
    sections(api)
    invoice_id = finalized(api)
    cells = pdf_cells(api.get(f"/invoices/{invoice_id}/pdf").content)
    assert "Bank details" not in cells and "Terms of service" not in cells


def test_the_xml_carries_each_section_as_a_note(api: ApiClient, ubl: UblSchemas) -> None:
    seller(api)
    buyer(api)
    sections(api)
    invoice_id = finalized(api)
    root = ubl.check(ubl.invoice, api.get(f"/invoices/{invoice_id}/xml").content)
    notes = [str(n) for n in root.xpath("/inv:Invoice/cbc:Note/text()", namespaces=NS)]
    assert notes[-2:] == [f"Bank details: {BANK}", f"Terms of service: {TERMS}"]
    # The notes stay before DocumentCurrencyCode, where the schema wants them.
    names = [etree.QName(e).localname for e in root]
    assert names.index("Note") < names.index("DocumentCurrencyCode")
