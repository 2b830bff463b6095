"""Credit-note documents through the API, on SQLite and PostgreSQL: the UBL 2.1
CreditNote validates against the official schema with its sums, split over the
invoice's tax rates to the cent; the PDF names the note, the invoice and the amount; a
DRAFT note has none."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.documents.builders import buyer, finalized, pdf_cells, seller
from tests.documents.conftest import UblSchemas
from tests.documents.test_invoice_ubl import assert_en16931_sums, text, texts
from tests.helpers.ledger_api import ApiClient
from tests.invoices.one_off_builders import Line

pytestmark = pytest.mark.ledger


def _issued(api: ApiClient, invoice_id: str, amount: str) -> dict[str, str]:
    note: dict[str, str] = api.ok(
        "POST", "/credit-notes",
        json={"invoiceId": invoice_id, "amount": amount, "reason": "PRODUCT_UNSATISFACTORY",
              "description": "Outage on 3 November"},
    )  # fmt: skip
    draft = api.get(f"/credit-notes/{note['id']}/pdf")
    assert draft.status_code == 409 and "issue the credit note" in draft.text
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    return note


def test_a_credit_note_over_two_rates(api: ApiClient, ubl: UblSchemas) -> None:
    seller(api)
    buyer(api)
    invoice_id = finalized(
        api,
        [
            Line("CHARGE", "1", "100.00", "100.00", "20", "20.00", description="Standard"),
            Line("USAGE_FEE", "4", "2.50", "10.00", "5.5", "0.55", description="Reduced"),
        ],
    )
    invoice = api.ok("GET", f"/invoices/{invoice_id}")
    assert invoice["total"] == "130.55"
    note = _issued(api, invoice_id, "50.00")
    response = api.get(f"/credit-notes/{note['id']}/xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    root = ubl.check(ubl.credit_note, response.content)
    doc = "/cn:CreditNote"
    assert text(root, f"{doc}/cbc:ID") == "CN-000001"
    assert text(root, f"{doc}/cbc:CreditNoteTypeCode") == "381"
    assert (
        text(root, f"{doc}/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID")
        == (invoice["number"])
    )
    # 120.00 of the 130.55 is at 20 %: 45.96 of the 50.00, of which 7.66 tax; the rest,
    # 4.04 at 5.5 %, holds 0.21 tax.
    subtotal = f"{doc}/cac:TaxTotal/cac:TaxSubtotal"
    assert texts(root, f"{subtotal}/cac:TaxCategory/cbc:Percent") == ["20", "5.5"]
    assert texts(root, f"{subtotal}/cbc:TaxableAmount") == ["38.30", "3.83"]
    assert texts(root, f"{subtotal}/cbc:TaxAmount") == ["7.66", "0.21"]
    assert text(root, f"{doc}/cac:LegalMonetaryTotal/cbc:PayableAmount") == "50.00"
    taxable = sum(Decimal(t) for t in texts(root, f"{subtotal}/cbc:TaxableAmount"))
    tax = sum(Decimal(t) for t in texts(root, f"{subtotal}/cbc:TaxAmount"))
    assert taxable + tax == Decimal("50.00")
    assert_en16931_sums(root, "cn:CreditNote", "cac:CreditNoteLine")

    pdf = api.get(f"/credit-notes/{note['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'inline; filename="CN-000001.pdf"'
    cells = pdf_cells(pdf.content)
    joined = "\n".join(cells)
    assert "Credit note" in joined and "CN-000001" in joined
    assert str(invoice["number"]) in joined and "50.00" in joined
    assert "Outage on 3 November" in joined and "Credited (" in joined
    assert api.get("/credit-notes/cn_nope/xml").status_code == 404
