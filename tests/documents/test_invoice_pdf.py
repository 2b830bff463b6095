"""GET /invoices/{id}/pdf through the HTTP API: the page holds the number, seller,
buyer, every line, the tax summary and the totals exactly; long invoices run to
numbered pages; the same invoice gives the same bytes."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tests.documents.builders import buyer, finalized, has_run, pdf_cells, seller
from tests.helpers.ledger_api import ApiClient
from tests.invoices.one_off_builders import Line, draft

pytestmark = pytest.mark.ledger


def test_the_invoice_page(api: ApiClient) -> None:
    seller(api)
    buyer(api)
    invoice_id = finalized(api)
    api.ok("POST", f"/invoices/{invoice_id}/payments", json={"amount": "20.00"})

    response = api.get(f"/invoices/{invoice_id}/pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="INV-000001.pdf"'
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    assert reader.metadata is not None
    assert reader.metadata.title == "Invoice INV-000001"
    assert reader.metadata["/CreationDate"] == "D:20261101000000+00'00'"  # the issue date

    cells = pdf_cells(response.content)
    seller_block = [
        "Meterline AG",
        "Bahnhofstrasse 1",
        "Postfach 12",
        "8001 Zürich",
        "CH",
        "VAT / Tax ID: CHE-123.456.789 MWST",
        "billing@meterline.example",
        "Invoice",
    ]
    assert has_run(cells, seller_block)
    buyer_block = [
        "BILL TO",
        "Łódź Analytics Sp. z o.o.",
        "ul. Piotrkowska 104",
        "90-001 Łódź",
        "PL",
        "VAT / Tax ID: PL7251234567",
        "ap@lodz.example",
    ]
    assert has_run(cells, buyer_block)
    assert has_run(
        cells,
        [
            "Invoice number", "INV-000001",
            "Issue date", "1 November 2026",
            "Due date", "1 December 2026",
            "Service period", "1 October 2026 – 31 October 2026",
            "Customer ID", "lodz",
        ],
    )  # fmt: skip
    assert has_run(cells, ["Description", "Qty", "Unit price", "Tax %", "Tax", "Amount (EUR)"])
    assert has_run(cells, ["Pro plan – monthly fee", "1", "49.00", "20%", "8.82", "49.00"])
    assert has_run(
        cells, ["API calls (€ zone)", "api_calls", "1,500", "0.01", "20%", "3.00", "15.00"]
    )
    assert has_run(cells, ["Coupon WELCOME (4.90 off the fee)", "1", "-4.90", "-4.90"])
    assert has_run(cells, ["Tax rate", "Taxable", "Tax", "20%", "59.10", "11.82"])
    assert has_run(
        cells,
        [
            "Subtotal", "64.00",
            "Discount", "-4.90",
            "Tax", "11.82",
            "Total", "70.92",
            "Amount paid", "-20.00",
            "Amount due (EUR)", "50.92",
        ],
    )  # fmt: skip
    assert "Payment terms: Net 30 days, due 1 December 2026." in cells
    transfer = "Please transfer 50.92 EUR to IBAN CH93 0076 2011 6238 5295 7, quoting INV-000001."
    assert transfer in cells
    # The footer (drawn first); one page: no page numbers.
    assert cells[:2] == ["Meterline AG · VAT CHE-123.456.789 MWST", "Invoice INV-000001"]


def test_the_same_invoice_gives_the_same_bytes(api: ApiClient) -> None:
    seller(api)
    buyer(api)
    invoice_id = finalized(api)
    first = api.get(f"/invoices/{invoice_id}/pdf").content
    api.clock.set(api.clock.now().replace(year=2027))
    assert api.get(f"/invoices/{invoice_id}/pdf").content == first


def test_eighty_lines_run_to_numbered_pages(api: ApiClient) -> None:
    seller(api)
    buyer(api)
    lines = [
        Line(
            "USAGE_FEE",
            str(i),
            "0.25",
            f"{i * 0.25:.2f}",
            description=f"Storage region {i:02d}"
            + (
                " – a long description that has to wrap onto a second line of its cell"
                * (i % 9 == 0)
            ),
            metric="storage_gb",
        )
        for i in range(1, 81)
    ]
    invoice_id = finalized(api, lines)
    data = api.ok("GET", f"/invoices/{invoice_id}")
    assert data["total"] == "810.00"  # 0.25 × (1 + … + 80)
    content = api.get(f"/invoices/{invoice_id}/pdf").content
    pages = len(PdfReader(io.BytesIO(content)).pages)
    assert pages >= 3
    cells = pdf_cells(content)
    for i in range(1, 81):
        assert f"{i * 0.25:.2f}" in cells, i
        description = next(c for c in cells if c.startswith(f"Storage region {i:02d}"))
        assert description.startswith(f"Storage region {i:02d}")
    for page in range(1, pages + 1):
        assert f"Invoice INV-000001 · Page {page} of {pages}" in cells
    # The header row repeats on every page; the totals come once, at the end.
    assert cells.count("Amount (EUR)") == pages
    assert has_run(cells, ["Total", "810.00", "Amount due (EUR)", "810.00"])


def test_without_a_billing_entity_the_seller_is_the_tenant(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "100.00")
    cells = pdf_cells(api.get(f"/invoices/{invoice['id']}/pdf").content)
    assert cells[:2] == ["test", "Invoice INV-000001"]  # footer: tenant name, number
    assert has_run(cells, ["BILL TO", "Acme", "Invoice number", "INV-000001"])
    assert has_run(cells, ["Total", "100.00", "Amount due (USD)", "100.00"])


def test_a_zero_decimal_currency_and_a_paid_invoice(api: ApiClient) -> None:
    api.customer("tokyo", name="Tokyo KK", currency="JPY")
    invoice_id = draft(
        api, [Line("CHARGE", "3", "4115", "12345", description="Seats")], customer="tokyo"
    )
    api.ok("POST", f"/invoices/{invoice_id}/finalize")
    api.ok("POST", f"/invoices/{invoice_id}/payments", json={"amount": "12345"})
    cells = pdf_cells(api.get(f"/invoices/{invoice_id}/pdf").content)
    assert has_run(cells, ["Seats", "3", "4,115", "0%", "0", "12,345"])
    assert has_run(cells, ["Amount paid", "-12,345", "Amount due (JPY)", "0"])
    assert "Paid in full. Thank you." in cells


def test_a_draft_has_no_document_and_an_unknown_invoice_is_404(api: ApiClient) -> None:
    api.customer("acme")
    draft_id = api.draft("acme")
    for kind in ("pdf", "xml"):
        error = api.error("GET", f"/invoices/{draft_id}/{kind}", 409)
        assert error["code"] == "invoice_draft"
        assert error["message"] == "draft invoices have no document yet: finalize the invoice first"
        assert error["details"] == {"status": "DRAFT"}
        missing = api.error("GET", f"/invoices/inv_nope/{kind}", 404)
        assert missing["code"] == "not_found"
