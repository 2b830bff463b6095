"""The CSV exports through the API, on SQLite and PostgreSQL: the exact header and
bytes, RFC 4180 quoting, the issue-date window (from inclusive, to exclusive), the
status filter, drafts never, other tenants never, clear 422s; credit notes too."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest

from invoicing.models import InvoiceLineRow, InvoiceRow
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger

HEADER = (
    "invoice_id,invoice_number,customer_id,status,currency,issued_at,due_at,line_type,"
    "description,metric,quantity,unit_amount,amount,tax_amount,invoice_total"
)


def _export(api: ApiClient, query: str = "", path: str = "/invoices/export.csv") -> bytes:
    response = api.get(f"{path}?{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return response.content


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))[1:]


def test_exact_bytes_of_one_invoice(api: ApiClient) -> None:
    api.customer("acme", netPaymentTermDays=10)
    invoice_id = api.draft("acme", "100.00")
    with api.runtime.sessions() as session, session.begin():
        row = session.get(InvoiceRow, invoice_id)
        assert row is not None
        # A usage line with a metric, a quantity and a tax, and a description that needs
        # quoting (comma, quote, newline).
        row.lines.append(
            InvoiceLineRow(
                id="il_usage",
                position=1,
                type="USAGE_FEE",
                description='API calls, "burst"\ntier',
                metric="calls",
                quantity=Decimal("1234.500"),
                unit_amount=Decimal("0.0100"),
                amount=Decimal("12.35"),
                tax_rate=Decimal("0.2"),
                tax_amount=Decimal("2.47"),
                discount_amount=Decimal(0),
                group={},
            )
        )
        from invoicing.invoices import recompute_totals

        recompute_totals(row)
    invoice = api.ok("POST", f"/invoices/{invoice_id}/finalize")
    assert invoice["total"] == "114.82"
    body = _export(api)
    assert (
        body
        == (
            f"{HEADER}\r\n"
            f"{invoice_id},INV-000001,acme,OPEN,USD,2026-11-01T09:00:00Z,2026-11-11T09:00:00Z,"
            "CHARGE,Base fee,,1,100,100.00,0.00,114.82\r\n"
            f"{invoice_id},INV-000001,acme,OPEN,USD,2026-11-01T09:00:00Z,2026-11-11T09:00:00Z,"
            'USAGE_FEE,"API calls, ""burst""\ntier",calls,1234.5,0.01,12.35,2.47,114.82\r\n'
        ).encode()
    )
    assert not body.startswith(b"\xef\xbb\xbf")  # no BOM


def test_window_status_drafts_and_tenants(api: ApiClient) -> None:
    api.customer("acme")
    first = api.open_invoice("acme", "10.00")  # issued DEFAULT_NOW
    api.clock.set(DEFAULT_NOW + timedelta(days=1))
    second = api.open_invoice("acme", "20.00", index=1)
    api.ok("POST", f"/invoices/{second['id']}/payments", json={"amount": "20.00"})
    api.draft("acme", "30.00", index=2)  # never exported

    def ids(query: str) -> list[str]:
        return [r[0] for r in _rows(_export(api, query))]

    assert ids("") == [first["id"], second["id"]]
    day1, day2 = "2026-11-01T09:00:00Z", "2026-11-02T09:00:00Z"
    assert ids(f"from={day1}&to={day2}") == [first["id"]]  # to is exclusive
    assert ids(f"from={day2}") == [second["id"]]  # from is inclusive
    assert ids("from=2026-11-02") == [second["id"]]
    assert ids("to=2026-11-01") == []
    assert ids("status=paid") == [second["id"]]
    assert ids("status=OPEN") == [first["id"]]
    assert api.error("GET", "/invoices/export.csv?status=DRAFT", 422)["message"].startswith(
        "status must be one of"
    )
    assert "from" in api.error("GET", "/invoices/export.csv?from=yesterday", 422)["message"]
    api.error("GET", f"/invoices/export.csv?from={day2}&to={day1}", 422)

    from invoicing.tenants import create_tenant

    with api.runtime.sessions() as session, session.begin():
        other = create_tenant(session, "other")
    theirs = {"Authorization": f"Bearer {other.api_key}", "X-Tenant-Id": other.tenant_id}
    response = api.get("/invoices/export.csv", headers=theirs)
    assert response.status_code == 200 and response.content == f"{HEADER}\r\n".encode()


def test_many_invoices_stream_across_pages(api: ApiClient) -> None:
    from invoicing import exports

    api.customer("acme")
    for i in range(7):
        api.open_invoice("acme", f"{i + 1}.00", index=i)
    old = exports.PAGE, exports.FLUSH_ROWS
    exports.PAGE, exports.FLUSH_ROWS = 2, 3  # several pages and chunks
    try:
        with api.stream("GET", "/invoices/export.csv") as response:
            chunks = list(response.iter_bytes())
    finally:
        exports.PAGE, exports.FLUSH_ROWS = old
    rows = _rows(b"".join(chunks))
    assert [r[1] for r in rows] == [f"INV-{i:06d}" for i in range(1, 8)]
    assert [r[14] for r in rows] == [f"{i}.00" for i in range(1, 8)]


def test_credit_notes_export(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice("acme", "50.00")
    note = api.ok(
        "POST", "/credit-notes",
        json={"invoiceId": invoice["id"], "amount": "5.00", "reason": "OTHER", "type": "credit",
              "description": "Goodwill, once"},
    )  # fmt: skip
    api.ok("POST", f"/credit-notes/{note['id']}/issue")
    api.ok("POST", f"/credit-notes/{note['id']}/apply")
    body = _export(api, path="/credit-notes/export.csv")
    ts = "2026-11-01T09:00:00Z"
    assert body.decode().split("\r\n") == [
        "credit_note_id,credit_note_number,invoice_id,invoice_number,customer_id,status,type,"
        "reason,currency,amount,balance,refund_status,created_at,issued_at,applied_at,"
        "voided_at,description",
        f"{note['id']},CN-000001,{invoice['id']},INV-000001,acme,APPLIED,credit,OTHER,USD,"
        f'5.00,5.00,,{ts},{ts},{ts},,"Goodwill, once"',
        "",
    ]
    assert _rows(_export(api, "status=VOID", "/credit-notes/export.csv")) == []
    api.error("GET", "/credit-notes/export.csv?status=PAID", 422)
