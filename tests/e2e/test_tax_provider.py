"""Bill runs taxed by Avalara AvaTax, end to end: HTTP → Kafka → Faust → ClickHouse →
rating → the AvaTax adapter → invoices.

The runtime of this module is configured as in production, with
`tax_provider="avalara"` and `tax_provider_config` pointing at the fake AvaTax of
tests/tax (a real HTTP server on 127.0.0.1 that checks the CreateTransactionModel and
answers with per-jurisdiction rounding). It has its own API server, SQLite ledger,
topics and consumer group, on the session's Kafka broker and chDB path (one per process).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.stack import Stack, TenantClient, serving, stack_settings
from tests.tax import LoopbackServer, Request, Response
from tests.tax.test_avalara import ACCOUNT, COMPANY, CREATE, LICENSE, avatax

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

Json = dict[str, Any]
OCTOBER = ("2026-10-01", "2026-10-31")


class FakeAvaTax:
    """tests/tax's AvaTax, plus an outage for chosen customer codes (HTTP 500)."""

    def __init__(self) -> None:
        self.down_for: set[str] = set()

    def __call__(self, request: Request) -> Response:
        if request.path == CREATE and self.down_for:
            body = request.json()
            if isinstance(body, dict) and body.get("customerCode") in self.down_for:
                error = {"code": "ServerError", "message": "AvaTax is down for maintenance"}
                return Response(500, {"error": error})
        return avatax(request)


@pytest.fixture(scope="module")
def fake_avatax() -> Iterator[tuple[LoopbackServer, FakeAvaTax]]:
    app = FakeAvaTax()
    with LoopbackServer(app).running() as server:
        yield server, app


@pytest.fixture(scope="module")
def tax_stack(
    kafka_bootstrap: str,
    chdb_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    fake_avatax: tuple[LoopbackServer, FakeAvaTax],
) -> Iterator[Stack]:
    from meterline.runtime import Runtime

    server, _ = fake_avatax
    data_dir = tmp_path_factory.mktemp("tax-stack")
    settings = stack_settings(
        data_dir,
        kafka_bootstrap,
        chdb_dir,
        label="tax",
        tax_provider="avalara",
        tax_provider_config={
            "baseUrl": server.url,
            "accountId": ACCOUNT,
            "licenseKey": LICENSE,
            "companyCode": COMPANY,
            "machineName": "meterline-e2e",
            "timeoutSeconds": 5,
            # No exemption certificates in this account: identical rate inputs share a
            # quote across customers.
            "customerSpecific": False,
        },
    )
    runtime = Runtime.open(settings)
    assert runtime.tax.name == "avalara"
    with serving(runtime, data_dir) as running:
        yield running


# -- helpers ---------------------------------------------------------------------------


def catalog(c: TenantClient) -> None:
    """Pro: 33.33 a month plus 0.01 per API call. The local table says 20 % in the US,
    which must not be used: the provider decides."""
    c.ok("POST", "/metrics", json={"code": "api_calls", "name": "API calls", "aggregation": "sum"})
    c.ok(
        "POST",
        "/plans",
        json={
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "33.33",
            "charges": [
                {"metric": "api_calls", "model": "per_unit", "properties": {"unitAmount": "0.01"}}
            ],
        },
    )
    c.ok("POST", "/taxes", json={"code": "us", "name": "US flat", "rate": "20", "country": "US"})


def subscribe(c: TenantClient, external_id: str, country: str, region: str | None) -> None:
    body: Json = {"externalId": external_id, "name": external_id, "currency": "USD"}
    body["country"] = country
    if region:
        body["region"] = region
    c.ok("POST", "/customers", json=body)
    c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": external_id, "planCode": "pro", "startDate": "2026-10-01"},
    )


def calls(c: TenantClient, external_id: str, count: int, value: int, stored: int) -> None:
    events = [
        {
            "id": f"{external_id}-{i}",
            "customerId": external_id,
            "metric": "api_calls",
            "value": value,
            "timestamp": "2026-10-15T12:00:00Z",
        }
        for i in range(count)
    ]
    assert c.ok("POST", "/events", json={"events": events})["accepted"] == count
    c.wait_events(stored)


