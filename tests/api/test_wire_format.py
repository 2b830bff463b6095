"""The JSON bytes of responses, exactly: decimals as strings at the scale they are shown,
nulls, camelCase, RFC 3339 'Z' times; and the typed boundary refusing bad input by name."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoicing.catalog import get_customer
from tests.api import NOW, LedgerRuntime, api_client
from tests.ledger import add_draft

pytestmark = pytest.mark.ledger

PLAN = {
    "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
    "baseFee": 12.50, "minimumCommitment": "100.000", "trialDays": 3,
    "charges": [{
        "metric": "api_calls", "model": "graduated", "includedQuantity": "10.50",
        "hardCap": 1e3, "rollover": {"cap": "5"},
        "properties": {"tiers": [
            {"upTo": 1000, "unitAmount": "0.001234567890", "flatAmount": 0},
            {"upTo": None, "unitAmount": 0.002},
        ]},
    }],
    "fixedCharges": [{"name": "Setup", "amount": "99.90", "type": "SETUP_FEE"}],
}  # fmt: skip


@pytest.fixture
def api(ledger_url: str) -> Iterator[tuple[TestClient, LedgerRuntime]]:
    with api_client(ledger_url) as pair:
        yield pair


def _created(client: TestClient, url: str, body: dict[str, Any]) -> tuple[bytes, Any]:
    response = client.post(url, json=body)
    assert response.status_code == 201, response.text
    return response.content, response.json()


def _validation(response: Any, *needles: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    text = error["message"] + " " + str(error["details"] or "")
    for needle in needles:
        assert needle in text, (needle, text)


def test_catalog_bytes(api: tuple[TestClient, LedgerRuntime]) -> None:
    client, _ = api
    raw, metric = _created(
        client,
        "/metrics",
        {"code": "storage", "name": "Storage ü", "aggregation": "sum", "field": "gb",
         "filters": {"region": ["eu"]}, "groupBy": ["region"]},
    )  # fmt: skip
    assert (
        raw
        == (
            f'{{"id":"{metric["id"]}","code":"storage","name":"Storage ü","description":null,'
            '"aggregation":"sum","field":"gb","filters":{"region":["eu"]},"groupBy":["region"],'
            '"roundingFunction":null,"roundingPrecision":null,'
            f'"createdAt":"{metric["createdAt"]}"}}'
        ).encode()
    )
    assert metric["createdAt"].endswith("Z")
    _created(client, "/metrics", {"code": "api_calls", "name": "API", "aggregation": "count"})

    raw, plan = _created(client, "/plans", PLAN)
    [charge], [fixed] = plan["charges"], plan["fixedCharges"]
    assert (
        raw
        == (
            f'{{"id":"{plan["id"]}","code":"pro","name":"Pro","description":null,"currency":"USD",'
            '"interval":"monthly","baseFee":"12.5","payInAdvance":false,"trialDays":3,'
            '"minimumCommitment":"100","maximumSpend":null,'
            f'"charges":[{{"id":"{charge["id"]}","metric":"api_calls","model":"graduated",'
            '"properties":{"tiers":[{"upTo":"1000","unitAmount":"0.00123456789","flatAmount":"0"},'
            '{"upTo":null,"unitAmount":"0.002","flatAmount":"0"}]},"includedQuantity":"10.50",'
            '"hardCap":"1000.0","rollover":{"cap":"5","expiryPeriods":null},"payInAdvance":false,'
            '"filters":{}}],'
            f'"fixedCharges":[{{"id":"{fixed["id"]}","name":"Setup","amount":"99.90","units":"1",'
            '"oneTime":true,"payInAdvance":true,"prorated":true,"addOnCode":null}],'
            '"usageThresholds":[],'
            '"entitlements":[],"archivedAt":null,'
            f'"createdAt":"{plan["createdAt"]}"}}'
        ).encode()
    )
    assert client.get("/plans/pro").content == raw
    listed = client.get("/plans")
    assert listed.content == b'{"data":[' + raw + b'],"nextCursor":null}'


def test_customer_wallet_and_invoice_bytes(api: tuple[TestClient, LedgerRuntime]) -> None:
    client, runtime = api
    raw, customer = _created(
        client, "/customers", {"externalId": "acme", "name": "Acme", "currency": "usd",
                               "country": "de"}
    )  # fmt: skip
    assert (
        raw
        == (
            f'{{"id":"{customer["id"]}","externalId":"acme","name":"Acme","email":null,'
            '"currency":"USD","country":"DE","region":null,"taxExempt":false,"timezone":"UTC",'
            f'"invoiceGraceDays":0,"netPaymentTermDays":null,"paymentProvider":null,'
            f'"paymentProviderCustomerId":null,"paymentMethod":null,'
            f'"createdAt":"{customer["createdAt"]}",'
            '"addressLine1":null,"addressLine2":null,"city":null,"postalCode":null,"taxId":null,'
            '"metadata":{},"billingEntityCode":null,"invoiceCustomSectionCodes":[],'
            '"skipInvoiceCustomSections":false}'
        ).encode()
    )

    raw, wallet = _created(
        client, "/wallets", {"customerId": "acme", "credits": "20.5",
                             "scope": {"feeTypes": ["charge"]}}
    )  # fmt: skip
    assert (
        raw
        == (
            f'{{"id":"{wallet["id"]}","customerId":"acme","name":null,"currency":"USD",'
            '"balance":"20.50","credits":"20.50","priority":50,"expiresAt":null,'
            '"scope":{"metrics":[],"feeTypes":["CHARGE"]},"status":"active",'
            f'"createdAt":"{wallet["createdAt"]}","rateAmount":"1","terminatedAt":null,'
            '"recurringTransactionRules":[]}'
        ).encode()
    )
    raw, topped = _created(client, f"/wallets/{wallet['id']}/transactions", {"credits": 1})
    tx = topped["transaction"]
    assert raw.startswith(
        f'{{"transaction":{{"id":"{tx["id"]}","walletId":"{wallet["id"]}","type":"top_up",'
        '"amount":"1.00","remaining":"1.00","invoiceId":null,"fundedBy":[],'.encode()
    )
    assert topped["wallet"]["balance"] == "21.50"

    tenant = client.headers["X-Tenant-Id"]
    with runtime.session() as session:
        draft = add_draft(session, tenant, get_customer(session, tenant, "acme").id, "10.005")
        line = draft.lines[0]
        line.quantity, line.unit_amount = Decimal("1234.500000"), Decimal("0.0081037277")
        line.tax_rate = Decimal("19.000")
        invoice_id, line_id = draft.id, line.id
    response = client.get(f"/invoices/{invoice_id}")
    body = response.json()
    assert (
        response.content
        == (
            f'{{"id":"{invoice_id}","number":null,"type":"subscription","customerId":"acme",'
            '"subscriptionId":null,'
            '"billRunId":null,"status":"DRAFT","currency":"USD",'
            '"periodStart":"2026-10-01T00:00:00Z","periodEnd":"2026-10-02T00:00:00Z",'
            '"issuedAt":null,"dueAt":null,"subtotal":"10.01","discountTotal":"0.00",'
            '"taxTotal":"0.00","creditTotal":"0.00","total":"10.01","amountPaid":"0.00",'
            f'"amountDue":"10.01","createdAt":"{body["createdAt"]}",'
            f'"lines":[{{"id":"{line_id}","type":"CHARGE","description":"Base fee","metric":null,'
            '"group":{},"chargeId":null,"quantity":"1234.5","unitAmount":"0.0081037277",'
            '"amount":"10.01","discountAmount":"0.00","taxRate":"19","taxAmount":"0.00",'
            '"periodStart":null,"periodEnd":null,"adjusted":false}],"regeneratedFrom":null,'
            '"billingEntityCode":null,"customSections":[]}'
        ).encode()
    )

    # "now" is the runtime's clock: the invoice is issued at it, due 30 days later.
    finalized = client.post(f"/invoices/{invoice_id}/finalize").json()
    assert (finalized["issuedAt"], finalized["dueAt"]) == (
        "2026-11-02T09:30:00Z",
        "2026-12-02T09:30:00Z",
    )
    assert NOW.isoformat().startswith("2026-11-02T09:30")


def test_wrong_state_is_409_even_with_a_malformed_amount(
    api: tuple[TestClient, LedgerRuntime],
) -> None:
    client, runtime = api
    _created(client, "/customers", {"externalId": "acme", "name": "Acme", "currency": "USD"})
    tenant = client.headers["X-Tenant-Id"]
    with runtime.session() as session:
        invoice_id = add_draft(session, tenant, get_customer(session, tenant, "acme").id).id
    for url, body in (
        (f"/invoices/{invoice_id}/payments", {"amount": "abc"}),
        (f"/invoices/{invoice_id}/payments", {"amount": True}),
    ):
        response = client.post(url, json=body)
        assert response.status_code == 409, response.text
    client.post(f"/invoices/{invoice_id}/finalize")
    _validation(client.post(f"/invoices/{invoice_id}/payments", json={"amount": "abc"}), "amount")
    response = client.post(f"/invoices/{invoice_id}/tax-override", json={"taxTotal": "x"})
    assert response.status_code == 409, response.text


def test_bad_values_are_422_naming_the_field(api: tuple[TestClient, LedgerRuntime]) -> None:
    client, _ = api
    _created(client, "/metrics", {"code": "api_calls", "name": "API", "aggregation": "count"})
    _created(client, "/customers", {"externalId": "acme", "name": "Acme", "currency": "USD"})
    charge = {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "1"}}
    plan = {"code": "p", "name": "P", "currency": "USD", "interval": "monthly"}
    cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        ("/plans", plan | {"baseFee": "ten"}, ("baseFee", "'ten'")),
        ("/plans", plan | {"baseFee": True}, ("baseFee", "boolean")),
        ("/plans", plan | {"maximumSpend": "NaN"}, ("maximumSpend", "finite")),
        ("/plans", plan | {"charges": [charge | {"includedQuantity": "x"}]},
         ("charges[0].includedQuantity",)),
        ("/plans", plan | {"charges": [charge | {"hardCap": "-1"}]},
         ("charges[0].hardCap must not be negative",)),
        ("/plans", plan | {"charges": [charge | {"rollover": {"expiryPeriods": 0}}]},
         ("charges[0].rollover.expiryPeriods",)),
        ("/plans", plan | {"fixedCharges": [{"name": "Setup"}]}, ("fixedCharges[0].amount",)),
        ("/plans", plan | {"charges": [charge | {"metric": "nope"}]},
         ("charges[0].metric", "nope")),
        ("/taxes", {"code": "vat", "name": "VAT", "rate": "abc"}, ("rate", "'abc'")),
        ("/taxes", {"code": "vat", "name": "VAT", "rate": "101"}, ("rate",)),
        ("/coupons", {"code": "c", "type": "percentage", "percentage": [1]}, ("percentage",)),
        ("/wallets", {"customerId": "acme", "credits": "1.001"}, ("credits", "decimals")),
        ("/wallets", {"customerId": "acme", "credits": {}}, ("credits",)),
    ]  # fmt: skip
    for url, body, needles in cases:
        _validation(client.post(url, json=body), *needles)
    # Nothing was created by the refused requests.
    assert client.get("/plans").json()["data"] == []
    assert client.get("/taxes").json()["data"] == []


def test_patching_a_customer_checks_what_creating_checks(
    api: tuple[TestClient, LedgerRuntime],
) -> None:
    client, _ = api
    _created(
        client,
        "/customers",
        {"externalId": "acme", "name": "Acme", "currency": "USD", "email": "a@acme.test"},
    )
    _validation(client.patch("/customers/acme", json={"country": "germany"}), "country")
    _validation(client.patch("/customers/acme", json={"currency": "XYZ"}), "currency", "XYZ")
    _validation(client.patch("/customers/acme", json={"invoiceGraceDays": -1}), "invoiceGraceDays")
    unchanged = client.get("/customers/acme").json()
    assert (unchanged["country"], unchanged["currency"]) == (None, "USD")

    patched = client.patch("/customers/acme", json={"country": "fr", "currency": "eur"}).json()
    assert (patched["country"], patched["currency"], patched["email"]) == (
        "FR",
        "EUR",
        "a@acme.test",
    )
    cleared = client.patch("/customers/acme", json={"email": None, "name": None}).json()
    assert (cleared["email"], cleared["name"], cleared["country"]) == (None, "Acme", "FR")


def test_terminating_now_uses_the_runtime_clock(api: tuple[TestClient, LedgerRuntime]) -> None:
    client, _ = api
    _created(client, "/metrics", {"code": "api_calls", "name": "API", "aggregation": "count"})
    _created(client, "/plans", {"code": "p", "name": "P", "currency": "USD", "interval": "monthly"})
    _created(client, "/customers", {"externalId": "acme", "name": "Acme", "currency": "USD"})
    _, sub = _created(
        client, "/subscriptions", {"customerId": "acme", "planCode": "p", "startDate": "2026-10-01"}
    )
    ended = client.post(f"/subscriptions/{sub['id']}/terminate").json()
    assert (ended["terminatedAt"], ended["endDate"]) == (
        "2026-11-02T09:30:00Z",
        "2026-11-02T09:30:00Z",
    )


def test_customer_net_payment_terms_set_the_due_date(
    api: tuple[TestClient, LedgerRuntime],
) -> None:
    client, runtime = api
    _, customer = _created(
        client,
        "/customers",
        {"externalId": "acme", "name": "Acme", "currency": "USD", "netPaymentTermDays": 14},
    )
    assert customer["netPaymentTermDays"] == 14
    tenant = client.headers["X-Tenant-Id"]
    with runtime.session() as session:
        first = add_draft(session, tenant, get_customer(session, tenant, "acme").id).id
    finalized = client.post(f"/invoices/{first}/finalize").json()
    assert (finalized["issuedAt"], finalized["dueAt"]) == (
        "2026-11-02T09:30:00Z",
        "2026-11-16T09:30:00Z",
    )
    # Null clears the customer's terms: the default (30 days) applies again.
    patched = client.patch("/customers/acme", json={"netPaymentTermDays": None})
    assert patched.status_code == 200, patched.text
    assert patched.json()["netPaymentTermDays"] is None
    with runtime.session() as session:
        second = add_draft(session, tenant, get_customer(session, tenant, "acme").id).id
    assert client.post(f"/invoices/{second}/finalize").json()["dueAt"] == "2026-12-02T09:30:00Z"
    _validation(
        client.patch("/customers/acme", json={"netPaymentTermDays": -1}), "netPaymentTermDays"
    )


def test_a_customer_field_the_contract_does_not_know_is_422(
    api: tuple[TestClient, LedgerRuntime],
) -> None:
    client, _ = api
    body = {"externalId": "acme", "name": "Acme", "currency": "USD", "vatNumber": "DE1"}
    _validation(client.post("/customers", json=body), "vatNumber")
    _created(client, "/customers", {"externalId": "acme", "name": "Acme", "currency": "USD"})
    _validation(client.patch("/customers/acme", json={"nickname": "A"}), "nickname")
    assert client.get("/customers/acme").json()["name"] == "Acme"
