"""A full invoice through the API: base fee, graduated usage, coupon, tax and wallet."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_coupon_tax_wallet_invoice(stack):
    c = stack.tenant("smoke")
    c.ok("POST", "/metrics", json={"code": "tokens", "name": "Tokens", "aggregation": "sum"})
    c.ok(
        "POST",
        "/plans",
        json={
            "code": "ai",
            "name": "AI",
            "currency": "EUR",
            "interval": "monthly",
            "baseFee": "10",
            "charges": [
                {
                    "metric": "tokens",
                    "model": "graduated",
                    "properties": {
                        "tiers": [
                            {"upTo": "1000", "unitAmount": "0", "flatAmount": "0"},
                            {"upTo": None, "unitAmount": "0.01"},
                        ]
                    },
                }
            ],
        },
    )
    c.ok("POST", "/taxes", json={"code": "vat_fr", "name": "TVA", "rate": "20", "country": "FR"})
    c.ok(
        "POST",
        "/customers",
        json={"externalId": "lyon", "name": "Lyon SA", "currency": "EUR", "country": "FR"},
    )
    c.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "lyon", "planCode": "ai", "startDate": "2026-10-01"},
    )
    c.ok(
        "POST",
        "/coupons",
        json={"code": "WELCOME", "type": "percentage", "percentage": "10", "frequency": "once"},
    )
    c.ok("POST", "/customers/lyon/coupons", json={"couponCode": "WELCOME"})
    wallet = c.ok(
        "POST", "/wallets", json={"customerId": "lyon", "currency": "EUR", "credits": "5"}
    )
    events = [
        {
            "id": f"t{i}",
            "customerId": "lyon",
            "metric": "tokens",
            "value": 100,
            "timestamp": "2026-10-10T00:00:00Z",
        }
        for i in range(25)
    ]
    c.ok("POST", "/events", json={"events": events})
    c.wait_events(25)
    run = c.bill("2026-10-01", "2026-10-31")
    assert run["failed"] == 0, run
    [inv] = c.ok("GET", "/invoices")["data"]
    # base 10 + usage (2500-1000)*0.01 = 15 → subtotal 25; coupon 10% → 2.50 (1.00 + 1.50)
    # tax 20% on 22.50 → 4.50; total 27.00; wallet pays 5 → due 22.00
    assert (inv["subtotal"], inv["discountTotal"], inv["taxTotal"], inv["total"]) == (
        "25.00",
        "2.50",
        "4.50",
        "27.00",
    )
    assert (inv["creditTotal"], inv["amountDue"]) == ("5.00", "22.00")
    assert c.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "0.00"
    txs = c.ok("GET", f"/wallets/{wallet['id']}/transactions")["data"]
    assert [t["type"] for t in txs] == ["deduction", "top_up"]
    assert txs[0]["fundedBy"] == [{"transactionId": txs[1]["id"], "amount": "5.00"}]
    # refresh the draft: same result, coupon and wallet given back then taken again
    again = c.ok("POST", f"/invoices/{inv['id']}/refresh")
    assert (again["total"], again["amountDue"]) == ("27.00", "22.00")
    # manual tax override on the draft
    over = c.ok("POST", f"/invoices/{inv['id']}/tax-override", json={"taxTotal": "4.00"})
    assert over["taxTotal"] == "4.00" and over["total"] == "26.50"
    assert over["lines"][-1]["type"] == "TAX_ADJUSTMENT"
    fin = c.ok("POST", f"/invoices/{inv['id']}/finalize")
    assert fin["status"] == "OPEN" and fin["number"] == "INV-000001"
    assert c.post(f"/invoices/{inv['id']}/refresh").status_code == 409
