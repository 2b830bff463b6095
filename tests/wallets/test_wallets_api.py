"""Wallets through the HTTP API: paid and granted credits at an exchange rate, update,
terminate, expiry, the ledger both ways, and tenant isolation (docs/wallets.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invoicing.wallet_jobs import wallet_pass
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger


def _wallet(api: ApiClient, **body: Any) -> dict[str, Any]:
    api.customer("acme")
    result: dict[str, Any] = api.ok("POST", "/wallets", json={"customerId": "acme", **body})
    return result


def _txs(api: ApiClient, wallet_id: str, query: str = "") -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", f"/wallets/{wallet_id}/transactions{query}")["data"]
    return data


def test_granted_credits_are_usable_at_once_paid_ones_when_their_invoice_is_paid(api):
    wallet = _wallet(api, rateAmount="1.10", grantedCredits="10", paidCredits="100")
    assert (wallet["balance"], wallet["credits"], wallet["rateAmount"]) == ("11.00", "10.00", "1.1")
    by_grant = {t["grant"]: t for t in _txs(api, wallet["id"])}
    paid, granted = by_grant["paid"], by_grant["granted"]
    assert (granted["grant"], granted["status"], granted["amount"], granted["credits"]) == (
        "granted", "settled", "11.00", "10"
    )  # fmt: skip
    assert (paid["grant"], paid["status"], paid["amount"], paid["remaining"]) == (
        "paid", "pending", "110.00", "0.00"
    )  # fmt: skip
    assert (paid["direction"], paid["source"]) == ("inbound", "manual")

    invoice = api.ok("GET", f"/invoices/{paid['invoiceId']}")
    assert (invoice["type"], invoice["status"], invoice["total"], invoice["amountDue"]) == (
        "credit", "OPEN", "110.00", "110.00"
    )  # fmt: skip
    [line] = invoice["lines"]
    assert (line["quantity"], line["unitAmount"], line["amount"], line["taxAmount"]) == (
        "100", "1.1", "110.00", "0.00"
    )  # fmt: skip
    assert [t["id"] for t in _txs(api, wallet["id"], "?status=pending")] == [paid["id"]]

    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "60.00"})
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "11.00"  # not yet
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "50.00"})
    after = api.ok("GET", f"/wallets/{wallet['id']}")
    assert (after["balance"], after["credits"]) == ("121.00", "110.00")
    settled = api.ok("GET", f"/wallet-transactions/{paid['id']}")
    assert (settled["status"], settled["remaining"]) == ("settled", "110.00")
    assert _txs(api, wallet["id"], "?status=pending") == []


def test_top_ups_round_credits_times_rate_half_up_once(api):
    wallet = _wallet(api, rateAmount="0.335")
    topped = api.ok(
        "POST", f"/wallets/{wallet['id']}/transactions", json={"grantedCredits": "10.01"}
    )
    # 10.01 × 0.335 = 3.35335 → 3.35
    assert (topped["transaction"]["amount"], topped["wallet"]["balance"]) == ("3.35", "3.35")
    topped = api.ok("POST", f"/wallets/{wallet['id']}/transactions", json={"grantedCredits": "1"})
    assert topped["transaction"]["amount"] == "0.34"  # 0.335 → 0.34 (half up)
    assert topped["wallet"]["balance"] == "3.69"
    assert topped["wallet"]["credits"] == "11.01"  # 3.69 / 0.335 = 11.0149… → 11.01

    both = api.ok(
        "POST",
        f"/wallets/{wallet['id']}/transactions",
        json={"grantedCredits": "2", "paidCredits": "3"},
    )
    assert [(t["grant"], t["amount"]) for t in both["transactions"]] == [
        ("granted", "0.67"),
        ("paid", "1.01"),  # 1.005 → 1.01
    ]
    bad = {"grantedCredits": "0.001"}
    assert api.error("POST", f"/wallets/{wallet['id']}/transactions", 422, json=bad)
    assert api.error("POST", f"/wallets/{wallet['id']}/transactions", 422, json={})
    tiny = {"grantedCredits": "0.01"}  # 0.00335 is less than a cent
    assert (
        "smallest amount"
        in api.error("POST", f"/wallets/{wallet['id']}/transactions", 422, json=tiny)["message"]
    )
    assert api.error("POST", "/wallets", 422, json={"customerId": "acme", "rateAmount": "0"})


def test_update_changes_name_priority_expiry_and_scope(api):
    wallet = _wallet(api, grantedCredits="5", name="Promo")
    changed = api.ok(
        "PATCH",
        f"/wallets/{wallet['id']}",
        json={"name": "Prepaid", "priority": 3, "expiresAt": "2027-01-01T00:00:00Z",
              "scope": {"feeTypes": ["usage_fee"]}},
    )  # fmt: skip
    assert (changed["name"], changed["priority"], changed["expiresAt"]) == (
        "Prepaid", 3, "2027-01-01T00:00:00Z"
    )  # fmt: skip
    assert changed["scope"] == {"metrics": [], "feeTypes": ["USAGE_FEE"]}
    [entry] = [e for e in api.ok("GET", "/activity")["data"] if e["action"] == "wallet.updated"]
    assert (entry["resourceId"], entry["changes"]["priority"]) == (wallet["id"], 3)
    cleared = api.ok("PATCH", f"/wallets/{wallet['id']}", json={"expiresAt": None})
    assert (cleared["expiresAt"], cleared["name"], cleared["priority"]) == (None, "Prepaid", 3)

    url = f"/wallets/{wallet['id']}"
    assert api.error("PATCH", url, 422, json={"expiresAt": "2026-10-01T00:00:00Z"})
    assert api.error("PATCH", url, 422, json={"scope": {"feeTypes": ["nope"]}})
    assert api.error("PATCH", url, 422, json={"priority": 0})
    assert api.ok("GET", url)["balance"] == "5.00"


def test_terminate_forfeits_the_balance_and_cancels_pending_top_ups(api):
    wallet = _wallet(api, grantedCredits="7.50", paidCredits="20")
    first = api.ok("POST", f"/wallets/{wallet['id']}/transactions", json={"credits": "2.50"})
    [pending] = _txs(api, wallet["id"], "?status=pending")

    api.clock.advance(timedelta(hours=1))
    ended = api.ok("POST", f"/wallets/{wallet['id']}/terminate")
    assert (ended["status"], ended["balance"], ended["terminatedAt"]) == (
        "terminated", "0.00", "2026-11-01T10:00:00Z"
    )  # fmt: skip
    [forfeit] = _txs(api, wallet["id"], "?type=outbound")
    assert (forfeit["type"], forfeit["amount"], forfeit["direction"]) == (
        "forfeit", "10.00", "outbound"
    )  # fmt: skip
    initial = next(
        t for t in _txs(api, wallet["id"]) if t["grant"] == "granted" and t["amount"] == "7.50"
    )
    assert sorted((f["amount"], f["transactionId"]) for f in forfeit["fundedBy"]) == [
        ("2.50", first["transaction"]["id"]),
        ("7.50", initial["id"]),
    ]
    top_up = api.ok("GET", f"/wallet-transactions/{initial['id']}")
    assert (top_up["remaining"], top_up["funded"]) == (
        "0.00", [{"transactionId": forfeit["id"], "amount": "7.50"}]
    )  # fmt: skip
    cancelled = api.ok("GET", f"/wallet-transactions/{pending['id']}")
    assert cancelled["status"] == "cancelled"
    assert api.ok("GET", f"/invoices/{pending['invoiceId']}")["status"] == "VOID"

    url = f"/wallets/{wallet['id']}"
    actions = [e["action"] for e in api.ok("GET", "/activity")["data"]]
    assert actions[:2] == ["wallet.terminated", "wallet.topped_up"]
    assert api.error("POST", f"{url}/terminate", 409)["code"] == "illegal_transition"
    assert api.error("PATCH", url, 409, json={"name": "x"})["code"] == "illegal_transition"
    assert api.error("POST", f"{url}/transactions", 409, json={"credits": "1"})
    assert api.error("GET", f"{url}/transactions?type=sideways", 422)


def test_a_wallet_expires_at_its_expiry_once(api):
    wallet = _wallet(api, grantedCredits="12", expiresAt="2026-11-15T00:00:00Z")
    sessions = api.runtime.sessions
    assert wallet_pass(sessions, datetime(2026, 11, 14, 23, 59, tzinfo=UTC)) == []
    assert wallet_pass(sessions, datetime(2026, 11, 15, tzinfo=UTC)) == ["wallets: 1 expired"]
    assert wallet_pass(sessions, datetime(2026, 11, 15, tzinfo=UTC)) == []
    ended = api.ok("GET", f"/wallets/{wallet['id']}")
    assert (ended["status"], ended["balance"], ended["terminatedAt"]) == (
        "expired", "0.00", "2026-11-15T00:00:00Z"
    )  # fmt: skip
    [expiry] = _txs(api, wallet["id"], "?type=outbound")
    assert (expiry["type"], expiry["amount"], expiry["credits"]) == ("expiry", "12.00", "12")


def test_another_tenant_sees_and_changes_nothing(api, other):
    wallet = _wallet(api, grantedCredits="5")
    [tx] = _txs(api, wallet["id"])
    url = f"/wallets/{wallet['id']}"
    for method, path, body in [
        ("GET", url, None),
        ("PATCH", url, {"name": "mine"}),
        ("POST", f"{url}/terminate", None),
        ("POST", f"{url}/transactions", {"grantedCredits": "1"}),
        ("GET", f"{url}/transactions", None),
        ("GET", f"/wallet-transactions/{tx['id']}", None),
    ]:
        assert other.error(method, path, 404, json=body)["code"] == "not_found"
    assert other.ok("GET", "/wallets")["data"] == []
    same = api.ok("GET", url)
    assert (same["name"], same["status"], same["balance"]) == (None, "active", "5.00")
