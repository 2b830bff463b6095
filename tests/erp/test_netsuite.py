"""The NetSuite connector against a local server that answers and checks as SuiteTalk
REST web services document (tests/helpers/netsuite_server.py): token-based auth
signatures, upsert by external id, customers, credit memos, errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import InvalidInput
from invoicing.erp import oauth1
from invoicing.erp.base import Context, Credentials, Document, External, SyncError
from invoicing.erp.connectors import ADAPTERS
from invoicing.erp.netsuite import NetSuiteConfig, NetSuiteConnector
from tests.helpers.loopback import Response
from tests.helpers.netsuite_server import (
    ACCOUNT,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    CURRENCIES,
    INVALID_LOGIN,
    ITEM_ID,
    RECORDS,
    SUBSIDIARY_ID,
    TOKEN_ID,
    TOKEN_SECRET,
    FakeNetSuite,
    error,
    fake_netsuite,
)

NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)

CUSTOMER: dict[str, Any] = {
    "id": "cus_01JBX4Q7",
    "externalId": "acme-42",
    "name": "Acme GmbH",
    "email": "billing@acme.example",
    "currency": "EUR",
    "country": "DE",
    "region": None,
    "taxExempt": False,
    "timezone": "Europe/Berlin",
    "invoiceGraceDays": 0,
    "netPaymentTermDays": 30,
    "paymentProvider": None,
    "paymentProviderCustomerId": None,
    "createdAt": "2026-01-15T10:00:00Z",
    "addressLine1": "Hauptstr. 1",
    "addressLine2": None,
    "city": "Berlin",
    "postalCode": "10115",
    "taxId": "DE123456789",
}


def _line(
    id: str, type: str, description: str, quantity: str, unit: str, amount: str, tax: str = "0.00"
) -> dict[str, Any]:
    return {
        "id": id,
        "type": type,
        "description": description,
        "metric": "api_calls" if type == "USAGE" else None,
        "group": {},
        "chargeId": "chg_1" if type == "USAGE" else None,
        "quantity": quantity,
        "unitAmount": unit,
        "amount": amount,
        "discountAmount": "0.00",
        "taxRate": "0",
        "taxAmount": tax,
        "periodStart": "2026-10-01T00:00:00Z",
        "periodEnd": "2026-11-01T00:00:00Z",
        "adjusted": False,
    }


INVOICE: dict[str, Any] = {
    "id": "inv_01JC2M9A",
    "number": "ML-2026-0042",
    "type": "subscription",
    "customerId": "acme-42",
    "subscriptionId": "sub_1",
    "billRunId": "br_1",
    "status": "OPEN",
    "currency": "EUR",
    "periodStart": "2026-10-01T00:00:00Z",
    "periodEnd": "2026-11-01T00:00:00Z",
    "issuedAt": "2026-11-01T00:05:00Z",
    "dueAt": "2026-12-01T00:05:00Z",
    "subtotal": "202.34",
    "discountTotal": "10.00",
    "taxTotal": "1.10",
    "creditTotal": "5.00",
    "total": "193.44",
    "amountPaid": "0.00",
    "amountDue": "188.44",
    "createdAt": "2026-11-01T00:04:59Z",
    "regeneratedFrom": None,
    "lines": [
        _line("il_1", "USAGE", "API calls", "1234567", "0.0001234", "152.35"),
        _line("il_2", "SUBSCRIPTION", "Pro plan", "1", "49.99", "49.99"),
        _line("il_3", "DISCOUNT", "Coupon WELCOME10", "1", "-10.00", "-10.00"),
        _line("il_4", "CREDIT", "Prepaid credit", "1", "-5.00", "-5.00"),
        _line("il_5", "TAX_ADJUSTMENT", "Tax adjustment", "1", "0", "0.00", tax="1.10"),
        _line("il_6", "USAGE", "Storage GB (included)", "20", "0", "0.00"),
    ],
}

CREDIT_NOTE: dict[str, Any] = {
    "id": "cn_01JD7Z",
    "number": "CN-2026-0007",
    "invoiceId": INVOICE["id"],
    "customerId": "acme-42",
    "status": "ISSUED",
    "type": "offset",
    "amount": "33.33",
    "currency": "EUR",
    "reason": "PRODUCT_UNSATISFACTORY",
    "description": "Outage on 2026-10-12",
    "balance": "33.33",
    "refundStatus": None,
    "createdAt": "2026-11-02T08:00:00Z",
    "issuedAt": "2026-11-02T08:01:00Z",
    "appliedAt": None,
    "voidedAt": None,
}


def invoice_doc(body: dict[str, Any] = INVOICE, customer: dict[str, Any] = CUSTOMER) -> Document:
    return Document("invoice", body["id"], "ten_1", body, customer)


def credit_doc(invoice: dict[str, Any] = INVOICE) -> Document:
    return Document("credit_note", CREDIT_NOTE["id"], "ten_1", CREDIT_NOTE, CUSTOMER, invoice)


def config(fake: FakeNetSuite, **changes: str) -> dict[str, str]:
    return {
        "accountId": ACCOUNT,
        "consumerKey": CONSUMER_KEY,
        "consumerSecret": CONSUMER_SECRET,
        "tokenId": TOKEN_ID,
        "tokenSecret": TOKEN_SECRET,
        "itemId": ITEM_ID,
        "subsidiaryId": SUBSIDIARY_ID,
        "baseUrl": fake.url,
        **changes,
    }


def connect(
    fake: FakeNetSuite, *, now: datetime = NOW, timeout: float = 5.0, **changes: str
) -> NetSuiteConnector:
    context = Context(now=lambda: now, redirect_uri="http://unused.example/callback")
    return NetSuiteConnector(
        NetSuiteConfig.model_validate(config(fake, **changes)), context, timeout=timeout
    )


@pytest.fixture
def netsuite() -> Iterator[FakeNetSuite]:
    with fake_netsuite(lambda: NOW) as fake:
        yield fake


# -- the signer ------------------------------------------------------------------------


def test_the_signature_matches_a_base_string_built_by_hand_per_rfc_5849() -> None:
    token = oauth1.Token("1234567_SB1", "ck", "cs+secret", "tk", "ts&secret")
    url = (
        "HTTPS://1234567-SB1.SuiteTalk.api.netsuite.com:443/services/rest/record/v1/"
        "invoice/eid:inv_1?replace=item&b=two%20words&a=%22q%22"
    )
    header = oauth1.authorization(token, "put", url, timestamp=1793698200, nonce="n0nce~x y")
    # By hand: lowercase scheme and host, no :443, no query; parameters (oauth_* and the
    # query's, not realm or the signature) encoded, sorted, joined; then encoded again.
    expected_base = (
        "PUT&https%3A%2F%2F1234567-sb1.suitetalk.api.netsuite.com%2Fservices%2Frest%2F"
        "record%2Fv1%2Finvoice%2Feid%3Ainv_1&"
        "a%3D%2522q%2522%26b%3Dtwo%2520words%26oauth_consumer_key%3Dck%26"
        "oauth_nonce%3Dn0nce~x%2520y%26oauth_signature_method%3DHMAC-SHA256%26"
        "oauth_timestamp%3D1793698200%26oauth_token%3Dtk%26oauth_version%3D1.0%26"
        "replace%3Ditem"
    )
    key = b"cs%2Bsecret&ts%26secret"
    signature = base64.b64encode(
        hmac.new(key, expected_base.encode(), hashlib.sha256).digest()
    ).decode()
    oauth = [
        ("oauth_consumer_key", "ck"),
        ("oauth_token", "tk"),
        ("oauth_signature_method", "HMAC-SHA256"),
        ("oauth_timestamp", "1793698200"),
        ("oauth_nonce", "n0nce~x y"),
        ("oauth_version", "1.0"),
    ]
    assert oauth1.signature_base_string("put", url, oauth) == expected_base
    quoted_signature = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert header == (
        'OAuth realm="1234567_SB1",oauth_consumer_key="ck",oauth_token="tk",'
        'oauth_signature_method="HMAC-SHA256",oauth_timestamp="1793698200",'
        f'oauth_nonce="n0nce~x%20y",oauth_version="1.0",oauth_signature="{quoted_signature}"'
    )


def test_a_non_default_port_stays_in_the_base_url() -> None:
    assert oauth1.base_url("http://127.0.0.1:8080/a/b?x=1") == "http://127.0.0.1:8080/a/b"
    assert oauth1.base_url("http://Example.COM:80/") == "http://example.com/"


# -- config ----------------------------------------------------------------------------


def test_the_adapter_declares_the_secrets_and_checks_the_config() -> None:
    adapter = ADAPTERS["netsuite"]
    assert adapter.secrets == {"consumerSecret", "tokenSecret"} and not adapter.oauth
    good = {
        "accountId": "1234567_sb1",
        "consumerKey": "ck",
        "consumerSecret": "cs",
        "tokenId": "tk",
        "tokenSecret": "ts",
        "itemId": "501",
    }
    context = Context(now=lambda: NOW, redirect_uri="http://unused.example/callback")
    built = adapter.connector(good, Credentials(), context)
    assert isinstance(built, NetSuiteConnector)
    assert built.config.api_url == "https://1234567-sb1.suitetalk.api.netsuite.com"
    assert built.config.realm == "1234567_SB1"
    built.close()
    with pytest.raises(InvalidInput, match=r"config\.itemId"):
        adapter.connector({**good, "itemId": None}, Credentials(), context)
    with pytest.raises(InvalidInput, match=r"config\.accountId"):
        adapter.connector({**good, "accountId": "12 34"}, Credentials(), context)


# -- invoices --------------------------------------------------------------------------


def test_the_first_sync_upserts_the_customer_then_the_invoice(netsuite: FakeNetSuite) -> None:
    pushed = connect(netsuite).push(invoice_doc(), None)
    assert (pushed.id, pushed.version, pushed.response_code) == ("8801", None, 204)
    [customer] = netsuite.records["customer"].values()
    assert customer == {
        "id": "1201",
        "externalId": CUSTOMER["id"],
        "companyName": "Acme GmbH",
        "email": "billing@acme.example",
        "currency": {"id": CURRENCIES["EUR"]},
        "subsidiary": {"id": SUBSIDIARY_ID},
    }
    [invoice] = netsuite.records["invoice"].values()
    assert invoice == {
        "id": "8801",
        "externalId": INVOICE["id"],
        "entity": {"id": "1201"},
        "tranId": "ML-2026-0042",
        "tranDate": "2026-11-01",
        "dueDate": "2026-12-01",
        "currency": {"id": CURRENCIES["EUR"]},
        "memo": "Meterline invoice ML-2026-0042, period 2026-10-01 to 2026-11-01",
        "subsidiary": {"id": SUBSIDIARY_ID},
        "item": {
            "items": [
                {
                    "item": {"id": ITEM_ID},
                    "quantity": 1234567,
                    "rate": Decimal("0.0001234"),
                    "amount": Decimal("152.35"),
                    "description": "API calls",
                },
                {
                    "item": {"id": ITEM_ID},
                    "quantity": 1,
                    "rate": Decimal("49.99"),
                    "amount": Decimal("49.99"),
                    "description": "Pro plan",
                },
                {
                    "item": {"id": ITEM_ID},
                    "quantity": 1,
                    "rate": Decimal("-10.00"),
                    "amount": Decimal("-10.00"),
                    "description": "Coupon WELCOME10",
                },
                {
                    "item": {"id": ITEM_ID},
                    "quantity": 20,
                    "rate": 0,
                    "amount": Decimal("0.00"),
                    "description": "Storage GB (included)",
                },
            ]
        },
        # Our total before tax (193.44 - 1.10), to the cent; the CREDIT line is the
        # prepaid credit and the TAX_ADJUSTMENT is tax, which NetSuite computes.
        "total": Decimal("192.34"),
    }
    methods = [(r.method, r.path) for r in netsuite.server.requests]
    assert methods == [
        ("GET", f"{RECORDS}/currency"),
        ("PUT", f"{RECORDS}/customer/eid:{CUSTOMER['id']}"),
        ("PUT", f"{RECORDS}/invoice/eid:{INVOICE['id']}"),
    ]
    put = netsuite.puts("invoice")[0]
    assert put.query == {"replace": ["item"]}
    assert put.headers["content-type"] == "application/json"
    assert put.headers["authorization"].startswith(f'OAuth realm="{ACCOUNT}",')


def test_amounts_go_out_as_exact_json_numbers(netsuite: FakeNetSuite) -> None:
    connect(netsuite).push(invoice_doc(), None)
    body = netsuite.puts("invoice")[0].body
    assert b'"rate":0.0001234,' in body and b'"amount":152.35,' in body
    assert b'"quantity":1234567,' in body and b'"amount":-10.00,' in body
    assert b"e-" not in body and b'"152.35"' not in body  # no exponent, no strings


def test_a_resync_updates_the_same_record_and_replaces_its_lines(
    netsuite: FakeNetSuite,
) -> None:
    connector = connect(netsuite)
    first = connector.push(invoice_doc(), None)
    changed = {
        **INVOICE,
        "dueAt": "2026-12-15T00:05:00Z",
        "lines": [
            _line("il_1", "USAGE", "API calls", "1000000", "0.0001234", "123.40"),
            INVOICE["lines"][1],
        ],
    }
    again = connector.push(invoice_doc(changed), External(first.id))
    lost_id = connector.push(invoice_doc(changed), None)  # the engine lost our id: same
    assert first.id == again.id == lost_id.id == "8801"
    [invoice] = netsuite.records["invoice"].values()
    assert invoice["dueDate"] == "2026-12-15"
    assert [line["amount"] for line in invoice["item"]["items"]] == [
        Decimal("123.40"),
        Decimal("49.99"),
    ]
    assert invoice["total"] == Decimal("173.39")
    assert len(netsuite.records["customer"]) == 1


def test_the_customer_is_upserted_by_our_id_and_follows_renames(
    netsuite: FakeNetSuite,
) -> None:
    connector = connect(netsuite)
    connector.push(invoice_doc(), None)
    renamed = {**CUSTOMER, "name": "Acme SE", "email": None}
    second = {**INVOICE, "id": "inv_01JC2M9B", "number": "ML-2026-0043"}
    connector.push(invoice_doc(second, renamed), None)
    [customer] = netsuite.records["customer"].values()
    assert customer["companyName"] == "Acme SE" and customer["externalId"] == CUSTOMER["id"]
    assert [i["entity"] for i in netsuite.records["invoice"].values()] == [{"id": "1201"}] * 2
    assert b'"email"' not in netsuite.puts("customer")[1].body
    # The currency is looked up once per connector, not once per record.
    assert netsuite.server.count(f"{RECORDS}/currency") == 1


def test_without_a_subsidiary_none_is_sent(netsuite: FakeNetSuite) -> None:
    cfg = config(netsuite)
    del cfg["subsidiaryId"]
    context = Context(now=lambda: NOW, redirect_uri="http://unused.example/callback")
    NetSuiteConnector(NetSuiteConfig.model_validate(cfg), context).push(invoice_doc(), None)
    assert all(b"subsidiary" not in put.body for put in netsuite.puts())


def test_a_currency_netsuite_lacks_is_a_sync_error(netsuite: FakeNetSuite) -> None:
    chf = {**CUSTOMER, "currency": "CHF"}
    with pytest.raises(SyncError, match="NetSuite has no currency CHF"):
        connect(netsuite).push(invoice_doc({**INVOICE, "currency": "CHF"}, chf), None)
    assert netsuite.puts() == []


def test_an_item_netsuite_lacks_is_its_400(netsuite: FakeNetSuite) -> None:
    with pytest.raises(SyncError) as raised:
        connect(netsuite, itemId="9999").push(invoice_doc(), None)
    assert raised.value.response_code == 400
    assert raised.value.message == (
        "HTTP 400: INVALID_CONTENT: Error while accessing resource: You have entered an "
        "Invalid Field Value 9999 for the following field: item"
    )
    assert netsuite.records["invoice"] == {}


# -- credit notes ----------------------------------------------------------------------


def test_a_credit_note_is_a_credit_memo_created_from_the_invoice(
    netsuite: FakeNetSuite,
) -> None:
    connector = connect(netsuite)
    invoice = connector.push(invoice_doc(), None)
    pushed = connector.push(credit_doc(), None)
    again = connector.push(credit_doc(), External(pushed.id))
    assert pushed.id == again.id == "9901"
    [memo] = netsuite.records["creditMemo"].values()
    assert memo == {
        "id": "9901",
        "externalId": CREDIT_NOTE["id"],
        "entity": {"id": "1201"},
        "tranId": "CN-2026-0007",
        "tranDate": "2026-11-02",
        "currency": {"id": CURRENCIES["EUR"]},
        "memo": "Meterline credit note CN-2026-0007 for invoice ML-2026-0042",
        "createdFrom": {"id": invoice.id},
        "subsidiary": {"id": SUBSIDIARY_ID},
        "item": {
            "items": [
                {
                    "item": {"id": ITEM_ID},
                    "quantity": 1,
                    "rate": Decimal("33.33"),
                    "amount": Decimal("33.33"),
                    "description": "Credit note CN-2026-0007 for invoice ML-2026-0042 "
                    "(PRODUCT_UNSATISFACTORY): Outage on 2026-10-12",
                }
            ]
        },
        "total": Decimal("33.33"),
    }
    assert netsuite.records["invoice"][invoice.id]["total"] == Decimal("192.34")  # untouched


def test_a_credit_note_of_an_invoice_netsuite_lacks_still_syncs(
    netsuite: FakeNetSuite,
) -> None:
    connect(netsuite).push(credit_doc(), None)
    [memo] = netsuite.records["creditMemo"].values()
    assert "createdFrom" not in memo and memo["total"] == Decimal("33.33")
    assert netsuite.records["invoice"] == {}


# -- authentication ----------------------------------------------------------------------


def test_a_wrong_secret_is_netsuites_401_with_its_message(netsuite: FakeNetSuite) -> None:
    with pytest.raises(SyncError) as raised:
        connect(netsuite, tokenSecret="not-the-secret").push(invoice_doc(), None)
    assert raised.value.response_code == 401
    assert raised.value.message == f"HTTP 401: INVALID_LOGIN: {INVALID_LOGIN}"
    assert netsuite.rejections == ["signature mismatch"]
    assert len(netsuite.server.requests) == 1  # no retry, no refresh: TBA has none
    assert netsuite.records["customer"] == {}


def test_every_request_has_a_fresh_nonce(netsuite: FakeNetSuite) -> None:
    connector = connect(netsuite)
    connector.push(invoice_doc(), None)
    connector.push(credit_doc(), None)
    assert connector.test() == 200
    assert netsuite.rejections == []
    assert len(netsuite.nonces) == len(netsuite.server.requests) == 7


def test_a_repeated_nonce_is_refused(netsuite: FakeNetSuite) -> None:
    counter = itertools.count()
    context = Context(
        now=lambda: NOW,
        redirect_uri="http://unused.example/callback",
        nonce=lambda: "same-nonce-" + ("0" if next(counter) < 2 else "x"),
    )
    connector = NetSuiteConnector(NetSuiteConfig.model_validate(config(netsuite)), context)
    assert connector.test() == 200
    with pytest.raises(SyncError) as raised:
        connector.test()
    assert raised.value.response_code == 401 and netsuite.rejections == ["nonce used"]
    assert connector.test() == 200  # a new nonce goes through again


def test_a_clock_far_from_netsuites_is_refused(netsuite: FakeNetSuite) -> None:
    with pytest.raises(SyncError) as raised:
        connect(netsuite, now=NOW + timedelta(minutes=10)).test()
    assert raised.value.response_code == 401
    assert netsuite.rejections == ["timestamp too far from the clock"]
    assert connect(netsuite, now=NOW + timedelta(minutes=4)).test() == 200


def test_the_signature_holds_for_a_query_with_spaces_and_quotes(netsuite: FakeNetSuite) -> None:
    connect(netsuite).push(invoice_doc(), None)
    [lookup] = [r for r in netsuite.server.requests if r.path.endswith("/currency")]
    assert lookup.query == {"q": ['symbol IS "EUR"']}
    assert netsuite.rejections == []


# -- failures and test() -----------------------------------------------------------------


def test_a_500_is_a_sync_error_with_netsuites_detail(netsuite: FakeNetSuite) -> None:
    netsuite.server.script(
        error(500, "Internal Server Error", "UNEXPECTED_ERROR", "An unexpected error occurred.")
    )
    with pytest.raises(SyncError) as raised:
        connect(netsuite).push(invoice_doc(), None)
    assert (raised.value.response_code, raised.value.message) == (
        500,
        "HTTP 500: UNEXPECTED_ERROR: An unexpected error occurred.",
    )


def test_a_429_is_a_sync_error_and_the_next_attempt_succeeds(netsuite: FakeNetSuite) -> None:
    connector = connect(netsuite)
    netsuite.server.script(Response(429, b"Too Many Requests"))
    with pytest.raises(SyncError) as raised:
        connector.push(invoice_doc(), None)
    assert (raised.value.response_code, raised.value.message) == (
        429,
        "HTTP 429: Too Many Requests",
    )
    assert connector.push(invoice_doc(), None).id == "8801"
    assert len(netsuite.records["invoice"]) == 1


def test_an_answer_without_a_location_is_a_sync_error(netsuite: FakeNetSuite) -> None:
    connector = connect(netsuite)
    connector.test()
    netsuite.server.script(Response(200, {"items": [{"id": "4"}]}), Response(204))
    with pytest.raises(SyncError) as raised:
        connector.push(invoice_doc(), None)
    assert (raised.value.response_code, raised.value.message) == (
        204,
        "NetSuite saved the customer but named no record",
    )


def test_no_answer_in_time_is_a_sync_error_without_a_status(netsuite: FakeNetSuite) -> None:
    netsuite.server.script(Response(200, {"items": []}, delay=1.0))
    with pytest.raises(SyncError) as raised:
        connect(netsuite, timeout=0.2).push(invoice_doc(), None)
    assert raised.value.response_code is None
    assert raised.value.message == "NetSuite did not answer in 0.2 s"


def test_the_connection_test_lists_one_customer(netsuite: FakeNetSuite) -> None:
    connector = connect(netsuite)
    assert connector.test() == 200
    [request] = netsuite.server.requests
    assert (request.method, request.path, request.query) == (
        "GET",
        f"{RECORDS}/customer",
        {"limit": ["1"]},
    )
    with pytest.raises(SyncError) as raised:
        connect(netsuite, consumerKey="unknown").test()
    assert raised.value.response_code == 401
    assert netsuite.rejections == ["unknown consumer key or token"]
