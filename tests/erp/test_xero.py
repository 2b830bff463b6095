"""The Xero connector against a local server that answers and checks as Xero's identity
service and Accounting API document (tests/helpers/xero_server.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.errors import InvalidInput
from invoicing.erp.base import Context, Credentials, Document, External, SyncError
from invoicing.erp.connectors import adapter
from invoicing.erp.xero import SCOPE, XeroConfig, XeroConnector
from invoicing.erp.xero_auth import challenge
from tests.helpers.loopback import Response
from tests.helpers.xero_server import (
    API,
    AUTHORIZE,
    CLIENT_ID,
    CLIENT_SECRET,
    CONNECTIONS,
    OTHER_TENANT,
    PRACTICE,
    REDIRECT_URI,
    TENANT,
    TOKEN,
    FakeXero,
    fake_xero,
    s256,
)

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def xero(clock: Clock) -> Iterator[FakeXero]:
    with fake_xero(clock.now) as server:
        yield server


def _config(xero: FakeXero, **extra: Any) -> XeroConfig:
    raw = {
        "clientId": CLIENT_ID,
        "baseUrl": xero.url,
        "tokenUrl": xero.url + TOKEN,
        "authorizeUrl": xero.url + AUTHORIZE,
        **extra,
    }
    return XeroConfig.model_validate(raw)


def _connector(
    xero: FakeXero,
    clock: Clock,
    credentials: Credentials | None = None,
    timeout: float = 5.0,
    **extra: Any,
) -> XeroConnector:
    if credentials is None:
        access, refresh = xero.issue()
        credentials = Credentials(access, refresh, clock.now() + timedelta(minutes=30), TENANT)
    context = Context(now=clock.now, redirect_uri=REDIRECT_URI)
    return XeroConnector(_config(xero, **extra), credentials, context, timeout=timeout)


CUSTOMER: dict[str, Any] = {
    "id": "cus_01JD8Q4V7K",
    "externalId": "acme-nz-001",
    "name": "Acme Widgets Ltd",
    "email": "accounts@acme.example",
    "currency": "NZD",
    "country": "NZ",
    "region": None,
    "taxExempt": False,
    "timezone": "Pacific/Auckland",
    "invoiceGraceDays": 3,
    "netPaymentTermDays": 20,
    "paymentProvider": None,
    "paymentProviderCustomerId": None,
    "createdAt": "2026-01-05T10:00:00Z",
    "addressLine1": "12 Queen Street",
    "addressLine2": None,
    "city": "Auckland",
    "postalCode": "1010",
    "taxId": "123-456-789",
}


def _line(id_: str, type_: str, description: str, quantity: str, unit: str, amount: str,
          tax: str) -> dict[str, Any]:  # fmt: skip
    return {"id": id_, "type": type_, "description": description, "metric": None, "group": {},
            "chargeId": None, "quantity": quantity, "unitAmount": unit, "amount": amount,
            "discountAmount": "0.00", "taxRate": "0.15", "taxAmount": tax,
            "periodStart": "2026-11-01T00:00:00Z", "periodEnd": "2026-12-01T00:00:00Z",
            "adjusted": False}  # fmt: skip


def _invoice(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "inv_01JEX7Q2M9",
        "number": "ML-2026-0042",
        "type": "subscription",
        "customerId": "acme-nz-001",
        "subscriptionId": "sub_01JD8R",
        "billRunId": "br_01JEX7",
        "status": "OPEN",
        "currency": "NZD",
        "periodStart": "2026-11-01T00:00:00Z",
        "periodEnd": "2026-12-01T00:00:00Z",
        "issuedAt": "2026-11-30T23:30:00Z",  # 1 December in Auckland
        "dueAt": "2026-12-20T23:30:00Z",
        "subtotal": "115.43",
        "discountTotal": "10.00",
        "taxTotal": "15.81",
        "creditTotal": "0.00",
        "total": "121.24",
        "amountPaid": "0.00",
        "amountDue": "121.24",
        "createdAt": "2026-11-30T23:29:00Z",
        "regeneratedFrom": None,
        "lines": [
            _line("il_1", "CHARGE", "Pro plan", "1", "100", "100.00", "15.00"),
            _line("il_2", "USAGE_FEE", "API calls", "1234.5", "0.0125", "15.43", "0.81"),
            _line("il_3", "DISCOUNT", "Coupon WELCOME10", "1", "-10", "-10.00", "0.00"),
        ],
    }
    body.update(changes)
    return body


def _document(body: dict[str, Any] | None = None) -> Document:
    body = body or _invoice()
    return Document("invoice", body["id"], "ten_1", body, CUSTOMER)


def _credit_note() -> Document:
    body: dict[str, Any] = {
        "id": "cn_01JF0A",
        "number": "CN-000007",
        "invoiceId": "inv_01JEX7Q2M9",
        "customerId": "acme-nz-001",
        "status": "ISSUED",
        "type": "offset",
        "amount": "23.45",
        "currency": "NZD",
        "reason": "ORDER_CHANGE",
        "description": None,
        "balance": "23.45",
        "refundStatus": None,
        "createdAt": "2026-12-02T08:00:00Z",
        "issuedAt": "2026-12-02T08:05:00Z",
        "appliedAt": None,
        "voidedAt": None,
    }
    return Document("credit_note", body["id"], "ten_1", body, CUSTOMER, _invoice())


def _requests(xero: FakeXero, method: str, path: str) -> list[Any]:
    return [r for r in xero.server.requests if r.method == method and r.path == path]


def _follow(url: str) -> dict[str, str]:
    """What the user's browser brings back to our callback after consenting."""
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# -- OAuth ------------------------------------------------------------------------------