def invoice_of(c: TenantClient, external_id: str) -> Json:
    [summary] = c.ok("GET", "/invoices", params={"customerId": external_id})["data"]
    invoice: Json = c.ok("GET", f"/invoices/{summary['id']}")
    return invoice


def taxes(invoice: Json) -> list[tuple[str, str, str, str]]:
    return [(ln["type"], ln["amount"], ln["taxRate"], ln["taxAmount"]) for ln in invoice["lines"]]


def sent_to(server: LoopbackServer, customer: str) -> list[Any]:
    """The CreateTransactionModels sent for a customer code."""
    bodies = [r.json() for r in server.requests if r.path == CREATE]
    return [b for b in bodies if b["customerCode"] == customer]


# -- scenarios -------------------------------------------------------------------------


def test_avatax_taxes_each_line_and_identical_inputs_are_cached(
    tax_stack: Stack, fake_avatax: tuple[LoopbackServer, FakeAvaTax]
) -> None:
    server, _ = fake_avatax
    c = tax_stack.tenant("avatax")
    catalog(c)
    subscribe(c, "sf-1", "US", "CA")
    subscribe(c, "sf-coupon", "US", "CA")  # stateful: settled with its coupon's effects
    c.ok(
        "POST",
        "/coupons",
        json={"code": "TEN", "type": "fixed", "amount": "10", "currency": "USD"},
    )
    c.ok("POST", "/customers/sf-coupon/coupons", json={"couponCode": "TEN"})
    calls(c, "sf-1", 10, 1000, stored=10)  # 10 000 calls × 0.01 = 100.00
    calls(c, "sf-coupon", 10, 1000, stored=20)
    before = server.count(CREATE)

    run = c.bill(*OCTOBER)

    assert (run["status"], run["failed"], run["invoicesCreated"]) == ("completed", 0, 2), run
    assert server.count(CREATE) == before + 2  # one SalesOrder per distinct set of inputs
    # San Francisco: 6 % state + 0.25 % county + 1 % district, each rounded to the cent
    # by AvaTax. 33.33 → 2.00 + 0.08 + 0.33 = 2.41 (7.25 % of 33.33 would be 2.42, and
    # the local table's 20 % would be 6.67); 100.00 → 6.00 + 0.25 + 1.00 = 7.25.
    sf1 = invoice_of(c, "sf-1")
    assert taxes(sf1) == [
        ("CHARGE", "33.33", "7.25", "2.41"),
        ("USAGE_FEE", "100.00", "7.25", "7.25"),
    ]
    assert (sf1["subtotal"], sf1["taxTotal"], sf1["total"]) == ("133.33", "9.66", "142.99")
    # The coupon takes 10 off the base fee first: AvaTax is asked about 23.33, and
    # 23.33 → 1.40 + 0.06 + 0.23 = 1.69.
    coupon = invoice_of(c, "sf-coupon")
    assert taxes(coupon) == [
        ("CHARGE", "33.33", "7.25", "1.69"),
        ("USAGE_FEE", "100.00", "7.25", "7.25"),
        ("DISCOUNT", "-10.00", "0", "0.00"),
    ]
    assert (coupon["discountTotal"], coupon["taxTotal"], coupon["total"]) == (
        "10.00",
        "8.94",
        "132.27",
    )
    # What AvaTax was sent: a SalesOrder dated the day the period ends, exact amounts
    # after discounts, the customer's location.
    [body] = sent_to(server, "sf-coupon")
    assert (body["type"], body["date"], body["currencyCode"]) == ("SalesOrder", "2026-11-01", "USD")
    assert body["addresses"] == {"singleLocation": {"country": "US", "region": "CA"}}
    assert [(line["number"], line["amount"]) for line in body["lines"]] == [
        ("1", Decimal("23.33")),
        ("2", Decimal("100.00")),
    ]
    assert [line.get("itemCode") for line in body["lines"]] == [None, "api_calls"]

    # Refreshing a draft with unchanged inputs is answered from the cache.
    again = c.ok("POST", f"/invoices/{sf1['id']}/refresh")
    assert taxes(again) == taxes(sf1)
    assert server.count(CREATE) == before + 2

    # Another customer with identical rate inputs, billed by a later run: same taxes,
    # served from the 24 h cache without asking AvaTax.
    subscribe(c, "sf-2", "US", "CA")
    calls(c, "sf-2", 10, 1000, stored=30)
    run = c.bill(*OCTOBER)
    assert (run["failed"], run["invoicesCreated"]) == (0, 1), run
    assert taxes(invoice_of(c, "sf-2")) == taxes(sf1)
    assert server.count(CREATE) == before + 2
    assert sent_to(server, "sf-2") == []
    assert tax_stack.runtime.tax.cache.hits >= 2


