"""Taxes by country and region, currencies of 0 and 3 decimals, a tax override."""

from __future__ import annotations

import pytest

from tests.helpers.scenarios import (
    Z,
    bill,
    customer,
    ev,
    fee,
    invoice,
    lines,
    metric,
    per_unit,
    plan,
    send,
    totals,
    usage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_taxes_by_country_and_region_and_exempt_customer(stack):
    c = stack.tenant("sc-taxes")
    metric(c, "units", "sum")
    plan(c, "taxed", [per_unit("units", "0.111")], baseFee="100")
    for tax in (
        {"code": "us", "name": "US federal", "rate": "5", "country": "US"},
        {"code": "us_ca", "name": "California", "rate": "2.5", "country": "US", "region": "CA"},
        {"code": "fr", "name": "TVA", "rate": "20", "country": "FR"},
        {"code": "std", "name": "Default", "rate": "10"},
    ):
        c.ok("POST", "/taxes", json=tax)
    customer(c, "ca", "taxed", country="US", region="CA")
    customer(c, "ny", "taxed", country="US", region="NY")
    customer(c, "fr", "taxed", country="FR")
    customer(c, "jp", "taxed", country="JP")
    customer(c, "exempt", "taxed", country="US", region="CA", taxExempt=True)
    names = ("ca", "ny", "fr", "jp", "exempt")
    send(c, [ev(f"u-{n}", n, "units", "2026-10-12", 30) for n in names])
    bill(c, "2026-10-01", "2026-10-31", created=5)
    # every invoice: base 100 and usage 30 × 0.111 = 3.33; taxed per line, rounded per line
    expected = {
        # US + CA stack: 7.5%: 7.50 and 3.33 × 7.5% = 0.24975 → 0.25
        "ca": ("7.50", "0.25", ("103.33", Z, "7.75", Z, "111.08", "111.08")),
        # US only (no NY rate): 5%: 5.00 and 0.1665 → 0.17
        "ny": ("5.00", "0.17", ("103.33", Z, "5.17", Z, "108.50", "108.50")),
        # FR 20%: 20.00 and 0.666 → 0.67
        "fr": ("20.00", "0.67", ("103.33", Z, "20.67", Z, "124.00", "124.00")),
        # no JP rate: the default (no country) 10%: 10.00 and 0.333 → 0.33
        "jp": ("10.00", "0.33", ("103.33", Z, "10.33", Z, "113.66", "113.66")),
        # exempt: no tax
        "exempt": (Z, Z, ("103.33", Z, Z, Z, "103.33", "103.33")),
    }
    for name, (base_tax, usage_tax, sums) in expected.items():
        inv = invoice(c, name)
        assert lines(inv) == [
            fee("100.00", "100", tax=base_tax),
            usage("units", "30", "0.111", "3.33", usage_tax),
        ], name
        assert totals(inv) == sums, name


def test_zero_and_three_decimal_currencies(stack):
    c = stack.tenant("sc-currencies")
    metric(c, "units", "sum")
    plan(c, "yen", [per_unit("units", "1.5")], currency="JPY", baseFee="1000")
    plan(c, "dinar", [per_unit("units", "0.0125")], currency="BHD", baseFee="10")
    c.ok("POST", "/taxes", json={"code": "jct", "name": "JCT", "rate": "8", "country": "JP"})
    c.ok("POST", "/taxes", json={"code": "bh", "name": "VAT", "rate": "10", "country": "BH"})
    start = "2026-10-15T12:00:00Z"
    customer(c, "tokyo", "yen", start=start, currency="JPY", country="JP")
    customer(c, "manama", "dinar", start=start, currency="BHD", country="BH")
    send(
        c,
        [
            ev("j1", "tokyo", "units", "2026-10-20", 7),
            ev("b1", "manama", "units", "2026-10-20", 7),
        ],
    )
    bill(c, "2026-10-01", "2026-10-31", created=2)
    # JPY, 0 decimals, 17 of 31 days: 1000 × 17/31 = 548.38… → 548, tax 8% 43.84 → 44
    # usage 7 × 1.5 = 10.5 → 11 (half up), tax 0.88 → 1; subtotal 559, tax 45, total 604
    tokyo = invoice(c, "tokyo")
    assert lines(tokyo) == [
        fee("548", "548.387096774194", kind="PRORATION", tax="44"),
        usage("units", "7", "1.5", "11", "1"),
    ]
    assert totals(tokyo) == ("559", "0", "45", "0", "604", "604")
    # BHD, 3 decimals: 10 × 17/31 = 5.48387… → 5.484, tax 10% 0.5484 → 0.548
    # usage 7 × 0.0125 = 0.0875 → 0.088, tax 0.0088 → 0.009
    # subtotal 5.572, tax 0.557, total 6.129
    manama = invoice(c, "manama")
    assert lines(manama) == [
        fee("5.484", "5.483870967742", kind="PRORATION", tax="0.548"),
        usage("units", "7", "0.0125", "0.088", "0.009"),
    ]
    assert totals(manama) == ("5.572", "0.000", "0.557", "0.000", "6.129", "6.129")


def test_tax_override_on_a_draft_paid_by_a_wallet(stack):
    # Regression: lowering a draft's tax below what a wallet had paid clipped the
    # invoice's creditTotal but kept the wallet debited, so the credits were lost.
    c = stack.tenant("sc-tax-override-wallet")
    plan(c, "base", [], baseFee="20")
    c.ok("POST", "/taxes", json={"code": "vat", "name": "TVA", "rate": "20", "country": "FR"})
    customer(c, "paris", "base", country="FR")
    wallet = c.ok("POST", "/wallets", json={"customerId": "paris", "credits": "100"})["id"]
    bill(c, "2026-10-01", "2026-10-31", created=1)
    draft = invoice(c, "paris")
    # 20 + 20% tax 4.00 = 24.00, all paid by the wallet
    assert lines(draft) == [fee("20.00", "20", tax="4.00")]
    assert totals(draft) == ("20.00", Z, "4.00", "24.00", "24.00", Z)
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == "76.00"
    # a manual override to no tax: a TAX_ADJUSTMENT of −4.00; the total is 20.00 and the
    # wallet gets back the 4.00 it no longer pays
    over = c.ok("POST", f"/invoices/{draft['id']}/tax-override", json={"taxTotal": "0"})
    assert lines(over) == [
        fee("20.00", "20", tax="4.00"),
        ("TAX_ADJUSTMENT", None, "1", "0", Z, "-4.00"),
    ]
    assert totals(over) == ("20.00", Z, Z, "20.00", "20.00", Z)
    assert c.ok("GET", f"/wallets/{wallet}")["balance"] == "80.00"
    [deduction, top_up] = c.ok("GET", f"/wallets/{wallet}/transactions")["data"]
    assert (deduction["amount"], deduction["fundedBy"]) == (
        "20.00",
        [{"transactionId": top_up["id"], "amount": "20.00"}],
    )
    assert top_up["remaining"] == "80.00"
    # finalized, it is PAID: the wallet covered all of it
    assert c.ok("POST", f"/invoices/{draft['id']}/finalize")["status"] == "PAID"