def test_the_authorize_url_carries_an_s256_challenge_of_the_verifier(
    xero: FakeXero, clock: Clock
) -> None:
    authorization = _connector(xero, clock, Credentials()).authorize("st-123")
    url = urlsplit(authorization.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == xero.url + AUTHORIZE
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    verifier = authorization.code_verifier
    assert verifier is not None and re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "st-123",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    assert challenge(verifier) == s256(verifier) and "=" not in challenge(verifier)
    # RFC 7636 appendix B's example verifier and challenge.
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert _follow(authorization.url)["state"] == "st-123"


def test_a_new_verifier_every_time(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock, Credentials())
    assert connector.authorize("a").code_verifier != connector.authorize("a").code_verifier


def test_the_code_and_verifier_give_tokens_and_the_first_organisation(
    xero: FakeXero, clock: Clock
) -> None:
    xero.connected = [PRACTICE, TENANT, OTHER_TENANT]
    connector = _connector(xero, clock, Credentials())
    authorization = connector.authorize("st")
    callback = _follow(authorization.url)
    credentials = connector.complete(callback["code"], authorization.code_verifier, callback)
    assert credentials.account == TENANT  # the practice is not an organisation
    assert credentials.changed and credentials.access_token in xero.grants
    assert credentials.expires_at == START + timedelta(minutes=30)
    [token] = _requests(xero, "POST", TOKEN)
    assert "authorization" not in token.headers  # a PKCE app has no secret
    assert {k: v[0] for k, v in token.form().items()} == {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": authorization.code_verifier,
        "client_id": CLIENT_ID,
    }
    [listing] = _requests(xero, "GET", CONNECTIONS)
    assert listing.headers["authorization"] == f"Bearer {credentials.access_token}"
    assert connector.test() == 200


def test_the_configured_tenant_is_chosen_and_an_app_secret_is_sent_as_basic_auth(
    clock: Clock,
) -> None:
    with fake_xero(clock.now, secret=CLIENT_SECRET) as xero:
        connector = _connector(
            xero, clock, Credentials(), clientSecret=CLIENT_SECRET, tenantId=OTHER_TENANT
        )
        authorization = connector.authorize("st")
        code = _follow(authorization.url)["code"]
        assert connector.complete(code, authorization.code_verifier, {}).account == OTHER_TENANT
        [token] = _requests(xero, "POST", TOKEN)
        assert token.headers["authorization"].startswith("Basic ")


def test_a_tenant_the_user_did_not_connect_is_an_error(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock, Credentials(), tenantId=PRACTICE)
    authorization = connector.authorize("st")
    code = _follow(authorization.url)["code"]
    with pytest.raises(SyncError, match="not among the organisations"):
        connector.complete(code, authorization.code_verifier, {})


def test_a_wrong_verifier_is_refused_and_the_code_is_spent(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock, Credentials())
    authorization = connector.authorize("st")
    code = _follow(authorization.url)["code"]
    other = connector.authorize("st").code_verifier
    with pytest.raises(SyncError, match="invalid_grant") as refused:
        connector.complete(code, other, {})
    assert refused.value.response_code == 400
    with pytest.raises(SyncError, match="invalid_grant"):  # a code works once
        connector.complete(code, authorization.code_verifier, {})
    assert connector.credentials.access_token is None


def test_a_pkce_app_needs_the_verifier(xero: FakeXero, clock: Clock) -> None:
    with pytest.raises(SyncError, match="no PKCE code verifier"):
        _connector(xero, clock, Credentials()).complete("code-x", None, {})
    assert not xero.server.requests


# -- invoices ---------------------------------------------------------------------------


def test_an_invoice_is_created_then_updated_in_place(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    created = connector.push(_document(), None)
    assert created.response_code == 200 and created.version is None
    [put] = _requests(xero, "PUT", f"{API}/Invoices")
    assert put.headers["authorization"] == f"Bearer {connector.credentials.access_token}"
    assert put.headers["xero-tenant-id"] == TENANT
    assert put.headers["accept"] == "application/json"
    assert put.query == {"unitdp": ["4"]}
    [record] = put.json()["Invoices"]
    contact_id = next(iter(xero.org().contacts))
    assert {k: v for k, v in record.items() if k != "LineItems"} == {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": "ML-2026-0042",
        "Reference": "inv_01JEX7Q2M9",
        "CurrencyCode": "NZD",
        "Date": "2026-12-01",  # the customer's day in Auckland
        "DueDate": "2026-12-21",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
    }
    stored = xero.org().records["Invoices"][created.id]
    assert stored["Total"] == Decimal("121.24")  # our total, to the cent

    changed = _invoice(dueAt="2026-12-27T23:30:00Z")
    updated = connector.push(_document(changed), External(created.id))
    assert updated.id == created.id
    [post] = _requests(xero, "POST", f"{API}/Invoices/{created.id}")
    assert post.json()["Invoices"][0]["DueDate"] == "2026-12-28"
    assert len(xero.org().records["Invoices"]) == 1
    assert xero.org().records["Invoices"][created.id]["DueDate"] == "2026-12-28"
    assert put.headers["idempotency-key"] != post.headers["idempotency-key"]


def test_amounts_are_exact_json_numbers(xero: FakeXero, clock: Clock) -> None:
    body = _invoice()
    body["lines"].append(
        _line("il_4", "USAGE_FEE", "Events", "1000000", "0.000125", "125.00", "18.75")
    )
    body.update(subtotal="240.43", taxTotal="34.56", total="264.99", amountDue="264.99")
    pushed = _connector(xero, clock).push(_document(body), None)
    [put] = _requests(xero, "PUT", f"{API}/Invoices")
    assert b'"Quantity":1234.5,"UnitAmount":0.0125' in put.body
    assert b'"TaxAmount":0.81' in put.body and b"0.8100000" not in put.body
    lines = put.json()["Invoices"][0]["LineItems"]
    assert [(ln["Quantity"], ln["UnitAmount"], ln["TaxAmount"]) for ln in lines] == [
        (1, 100, Decimal("15.00")),
        (Decimal("1234.5"), Decimal("0.0125"), Decimal("0.81")),
        (1, -10, Decimal("0.00")),
        (1, Decimal("125.00"), Decimal("18.75")),  # 6 decimals of unit price: 1 x amount
    ]
    assert lines[3]["Description"] == "Events (1000000 x 0.000125)"
    assert all(ln["AccountCode"] == "200" for ln in lines)
    assert xero.org().records["Invoices"][pushed.id]["Total"] == Decimal("264.99")


def test_credit_lines_are_left_to_the_credit_note(xero: FakeXero, clock: Clock) -> None:
    body = _invoice(creditTotal="5.00", amountDue="116.24")
    body["lines"].append(_line("il_5", "CREDIT", "Credit note CN-1", "1", "-5", "-5.00", "0"))
    pushed = _connector(xero, clock, taxType="OUTPUT2").push(_document(body), None)
    stored = xero.org().records["Invoices"][pushed.id]
    assert len(stored["LineItems"]) == 3 and stored["Total"] == Decimal("121.24")
    assert {ln["TaxType"] for ln in stored["LineItems"]} == {"OUTPUT2"}


def test_a_lost_create_answer_does_not_make_a_second_invoice(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    connector.push(_document(_invoice(id="inv_earlier", number="ML-2026-0041")), None)
    xero.lose_answer_to("PUT", f"{API}/Invoices", Response(504, b"Gateway Timeout"))
    with pytest.raises(SyncError) as lost:
        connector.push(_document(), None)
    assert lost.value.response_code == 504
    [invoice_id] = [k for k, v in xero.org().records["Invoices"].items()
                    if v["Reference"] == "inv_01JEX7Q2M9"]  # fmt: skip
    again = connector.push(_document(), None)  # the engine's retry: still no External
    assert again.id == invoice_id and len(xero.org().records["Invoices"]) == 2
    assert xero.writes()[-1].method == "POST"  # found by its Reference, updated


def test_an_identical_retry_is_replayed_from_the_idempotency_key(
    xero: FakeXero, clock: Clock
) -> None:
    connector = _connector(xero, clock)
    created = connector.push(_document(), None)
    changed = _document(_invoice(dueAt="2026-12-27T23:30:00Z"))
    xero.server.lose_answers(Response(502, b"Bad Gateway"))
    with pytest.raises(SyncError):
        connector.push(changed, External(created.id))
    applied = len(xero.applied)
    again = connector.push(changed, External(created.id))
    assert again.id == created.id
    assert len(xero.applied) == applied  # answered from memory, not processed twice
    first, second = _requests(xero, "POST", f"{API}/Invoices/{created.id}")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.headers["idempotency-key"].startswith("meterline-inv_01JEX7Q2M9-")
    connector.push(_document(_invoice(dueAt="2026-12-29T23:30:00Z")), External(created.id))
    assert len(xero.applied) == applied + 1  # a change is a new request: a new key


# -- contacts ---------------------------------------------------------------------------


def _contact(xero: FakeXero, contact_id: str, **fields: Any) -> None:
    xero.org().contacts[contact_id] = {"ContactID": contact_id, "ContactStatus": "ACTIVE",
                                       **fields}  # fmt: skip


def test_the_contact_is_found_by_its_contact_number(xero: FakeXero, clock: Clock) -> None:
    _contact(xero, "c-by-name", Name="Acme Widgets Ltd")
    _contact(xero, "c-by-number", Name="ACME (old name)", ContactNumber="acme-nz-001")
    pushed = _connector(xero, clock).push(_document(), None)
    assert xero.org().records["Invoices"][pushed.id]["Contact"] == {"ContactID": "c-by-number"}
    [lookup] = _requests(xero, "GET", f"{API}/Contacts")
    assert lookup.query == {"where": ['ContactNumber=="acme-nz-001"']}
    assert not _requests(xero, "PUT", f"{API}/Contacts")


def test_else_the_contact_of_the_same_name(xero: FakeXero, clock: Clock) -> None:
    _contact(xero, "c-by-name", Name="Acme Widgets Ltd")
    pushed = _connector(xero, clock).push(_document(), None)
    assert xero.org().records["Invoices"][pushed.id]["Contact"] == {"ContactID": "c-by-name"}
    assert [r.query["where"][0] for r in _requests(xero, "GET", f"{API}/Contacts")] == [
        'ContactNumber=="acme-nz-001"',
        'Name=="Acme Widgets Ltd"',
    ]


def test_else_a_new_contact_once(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    connector.push(_document(), None)
    connector.push(_credit_note(), None)
    [put] = _requests(xero, "PUT", f"{API}/Contacts")
    assert put.json() == {
        "Contacts": [
            {
                "Name": "Acme Widgets Ltd",
                "ContactNumber": "acme-nz-001",
                "IsCustomer": True,
                "EmailAddress": "accounts@acme.example",
                "TaxNumber": "123-456-789",
                "DefaultCurrency": "NZD",
                "Addresses": [
                    {
                        "AddressType": "POBOX",
                        "AddressLine1": "12 Queen Street",
                        "City": "Auckland",
                        "PostalCode": "1010",
                        "Country": "NZ",
                    }
                ],
            }
        ]
    }
    assert len(_requests(xero, "GET", f"{API}/Contacts")) == 2  # looked up once per instance
    _connector(xero, clock).push(_document(), None)  # another instance finds it by number
    assert len(xero.org().contacts) == 1


def test_a_quote_in_a_name_is_escaped_in_the_filter(xero: FakeXero, clock: Clock) -> None:
    customer = {**CUSTOMER, "name": 'The "Best" Co', "externalId": 'x"1'}
    _contact(xero, "c-quoted", Name='The "Best" Co')
    document = Document("invoice", "inv_q", "ten_1", _invoice(id="inv_q"), customer)
    pushed = _connector(xero, clock).push(document, None)
    assert xero.org().records["Invoices"][pushed.id]["Contact"] == {"ContactID": "c-quoted"}
    assert _requests(xero, "GET", f"{API}/Contacts")[0].query["where"] == [r'ContactNumber=="x\"1"']


# -- credit notes -----------------------------------------------------------------------


def test_a_credit_note_becomes_an_accreccredit_note(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    created = connector.push(_credit_note(), None)
    [put] = _requests(xero, "PUT", f"{API}/CreditNotes")
    [record] = put.json()["CreditNotes"]
    assert record == {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": next(iter(xero.org().contacts))},
        "CreditNoteNumber": "CN-000007",
        "Reference": "cn_01JF0A",
        "CurrencyCode": "NZD",
        "Date": "2026-12-02",
        "LineAmountTypes": "Inclusive",
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Credit for invoice ML-2026-0042 (order change)",
                "Quantity": 1,
                "UnitAmount": Decimal("23.45"),
                "AccountCode": "200",
            }
        ],
    }
    assert b'"UnitAmount":23.45' in put.body
    assert xero.org().records["CreditNotes"][created.id]["Total"] == Decimal("23.45")
    again = connector.push(_credit_note(), External(created.id))
    assert again.id == created.id and len(xero.org().records["CreditNotes"]) == 1
    assert _requests(xero, "POST", f"{API}/CreditNotes/{created.id}")
    assert not xero.org().records["Invoices"]


# -- tokens -----------------------------------------------------------------------------


def test_a_token_refused_as_expired_is_refreshed_and_the_call_repeated_once(
    xero: FakeXero, clock: Clock
) -> None:
    access, refresh = xero.issue()
    credentials = Credentials(access, refresh, None, TENANT)  # its expiry unknown to us
    connector = _connector(xero, clock, credentials)
    clock.advance(timedelta(minutes=31))
    pushed = connector.push(_document(), None)
    assert pushed.id in xero.org().records["Invoices"]
    assert credentials.changed and credentials.access_token != access
    assert credentials.refresh_token != refresh  # rotated
    assert credentials.expires_at == clock.now() + timedelta(minutes=30)
    assert [r.path for r in xero.server.requests[:3]] == [
        f"{API}/Contacts",
        TOKEN,
        f"{API}/Contacts",
    ]
    assert len(_requests(xero, "POST", TOKEN)) == 1
    form = {k: v[0] for k, v in _requests(xero, "POST", TOKEN)[0].form().items()}
    assert form == {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID}


def test_a_token_known_to_be_expired_is_refreshed_before_the_call(
    xero: FakeXero, clock: Clock
) -> None:
    connector = _connector(xero, clock)
    clock.advance(timedelta(minutes=30))
    assert connector.test() == 200
    assert [r.path for r in xero.server.requests] == [TOKEN, f"{API}/Organisation"]
    assert connector.credentials.changed


def test_the_rotated_refresh_token_replaces_the_old_one(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    old = connector.credentials.refresh_token
    clock.advance(timedelta(minutes=31))
    connector.test()
    clock.advance(timedelta(minutes=31))
    assert connector.test() == 200  # the new refresh token works
    stale = _connector(xero, clock, Credentials("gone", old, clock.now(), TENANT))
    with pytest.raises(SyncError, match="invalid_grant") as refused:  # past Xero's grace period
        stale.test()
    assert refused.value.response_code == 400


def test_a_second_401_is_not_retried_again(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    xero.refuse_tokens = True
    with pytest.raises(SyncError, match="AuthenticationUnsuccessful") as refused:
        connector.test()
    assert refused.value.response_code == 401
    organisation = f"{API}/Organisation"
    assert [r.path for r in xero.server.requests] == [organisation, TOKEN, organisation]


# -- failures ---------------------------------------------------------------------------


def test_a_validation_error_carries_xeros_message(xero: FakeXero, clock: Clock) -> None:
    with pytest.raises(SyncError) as refused:
        _connector(xero, clock, accountCode="999").push(_document(), None)
    assert refused.value.response_code == 400
    assert "Account code '999' is not a valid code for this document." in refused.value.message
    assert not xero.org().records["Invoices"]


def test_a_duplicate_number_is_refused_with_xeros_message(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    connector.push(_document(), None)
    with pytest.raises(SyncError, match="Invoice # must be unique") as refused:
        connector.push(_document(_invoice(id="inv_other")), None)
    assert refused.value.response_code == 400


def test_rate_limits_and_server_errors_are_sync_errors(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock)
    xero.server.script(
        Response(429, b"", {"Retry-After": "12", "X-Rate-Limit-Problem": "minute"}),
        Response(
            500,
            {
                "ErrorNumber": 500,
                "Type": "UnknownErrorException",
                "Message": "An error occurred in Xero.",
            },
        ),
    )
    with pytest.raises(SyncError) as limited:
        connector.push(_document(), None)
    assert limited.value.response_code == 429
    assert limited.value.message == "HTTP 429: Xero's minute limit was reached; retry after 12 s"
    with pytest.raises(SyncError) as failed:
        connector.push(_document(), None)
    assert (failed.value.response_code, failed.value.message) == (
        500,
        "HTTP 500: An error occurred in Xero.",
    )
    assert not xero.writes()


def test_no_answer_in_time_is_a_sync_error_without_status(xero: FakeXero, clock: Clock) -> None:
    connector = _connector(xero, clock, timeout=0.2)
    xero.server.script(Response(200, {"Organisations": []}, delay=0.5))
    with pytest.raises(SyncError, match=r"did not answer in 0\.2 s") as slow:
        connector.test()
    assert slow.value.response_code is None


def test_an_unconnected_tenant_fails_the_test(xero: FakeXero, clock: Clock) -> None:
    access, refresh = xero.issue([TENANT])
    connector = _connector(xero, clock, Credentials(access, refresh, None, OTHER_TENANT))
    with pytest.raises(SyncError, match="AuthenticationUnsuccessful") as refused:
        connector.test()
    assert refused.value.response_code == 403


def test_without_tokens_nothing_is_sent(xero: FakeXero, clock: Clock) -> None:
    with pytest.raises(SyncError, match="not authorized"):
        _connector(xero, clock, Credentials()).push(_document(), None)
    assert not xero.server.requests


# -- the registry -----------------------------------------------------------------------


def test_the_registry_builds_it_and_seals_the_secret(xero: FakeXero, clock: Clock) -> None:
    found = adapter("xero")
    assert found.oauth and found.secrets == frozenset({"clientSecret"})
    context = Context(now=clock.now, redirect_uri=REDIRECT_URI)
    connector = found.connector({"clientId": CLIENT_ID}, Credentials(), context)
    assert isinstance(connector, XeroConnector)
    config = connector.config
    assert (config.base_url, config.token_url, config.account_code) == (
        "https://api.xero.com",
        "https://identity.xero.com/connect/token",
        "200",
    )
    assert connector.authorize("s").url.startswith(
        "https://login.xero.com/identity/connect/authorize?response_type=code&"
    )
    connector.close()
    with pytest.raises(InvalidInput, match=r"config\.realmId: unknown key"):
        found.connector({"clientId": CLIENT_ID, "realmId": "1"}, Credentials(), context)
