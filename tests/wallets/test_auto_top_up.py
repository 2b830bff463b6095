"""A real bill run paying with a wallet, and the auto top-up rules: thresholds judged
after the run's deductions and by scheduler passes, intervals by passes, one top-up per
crossing or period however often they look (docs/wallets.md)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from invoicing.models import DomainEventRow
from invoicing.wallet_jobs import wallet_pass
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def _catalog(api: ApiClient) -> None:
    api.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "sum"})
    api.ok(
        "POST",
        "/plans",
        json={"code": "basic", "name": "Basic", "currency": "USD", "interval": "monthly",
              "baseFee": "10", "charges": [{"metric": "calls", "model": "per_unit",
                                            "properties": {"unitAmount": "0.5"}}]},
    )  # fmt: skip
    api.customer("acme")
    api.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "basic", "startDate": "2026-09-01T00:00:00Z"},
    )
    api.runtime.usage.add("acme", "calls", datetime(2026, 10, 10, tzinfo=UTC), "30", OCT)


def _bill_october(api: ApiClient) -> dict[str, Any]:
    run = api.ok(
        "POST",
        "/bill-runs",
        json={"periodStart": "2026-10-01T00:00:00Z", "periodEnd": "2026-11-01T00:00:00Z"},
    )
    for _ in range(200):
        status: dict[str, Any] = api.ok("GET", f"/bill-runs/{run['id']}")
        if status["status"] in ("completed", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError("the bill run did not finish")


def _txs(api: ApiClient, wallet_id: str, query: str = "") -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", f"/wallets/{wallet_id}/transactions{query}")["data"]
    return data


def test_a_bill_run_pays_from_the_wallet_and_a_threshold_tops_it_up_once(api):
    _catalog(api)
    wallet = api.ok(
        "POST",
        "/wallets",
        json={"customerId": "acme", "rateAmount": "2", "grantedCredits": "9",
              "recurringTransactionRules": [
                  {"trigger": "threshold", "thresholdCredits": "1", "grantedCredits": "25"}]},
    )  # fmt: skip
    assert (wallet["balance"], wallet["credits"]) == ("18.00", "9.00")

    assert _bill_october(api)["status"] == "completed"
    [invoice] = api.ok("GET", "/invoices?customerId=acme")["data"]
    # 10 base + 30 × 0.5 = 25.00; the wallet pays its 18.00, 7.00 is due.
    assert (invoice["total"], invoice["creditTotal"], invoice["amountDue"]) == (
        "25.00", "18.00", "7.00"
    )  # fmt: skip
    after = api.ok("GET", f"/wallets/{wallet['id']}")
    # Balance 0 credits ≤ 1: the rule granted 25 credits × 2 = 50.00, in the same transaction.
    assert (after["balance"], after["credits"]) == ("50.00", "25.00")
    rule = after["recurringTransactionRules"][0]
    assert rule["armed"] is True  # 25 > 1: the next fall below fires again

    deduction = next(t for t in _txs(api, wallet["id"]) if t["type"] == "deduction")
    initial = next(t for t in _txs(api, wallet["id"]) if t["source"] == "manual")
    auto = next(t for t in _txs(api, wallet["id"]) if t["source"] == "threshold")
    assert (deduction["invoiceId"], deduction["amount"]) == (invoice["id"], "18.00")
    assert deduction["fundedBy"] == [{"transactionId": initial["id"], "amount": "18.00"}]
    assert api.ok("GET", f"/wallet-transactions/{initial['id']}")["funded"] == [
        {"transactionId": deduction["id"], "amount": "18.00"}
    ]
    assert (auto["grant"], auto["amount"], auto["credits"]) == ("granted", "50.00", "25")

    with api.runtime.session() as session:
        depleted = (
            session.execute(
                select(DomainEventRow.data).where(
                    DomainEventRow.tenant_id == api.tenant_id,
                    DomainEventRow.type == "wallet.depleted",
                )
            )
            .scalars()
            .all()
        )
    assert depleted == [
        {"id": wallet["id"], "customerId": "acme", "currency": "USD", "balance": "0.00",
         "credits": "0.00", "status": "active"}
    ]  # fmt: skip

    # A rerun bills nothing and takes nothing; a pass finds nothing to top up.
    assert _bill_october(api)["status"] == "completed"
    assert wallet_pass(api.runtime.sessions, NOV) == []
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "50.00"
    assert len(_txs(api, wallet["id"])) == 3


def test_a_threshold_fires_once_per_crossing_over_passes(api):
    api.customer("acme")
    wallet = api.ok(
        "POST",
        "/wallets",
        json={"customerId": "acme", "grantedCredits": "3",
              "recurringTransactionRules": [
                  {"trigger": "threshold", "thresholdCredits": "5", "grantedCredits": "1"},
                  {"trigger": "threshold", "thresholdCredits": "2", "paidCredits": "10"}]},
    )  # fmt: skip
    sessions = api.runtime.sessions
    # 3 ≤ 5: +1 (4, still ≤ 5: the rule stays disarmed); 3 > 2: the paid rule is armed.
    assert wallet_pass(sessions, NOV) == ["wallets: 1 auto top-ups"]
    assert wallet_pass(sessions, NOV) == []
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "4.00"

    # Lifted above 5, the first rule is armed again by the next look; a fall fires it.
    api.ok("POST", f"/wallets/{wallet['id']}/transactions", json={"grantedCredits": "2"})
    assert wallet_pass(sessions, NOV) == []
    assert api.ok("GET", f"/wallets/{wallet['id']}")["recurringTransactionRules"][0]["armed"]


def test_a_paid_threshold_top_up_waits_for_its_invoice_and_is_made_once(api):
    api.customer("acme")
    wallet = api.ok(
        "POST",
        "/wallets",
        json={"customerId": "acme", "grantedCredits": "1",
              "recurringTransactionRules": [
                  {"trigger": "threshold", "thresholdCredits": "2", "paidCredits": "10"}]},
    )  # fmt: skip
    sessions = api.runtime.sessions
    assert wallet_pass(sessions, NOV) == ["wallets: 1 auto top-ups"]
    assert wallet_pass(sessions, NOV) == []  # still 1 credit, pending: disarmed
    [pending] = _txs(api, wallet["id"], "?status=pending")
    assert (pending["source"], pending["amount"]) == ("threshold", "10.00")
    api.ok("POST", f"/invoices/{pending['invoiceId']}/payments", json={"amount": "10.00"})
    after = api.ok("GET", f"/wallets/{wallet['id']}")
    assert after["balance"] == "11.00"
    assert after["recurringTransactionRules"][0]["armed"] is True  # judged on settling


def test_an_interval_rule_tops_up_once_per_period(api):
    api.customer("acme")
    wallet = api.ok(
        "POST",
        "/wallets",
        json={"customerId": "acme", "recurringTransactionRules": [
            {"trigger": "interval", "interval": "monthly", "grantedCredits": "10"}]},
    )  # fmt: skip
    sessions = api.runtime.sessions
    assert wallet_pass(sessions, datetime(2026, 11, 20, tzinfo=UTC)) == []  # set in November
    dec = datetime(2026, 12, 1, tzinfo=UTC)
    assert wallet_pass(sessions, dec) == ["wallets: 1 auto top-ups"]
    assert wallet_pass(sessions, dec) == []
    assert wallet_pass(sessions, datetime(2026, 12, 31, tzinfo=UTC)) == []
    assert wallet_pass(sessions, datetime(2027, 1, 2, tzinfo=UTC)) == ["wallets: 1 auto top-ups"]
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "20.00"
    assert [t["source"] for t in _txs(api, wallet["id"])] == ["interval", "interval"]


def test_concurrent_passes_make_one_top_up(api):
    api.customer("acme")
    wallet = api.ok(
        "POST",
        "/wallets",
        json={"customerId": "acme", "recurringTransactionRules": [
            {"trigger": "threshold", "thresholdCredits": "5", "grantedCredits": "3"}]},
    )  # fmt: skip
    errors: list[BaseException] = []

    def one_pass() -> None:
        try:
            wallet_pass(api.runtime.sessions, NOV)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # SQLite may refuse a writer that waited too long; none may top up twice.
    assert all("locked" in str(e) for e in errors), errors
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "3.00"
    assert Decimal(len(_txs(api, wallet["id"]))) == 1


def test_rules_are_checked_and_replaced_by_an_update(api):
    api.customer("acme")
    body = {"customerId": "acme", "recurringTransactionRules": [{"trigger": "threshold"}]}
    assert api.error("POST", "/wallets", 422, json=body)
    body["recurringTransactionRules"] = [{"trigger": "interval", "interval": "yearly",
                                          "grantedCredits": "1"}]  # fmt: skip
    assert api.error("POST", "/wallets", 422, json=body)
    wallet = api.ok("POST", "/wallets", json={"customerId": "acme"})
    rules = [{"trigger": "threshold", "thresholdCredits": "0", "grantedCredits": "4"}]
    changed = api.ok("PATCH", f"/wallets/{wallet['id']}", json={"recurringTransactionRules": rules})
    assert changed["recurringTransactionRules"] == [
        {"trigger": "threshold", "paidCredits": "0", "grantedCredits": "4",
         "thresholdCredits": "0", "armed": True}
    ]  # fmt: skip
    assert wallet_pass(api.runtime.sessions, NOV) == ["wallets: 1 auto top-ups"]
    assert (
        api.ok("PATCH", f"/wallets/{wallet['id']}", json={"recurringTransactionRules": []})[
            "recurringTransactionRules"
        ]
        == []
    )
