"""The QuickBooks Online connector against a local server that plays Intuit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from core.clock import FrozenClock
from core.errors import InvalidInput
from invoicing.erp.base import Context, Credentials, Document, External, SyncError
from invoicing.erp.connectors import adapter
from invoicing.erp.quickbooks import MINOR_VERSION, QuickBooksConfig, QuickBooksConnector
from invoicing.erp.quickbooks_mapping import query_literal
from tests.helpers.loopback import Response
from tests.helpers.quickbooks_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    REDIRECT_URI,
    FakeQuickBooks,
    fake_quickbooks,
    fault,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

CUSTOMER: dict[str, Any] = {
    "id": "cus_01JC8Y2M4T", "externalId": "acme-42", "name": "O'Brien & Sons",
    "email": "billing@obrien.example", "currency": "USD", "country": "US", "region": "CA",
    "taxExempt": False, "timezone": "America/Los_Angeles", "invoiceGraceDays": 0,
    "netPaymentTermDays": 30, "paymentProvider": None, "paymentProviderCustomerId": None,
    "createdAt": "2026-01-05T10:00:00Z", "addressLine1": "1 Market St", "addressLine2": None,
    "city": "San Francisco", "postalCode": "94105", "taxId": None,
}  # fmt: skip


def _line(id_: str, type_: str, qty: str, unit: str, amount: str, tax: str = "0") -> dict[str, Any]:
    return {"id": id_, "type": type_, "description": f"{type_.title()} {id_}",
            "metric": "api_calls" if type_ == "USAGE" else None, "group": {},
            "chargeId": "ch_1", "quantity": qty, "unitAmount": unit, "amount": amount,
            "discountAmount": "0.00", "taxRate": "0", "taxAmount": tax,
            "periodStart": "2026-10-01T00:00:00Z", "periodEnd": "2026-11-01T00:00:00Z",
            "adjusted": False}  # fmt: skip


INVOICE: dict[str, Any] = {
    "id": "inv_01JC9AX3K7", "number": "INV-2026-000042", "type": "subscription",
    "customerId": "acme-42", "subscriptionId": "sub_1", "billRunId": "br_1", "status": "OPEN",
    "currency": "USD", "periodStart": "2026-10-01T00:00:00Z", "periodEnd": "2026-11-01T00:00:00Z",
    # 02:30 UTC on Nov 2 is still Nov 1 in Los Angeles: the customer's date is the TxnDate.
    "issuedAt": "2026-11-02T02:30:00Z", "dueAt": "2026-12-02T02:30:00Z",
    "subtotal": "3753.70", "discountTotal": "10.00", "taxTotal": "12.34", "creditTotal": "0.00",
    "total": "3756.04", "amountPaid": "0.00", "amountDue": "3756.04",
    "createdAt": "2026-11-02T02:00:00Z", "regeneratedFrom": None,
    "lines": [
        _line("il_1", "USAGE", "3", "1234.567", "3703.70", "12.34"),
        # A minimum: 50.00 for 7 calls at 0.10, so Qty x UnitPrice is not the amount.
        _line("il_2", "MINIMUM_COMMITMENT", "7", "0.1", "50.00"),
        _line("il_3", "DISCOUNT", "1", "-10", "-10.00"),
        _line("il_4", "CREDIT", "1", "-5", "-5.00"),
    ],
}  # fmt: skip

CREDIT_NOTE: dict[str, Any] = {
    "id": "cn_01JCA0QW2E", "number": "CN-000007", "invoiceId": "inv_01JC9AX3K7",
    "customerId": "acme-42", "status": "ISSUED", "type": "offset", "amount": "100.50",
    "currency": "USD", "reason": "PRODUCT_UNSATISFACTORY", "description": "outage on Oct 12",
    "balance": "0.00", "refundStatus": None, "createdAt": "2026-11-05T12:00:00Z",
    "issuedAt": "2026-11-05T12:00:00Z", "appliedAt": None, "voidedAt": None,
}  # fmt: skip


def invoice_document(**changes: Any) -> Document:
    return Document("invoice", INVOICE["id"], "t_1", {**INVOICE, **changes}, CUSTOMER)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def qbo(clock: FrozenClock) -> Iterator[FakeQuickBooks]:
    with fake_quickbooks(clock) as fake:
        yield fake


def connect(qbo: FakeQuickBooks, clock: FrozenClock, *, authorized: bool = True,
            timeout: float = 5.0, **config: Any) -> QuickBooksConnector:  # fmt: skip
    credentials = Credentials()
    if authorized:
        access, refresh = qbo.grant()
        credentials = Credentials(access, refresh, clock.now() + timedelta(hours=1), REALM)
    settings = QuickBooksConfig.model_validate(
        {
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "baseUrl": qbo.url,
            "tokenUrl": qbo.token_url,
            "authorizeUrl": "https://appcenter.intuit.com/connect/oauth2",
            **config,
        }
    )
    context = Context(now=clock.now, redirect_uri=REDIRECT_URI)
    return QuickBooksConnector(settings, credentials, context, timeout=timeout)


# -- OAuth ---------------------------------------------------------------------------


def test_authorize_url_asks_for_the_accounting_scope(qbo: FakeQuickBooks, clock: FrozenClock):
    url = urlsplit(connect(qbo, clock, authorized=False).authorize("st-123").url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "appcenter.intuit.com",
        "/connect/oauth2",
    )
    assert parse_qs(url.query) == {
        "client_id": [CLIENT_ID], "response_type": ["code"],
        "scope": ["com.intuit.quickbooks.accounting"], "redirect_uri": [REDIRECT_URI],
        "state": ["st-123"],
    }  # fmt: skip


def test_code_exchange_keeps_tokens_expiry_and_realm(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock, authorized=False)
    credentials = connector.complete(qbo.issue_code(), None, {"realmId": REALM, "state": "s"})
    assert credentials.access_token in qbo.access
    assert credentials.refresh_token == qbo.refresh_token
    assert credentials.expires_at == NOW + timedelta(seconds=3600)
    assert credentials.account == REALM
    form = qbo.server.requests[-1].form()
    assert form == {"grant_type": ["authorization_code"], "code": ["AB110000authcode"],
                    "redirect_uri": [REDIRECT_URI]}  # fmt: skip
    assert connector.test() == 200  # the tokens work against the API


def test_code_exchange_refused_is_a_sync_error(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock, authorized=False)
    with pytest.raises(SyncError) as refused:
        connector.complete("not-a-code", None, {"realmId": REALM})
    assert refused.value.response_code == 400
    assert "invalid_grant" in refused.value.message
    with pytest.raises(SyncError, match="realmId"):
        connector.complete(qbo.issue_code(), None, {})


def test_wrong_client_secret_is_refused_with_401(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock, authorized=False, clientSecret="wrong")
    with pytest.raises(SyncError) as refused:
        connector.complete(qbo.issue_code(), None, {"realmId": REALM})
    assert refused.value.response_code == 401


# -- pushes --------------------------------------------------------------------------


def test_create_then_sparse_update_the_same_invoice(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    first = connector.push(invoice_document(), None)
    assert (first.version, first.response_code) == ("0", 200)
    created = qbo.records["invoice"][first.id]
    assert created["DocNumber"] == "INV-2026-000042"
    assert (created["TxnDate"], created["DueDate"]) == ("2026-11-01", "2026-12-01")
    assert created["TotalAmt"] == Decimal("3756.04")  # = our total, CREDIT line left out
    assert created["CurrencyRef"] == {"value": "USD"}

    changed = invoice_document(dueAt="2026-12-20T12:00:00Z")
    second = connector.push(changed, External(first.id, first.version))
    assert (second.id, second.version) == (first.id, "1")
    assert qbo.created["invoice"] == 1  # updated, never duplicated
    assert qbo.records["invoice"][first.id]["DueDate"] == "2026-12-20"
    update = qbo.writes("invoice")[-1].json()
    assert (update["Id"], update["SyncToken"], update["sparse"]) == (first.id, "0", True)


def test_amounts_reach_quickbooks_with_our_exact_digits(qbo: FakeQuickBooks, clock: FrozenClock):
    connect(qbo, clock).push(invoice_document(), None)
    raw = qbo.writes("invoice")[0].body
    assert b'"Qty":3,' in raw and b'"UnitPrice":1234.567' in raw and b'"Amount":3703.70' in raw
    assert b'"TotalTax":12.34' in raw
    lines = json.loads(raw, parse_float=Decimal)["Line"]
    assert [line["Amount"] for line in lines] == [Decimal("3703.70"), Decimal("50.00"),
                                                  Decimal("10.00")]  # fmt: skip
    # The minimum line: Qty x UnitPrice is not its amount, so only the amount is sent.
    assert "Qty" not in lines[1]["SalesItemLineDetail"]
    assert lines[2] == {"DetailType": "DiscountLineDetail", "Amount": Decimal("10.00"),
                        "Description": "Discount il_3",
                        "DiscountLineDetail": {"PercentBased": False}}  # fmt: skip


def test_customer_is_created_once_then_found(qbo: FakeQuickBooks, clock: FrozenClock):
    connect(qbo, clock).push(invoice_document(), None)
    [customer] = qbo.records["customer"].values()
    assert customer["DisplayName"] == "O'Brien & Sons"
    assert customer["PrimaryEmailAddr"] == {"Address": "billing@obrien.example"}
    assert customer["BillAddr"]["City"] == "San Francisco"
    queries = [r.query["query"][0] for r in qbo.server.requests if r.path.endswith("/query")]
    assert "SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien & Sons' MAXRESULTS 1" in queries

    other = Document("invoice", "inv_2", "t_1", {**INVOICE, "id": "inv_2", "number": "INV-43"},
                     CUSTOMER)  # fmt: skip
    connect(qbo, clock).push(other, None)  # a new connector: found by the query, not memory
    assert qbo.created["customer"] == 1
    assert {r["CustomerRef"]["value"] for r in qbo.records["invoice"].values()} == {customer["Id"]}


def test_an_existing_customer_and_item_are_used(qbo: FakeQuickBooks, clock: FrozenClock):
    known = qbo.add("customer", {"DisplayName": "O'Brien & Sons"})
    item = qbo.add("item", {"Name": "Consulting", "Type": "Service"})
    pushed = connect(qbo, clock, itemId=item["Id"]).push(invoice_document(), None)
    saved = qbo.records["invoice"][pushed.id]
    assert saved["CustomerRef"] == {"value": known["Id"]}
    assert {ln["SalesItemLineDetail"]["ItemRef"]["value"] for ln in saved["Line"]
            if ln["DetailType"] == "SalesItemLineDetail"} == {item["Id"]}  # fmt: skip
    assert (qbo.created["customer"], qbo.created["item"]) == (0, 0)


def test_usage_item_is_created_on_the_income_account(qbo: FakeQuickBooks, clock: FrozenClock):
    connect(qbo, clock).push(invoice_document(), None)
    [item] = qbo.records["item"].values()
    assert (item["Name"], item["Type"], item["IncomeAccountRef"]) == (
        "Meterline usage", "Service", {"value": "1"})  # fmt: skip


def test_credit_note_becomes_a_credit_memo(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    note = Document("credit_note", CREDIT_NOTE["id"], "t_1", CREDIT_NOTE, CUSTOMER, INVOICE)
    pushed = connector.push(note, None)
    memo = qbo.records["creditmemo"][pushed.id]
    assert (memo["DocNumber"], memo["TotalAmt"], memo["TxnDate"]) == (
        "CN-000007", Decimal("100.50"), "2026-11-05")  # fmt: skip
    assert "INV-2026-000042" in memo["Line"][0]["Description"]
    assert qbo.created["invoice"] == 0
    again = connector.push(note, External(pushed.id, pushed.version))
    assert (again.id, again.version, qbo.created["creditmemo"]) == (pushed.id, "1", 1)


def test_lost_answer_is_replayed_by_request_id(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    connector.push(invoice_document(), None)  # customer and item now exist
    qbo.server.lose_answers(Response(502, {"message": "Bad Gateway"}))
    with pytest.raises(SyncError) as lost:
        connector.push(invoice_document(number="INV-44"), None)
    assert lost.value.response_code == 502
    assert qbo.created["invoice"] == 2  # QuickBooks booked it; we never heard
    retried = connector.push(invoice_document(number="INV-44"), None)
    assert qbo.created["invoice"] == 2  # the same requestid: the first answer, no duplicate
    assert qbo.records["invoice"][retried.id]["DocNumber"] == "INV-44"
    first, second = qbo.writes("invoice")[-2:]
    assert first.query["requestid"] == second.query["requestid"]
    assert len(first.query["requestid"][0]) <= 50


def test_stale_sync_token_is_reread_once(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    first = connector.push(invoice_document(), None)
    qbo.edit("invoice", first.id)  # an accountant edited it in QuickBooks
    pushed = connector.push(invoice_document(dueAt="2026-12-24T12:00:00Z"), External(first.id, "0"))
    assert (pushed.id, pushed.version) == (first.id, "2")
    stale, fresh = qbo.writes("invoice")[-2:]
    assert (stale.json()["SyncToken"], fresh.json()["SyncToken"]) == ("0", "1")
    assert stale.query["requestid"] != fresh.query["requestid"]
    assert qbo.created["invoice"] == 1


def test_stale_twice_is_a_sync_error_with_fault_5010(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    first = connector.push(invoice_document(), None)
    qbo.edit("invoice", first.id)
    # Refused as stale, then a read that lags behind the edit: the retry is stale too.
    stale_read = Response(200, {"Invoice": {"Id": first.id, "SyncToken": "0"}})
    qbo.server.script(fault(400, "5010", "Stale Object Error"), stale_read)
    with pytest.raises(SyncError) as stale:
        connector.push(invoice_document(), External(first.id, "0"))
    assert stale.value.response_code == 400
    assert [r.method for r in qbo.server.requests[-3:]] == ["POST", "GET", "POST"]  # once
    assert "5010" in stale.value.message and "Stale Object Error" in stale.value.message


def test_update_of_a_deleted_record_is_a_sync_error(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    with pytest.raises(SyncError) as missing:
        connector.push(invoice_document(), External("999", "3"))
    assert (missing.value.response_code, qbo.created["invoice"]) == (400, 0)
    assert "Fault 610" in missing.value.message


# -- tokens and failures -------------------------------------------------------------


def test_expired_token_is_refreshed_before_the_call(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    old_refresh = connector.credentials.refresh_token
    clock.advance(timedelta(hours=2))
    assert connector.test() == 200
    assert connector.credentials.changed
    assert connector.credentials.refresh_token != old_refresh  # rotated: the new one kept
    assert connector.credentials.expires_at == clock.now() + timedelta(hours=1)
    assert not any(r.path.startswith("/v3") and r.headers["authorization"].endswith(".1")
                   for r in qbo.server.requests)  # the expired token was never sent  # fmt: skip


def test_401_is_refreshed_and_retried_once(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    # Our clock says the token is good; QuickBooks' says it is over (clock skew, revoked).
    connector.credentials.expires_at = clock.now() + timedelta(days=1)
    clock.advance(timedelta(hours=2))
    pushed = connector.push(invoice_document(), None)
    assert qbo.created["invoice"] == 1 and pushed.version == "0"
    assert connector.credentials.changed
    paths = [r.path for r in qbo.server.requests]
    assert paths.count("/oauth2/v1/tokens/bearer") == 1
    # Refreshed again later with the rotated token, not the first one.
    clock.advance(timedelta(hours=2))
    assert connector.test() == 200


def test_refresh_refused_is_a_sync_error(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    connector.credentials.refresh_token = "AB11revoked"
    clock.advance(timedelta(hours=2))
    with pytest.raises(SyncError) as refused:
        connector.push(invoice_document(), None)
    assert refused.value.response_code == 400
    assert "invalid_grant" in refused.value.message
    assert qbo.created == {k: 0 for k in qbo.created}


def test_still_401_after_refresh_is_a_sync_error(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    qbo.reject_tokens = True  # revoked in QuickBooks: even a fresh token is refused
    with pytest.raises(SyncError) as refused:
        connector.test()
    assert refused.value.response_code == 401
    assert "Fault 3200" in refused.value.message


def test_server_error_is_a_sync_error_with_its_status(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock)
    qbo.server.script(Response(500, {"Fault": {"Error": [{"Message": "Internal Server Error",
                                                   "code": "10000"}]}}))  # fmt: skip
    with pytest.raises(SyncError) as failed:
        connector.push(invoice_document(), None)
    assert failed.value.response_code == 500
    assert "Internal Server Error" in failed.value.message
    assert len(qbo.server.requests) == 1  # one attempt: the engine retries, not us


def test_timeout_is_a_sync_error_without_status(qbo: FakeQuickBooks, clock: FrozenClock):
    connector = connect(qbo, clock, timeout=0.2)
    qbo.server.script(Response(200, {"CompanyInfo": {}}, delay=1.0))
    with pytest.raises(SyncError) as slow:
        connector.test()
    assert slow.value.response_code is None
    assert "no answer" in slow.value.message


def test_test_reads_company_info_with_minor_version(qbo: FakeQuickBooks, clock: FrozenClock):
    assert connect(qbo, clock).test() == 200
    request = qbo.server.requests[-1]
    assert request.path == f"/v3/company/{REALM}/companyinfo/{REALM}"
    assert request.query["minorversion"] == [MINOR_VERSION]
    assert request.headers["accept"] == "application/json"


def test_unauthorized_connection_cannot_push(qbo: FakeQuickBooks, clock: FrozenClock):
    with pytest.raises(SyncError, match="not authorized"):
        connect(qbo, clock, authorized=False).push(invoice_document(), None)
    assert qbo.server.requests == []


def test_adapter_registers_quickbooks_with_a_sealed_secret():
    found = adapter("quickbooks")
    assert found.oauth and found.secrets == frozenset({"clientSecret"})
    with pytest.raises(InvalidInput, match="clientSecret"):
        found.connector(
            {"clientId": "x"}, Credentials(), Context(now=lambda: NOW, redirect_uri=REDIRECT_URI)
        )


@pytest.mark.parametrize(
    ("name", "literal"),
    [("Acme", "'Acme'"), ("O'Brien", "'O\\'Brien'"), ("a\\'b", "'a\\\\\\'b'")],
)
def test_query_literals_escape_quotes_and_backslashes(name: str, literal: str):
    assert query_literal(name) == literal


def test_a_customer_with_a_backslash_and_quote_is_found_again(
    qbo: FakeQuickBooks, clock: FrozenClock
):
    known = qbo.add("customer", {"DisplayName": "Back\\slash 'n' Co"})
    customer = {**CUSTOMER, "name": "Back\\slash 'n' Co"}
    pushed = connect(qbo, clock).push(Document("invoice", "inv_9", "t_1", INVOICE, customer), None)
    assert qbo.records["invoice"][pushed.id]["CustomerRef"] == {"value": known["Id"]}
    assert qbo.created["customer"] == 0


def test_a_number_longer_than_quickbooks_allows_is_not_sent(
    qbo: FakeQuickBooks, clock: FrozenClock
):
    with pytest.raises(SyncError, match="21"):
        connect(qbo, clock).push(invoice_document(number="INV-" + "9" * 20), None)
    assert qbo.writes("invoice") == []