def test_avatax_outage_fails_only_those_invoices(
    tax_stack: Stack, fake_avatax: tuple[LoopbackServer, FakeAvaTax]
) -> None:
    server, fake = fake_avatax
    c = tax_stack.tenant("avatax-down")
    catalog(c)
    subscribe(c, "ok-co", "US", "CA")
    # In Germany, so that ok-co's cached quote cannot answer for them.
    subscribe(c, "down-batch", "DE", None)
    subscribe(c, "down-wallet", "DE", None)  # stateful: its wallet must stay untouched
    wallet = c.ok(
        "POST", "/wallets", json={"customerId": "down-wallet", "currency": "USD", "credits": "50"}
    )
    fake.down_for = {"down-batch", "down-wallet"}
    try:
        run = c.bill(*OCTOBER)
    finally:
        fake.down_for = set()

    assert (run["status"], run["processed"], run["failed"], run["invoicesCreated"]) == (
        "completed",
        3,
        2,
        1,
    ), run
    message = (
        "TaxProviderUnavailable: avalara: HTTP 500 after 3 attempts: "
        "ServerError: AvaTax is down for maintenance"
    )
    failures = sorted(run["failures"], key=lambda f: f["customerId"])
    assert [(f["customerId"], f["code"], f["retryable"], f["error"]) for f in failures] == [
        ("down-batch", "tax_provider_unavailable", True, message),
        ("down-wallet", "tax_provider_unavailable", True, message),
    ]
    assert len(sent_to(server, "down-batch")) == len(sent_to(server, "down-wallet")) == 3
    [only] = c.ok("GET", "/invoices")["data"]
    assert only["customerId"] == "ok-co"
    # No calls: AvaTax taxes 0.00 and reports no jurisdiction rate on it.
    assert taxes(invoice_of(c, "ok-co")) == [
        ("CHARGE", "33.33", "7.25", "2.41"),
        ("USAGE_FEE", "0.00", "0", "0.00"),
    ]
    assert c.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "50.00"

    # AvaTax is back: re-running the period invoices exactly the two that failed.
    run = c.bill(*OCTOBER)
    assert (run["failed"], run["invoicesCreated"]) == (0, 2), run
    # Germany, 19 % standard rate: 33.33 → 6.33.
    assert taxes(invoice_of(c, "down-wallet")) == [
        ("CHARGE", "33.33", "19", "6.33"),
        ("USAGE_FEE", "0.00", "0", "0.00"),
    ]
    assert c.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "10.34"  # paid 39.66

    # A refresh with new inputs while AvaTax is down fails clearly; the draft is kept.
    draft = invoice_of(c, "down-batch")
    calls(c, "down-batch", 1, 100, stored=1)  # 100 calls → 1.00
    fake.down_for = {"down-batch"}
    try:
        response = c.post(f"/invoices/{draft['id']}/refresh")
    finally:
        fake.down_for = set()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "tax_provider_unavailable"
    assert invoice_of(c, "down-batch") == draft
    refreshed = c.ok("POST", f"/invoices/{draft['id']}/refresh")
    assert taxes(refreshed) == [
        ("CHARGE", "33.33", "19", "6.33"),
        ("USAGE_FEE", "1.00", "19", "0.19"),
    ]
