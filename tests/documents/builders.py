"""Builders of the document tests: a seller, a buyer with a full address, and a
finalized invoice with a discount, two taxed lines and a payment."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader

from tests.helpers.ledger_api import ApiClient
from tests.invoices.one_off_builders import Line, draft

SELLER = {
    "legalName": "Meterline AG",
    "addressLine1": "Bahnhofstrasse 1",
    "addressLine2": "Postfach 12",
    "city": "Zürich",
    "postalCode": "8001",
    "country": "CH",
    "taxId": "CHE-123.456.789 MWST",
    "email": "billing@meterline.example",
    "iban": "CH93 0076 2011 6238 5295 7",
}

BUYER = {
    "name": "Łódź Analytics Sp. z o.o.",
    "currency": "EUR",
    "country": "PL",
    "email": "ap@lodz.example",
    "addressLine1": "ul. Piotrkowska 104",
    "city": "Łódź",
    "postalCode": "90-001",
    "taxId": "PL7251234567",
}

# A base fee with a 4.90 coupon share, 1,500 API calls at 0.01, the coupon's line;
# 20 % on the net of each: (49.00 − 4.90) × 0.2 = 8.82 and 15.00 × 0.2 = 3.00.
LINES = [
    Line("CHARGE", "1", "49.00", "49.00", "20", "8.82", "4.90", "Pro plan – monthly fee"),
    Line(
        "USAGE_FEE", "1500", "0.01", "15.00", "20", "3.00", "0", "API calls (€ zone)",
        metric="api_calls",
    ),
    Line("DISCOUNT", "1", "-4.90", "-4.90", description="Coupon WELCOME (4.90 off the fee)"),
]  # fmt: skip


def seller(api: ApiClient) -> dict[str, Any]:
    result: dict[str, Any] = api.ok("PUT", "/billing-entity", json=SELLER)
    return result


def buyer(api: ApiClient, external_id: str = "lodz", **fields: Any) -> dict[str, Any]:
    return api.customer(external_id, **{**BUYER, **fields})


def finalized(api: ApiClient, lines: list[Line] | None = None, customer: str = "lodz") -> str:
    """A DRAFT with `lines` (LINES by default) finalized through the API; its id."""
    invoice_id = draft(api, LINES if lines is None else lines, customer=customer)
    api.ok("POST", f"/invoices/{invoice_id}/finalize")
    return invoice_id


def pdf_cells(data: bytes) -> list[str]:
    """The text of every page, one table cell or text line per item, trimmed."""
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return [line.strip() for line in text.splitlines() if line.strip()]


def has_run(cells: list[str], run: list[str]) -> bool:
    """Whether `run` occurs in `cells` as consecutive items (a table row, in order)."""
    return any(cells[i : i + len(run)] == run for i in range(len(cells) - len(run) + 1))
