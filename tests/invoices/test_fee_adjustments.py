"""Fee adjustments of DRAFT lines through the HTTP API: exact amounts, taxes and totals,
preview writes nothing, DELETE restores, wallet credits stay within the total, every
refusal, and an adjustment survives a refresh of a bill-run draft."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from invoicing.billing import BillRunner, create_bill_run
from invoicing.db import transaction
from invoicing.models import LineAdjustmentRow, WalletTransactionRow
from invoicing.tax.service import TaxService
from tests.billing.fakes import InMemoryUsage
from tests.helpers.ledger_api import ApiClient
from tests.invoices.one_off_builders import Line, draft, vat

pytestmark = pytest.mark.ledger

BASE = Line("CHARGE", "1", "100", "100.00", "20", "20.00", description="Base fee")
USAGE = Line(
    "USAGE_FEE", "1000", "0.05", "50.00", "20", "8.00", discount_amount="10.00", metric="calls"
)
COUPON = Line("DISCOUNT", "1", "0", "-10.00", description="Coupon")


def adjust(api: ApiClient, invoice_id: str, line_id: str, **body: Any) -> dict[str, Any]:
    url = f"/invoices/{invoice_id}/lines/{line_id}/adjustment"
    result: dict[str, Any] = api.ok("POST", url, json=body)
    return result


def restore(api: ApiClient, invoice_id: str, line_id: str) -> dict[str, Any]:
    result: dict[str, Any] = api.ok("DELETE", f"/invoices/{invoice_id}/lines/{line_id}/adjustment")
    return result


def totals_of(invoice: dict[str, Any]) -> tuple[str, ...]:
    keys = ("subtotal", "discountTotal", "taxTotal", "total", "creditTotal", "amountDue")
    return tuple(invoice[k] for k in keys)


def adjustment_rows(api: ApiClient) -> int:
    with api.runtime.sessions() as session:
        return int(session.execute(select(func.count(LineAdjustmentRow.id))).scalar_one())


@pytest.fixture
def invoice(api: ApiClient) -> dict[str, Any]:
    api.customer("acme", country="FR")
    invoice_id = draft(api, [BASE, USAGE, COUPON])
    shown: dict[str, Any] = api.ok("GET", f"/invoices/{invoice_id}")
    assert totals_of(shown) == ("150.00", "10.00", "28.00", "168.00", "0.00", "168.00")
    return shown


def test_units_and_price_set_the_amount_tax_and_totals(
    api: ApiClient, invoice: dict[str, Any]
) -> None:
    base = invoice["lines"][0]
    adjusted = adjust(api, invoice["id"], base["id"], quantity=3, unitAmount="33.33")
    line = adjusted["lines"][0]
    assert (line["quantity"], line["unitAmount"], line["amount"]) == ("3", "33.33", "99.99")
    assert (line["taxRate"], line["taxAmount"], line["adjusted"]) == ("20", "20.00", True)
    assert [ln["adjusted"] for ln in adjusted["lines"]] == [True, False, False]
    # 99.99 + 50.00 − 10.00 + 20.00 + 8.00
    assert totals_of(adjusted) == ("149.99", "10.00", "28.00", "167.99", "0.00", "167.99")
    assert api.ok("GET", f"/invoices/{invoice['id']}") == adjusted


def test_the_tax_is_on_the_amount_after_the_line_discount(
    api: ApiClient, invoice: dict[str, Any]
) -> None:
    usage = invoice["lines"][1]
    adjusted = adjust(api, invoice["id"], usage["id"], unitAmount="0.04")
    line = adjusted["lines"][1]
    assert (line["quantity"], line["amount"], line["discountAmount"]) == ("1000", "40.00", "10.00")
    assert line["taxAmount"] == "6.00"  # 20% of 30.00
    assert totals_of(adjusted) == ("140.00", "10.00", "26.00", "156.00", "0.00", "156.00")


def test_preview_returns_the_new_invoice_and_writes_nothing(
    api: ApiClient, invoice: dict[str, Any]
) -> None:
    usage = invoice["lines"][1]
    api.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    preview = adjust(api, invoice["id"], usage["id"], unitAmount="0.04", preview=True)
    assert preview["lines"][1]["amount"] == "40.00"
    assert preview["lines"][1]["adjusted"] is True
    assert totals_of(preview) == ("140.00", "10.00", "26.00", "156.00", "0.00", "156.00")
    assert api.ok("GET", f"/invoices/{invoice['id']}") == invoice
    assert adjustment_rows(api) == 0
    # The real one answers what the preview showed.
    assert adjust(api, invoice["id"], usage["id"], unitAmount="0.04") == preview
    assert adjustment_rows(api) == 1


def test_delete_restores_the_computed_line(api: ApiClient, invoice: dict[str, Any]) -> None:
    base, usage, _ = invoice["lines"]
    adjust(api, invoice["id"], base["id"], quantity="2")
    adjust(api, invoice["id"], usage["id"], quantity="1500", unitAmount="0.1")
    restored = restore(api, invoice["id"], base["id"])
    assert restored["lines"][0] == base
    assert restored["lines"][1]["amount"] == "150.00"
    restored = restore(api, invoice["id"], usage["id"])
    assert restored == invoice
    assert adjustment_rows(api) == 0


def test_a_second_adjustment_keeps_the_first_override(
    api: ApiClient, invoice: dict[str, Any]
) -> None:
    base = invoice["lines"][0]
    adjust(api, invoice["id"], base["id"], unitAmount="80")
    both = adjust(api, invoice["id"], base["id"], quantity="2")
    assert (both["lines"][0]["quantity"], both["lines"][0]["amount"]) == ("2", "160.00")
    assert adjustment_rows(api) == 1
    assert restore(api, invoice["id"], base["id"]) == invoice  # the rating's values, not 80


def test_a_fee_can_be_adjusted_to_zero(api: ApiClient, invoice: dict[str, Any]) -> None:
    base = invoice["lines"][0]
    zero = adjust(api, invoice["id"], base["id"], quantity=0)
    assert (zero["lines"][0]["amount"], zero["lines"][0]["taxAmount"]) == ("0.00", "0.00")
    assert zero["total"] == "48.00"


def test_wallet_credits_never_exceed_the_new_total(api: ApiClient) -> None:
    api.customer("acme", country="FR")
    wallet = api.ok("POST", "/wallets", json={"customerId": "acme", "credits": "200"})
    invoice_id = draft(
        api, [BASE, USAGE, COUPON], wallet_credits=Decimal("168.00"), wallet_id=wallet["id"]
    )
    shown = api.ok("GET", f"/invoices/{invoice_id}")
    assert (shown["creditTotal"], shown["amountDue"]) == ("168.00", "0.00")
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "32.00"
    base = shown["lines"][0]

    preview = adjust(api, invoice_id, base["id"], unitAmount="50", preview=True)
    assert totals_of(preview) == ("100.00", "10.00", "18.00", "108.00", "108.00", "0.00")
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "32.00"

    lower = adjust(api, invoice_id, base["id"], unitAmount="50")
    assert totals_of(lower) == totals_of(preview)
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "92.00"  # 60.00 back
    with api.runtime.sessions() as session:
        debited = session.execute(
            select(func.sum(WalletTransactionRow.amount)).where(
                WalletTransactionRow.invoice_id == invoice_id
            )
        ).scalar_one()
        assert debited == Decimal("108")

    # Back up: the credits stay what the wallets paid; the rest is due.
    restored = restore(api, invoice_id, base["id"])
    assert totals_of(restored) == ("150.00", "10.00", "28.00", "168.00", "108.00", "60.00")
    assert api.ok("GET", f"/wallets/{wallet['id']}")["balance"] == "92.00"


def test_refusals(api: ApiClient, invoice: dict[str, Any]) -> None:
    base, usage, coupon = invoice["lines"]
    url = f"/invoices/{invoice['id']}/lines/{{}}/adjustment"
    assert api.error("POST", url.format(base["id"]), 422, json={})["code"] == "validation_error"
    api.error("POST", url.format(base["id"]), 422, json={"preview": True})
    api.error("POST", url.format(base["id"]), 422, json={"quantity": -1})
    api.error("POST", url.format(base["id"]), 422, json={"quantity": "abc"})
    api.error("POST", url.format(base["id"]), 422, json={"unitAmount": "-0.01"})
    api.error("POST", url.format(base["id"]), 422, json={"unitAmount": "1.0000000000001"})
    api.error("POST", url.format(base["id"]), 422, json={"quantity": 1, "amount": "5"})
    error = api.error("POST", url.format(coupon["id"]), 422, json={"quantity": 2})
    assert "DISCOUNT" in error["message"]
    error = api.error("POST", url.format(usage["id"]), 422, json={"unitAmount": "0.005"})
    assert "discount" in error["message"]  # 5.00 is below the line's 10.00 discount
    assert (
        api.error("POST", url.format("il_nope"), 404, json={"quantity": 1})["code"] == "not_found"
    )
    api.error("POST", "/invoices/inv_nope/lines/x/adjustment", 404, json={"quantity": 1})
    api.error("DELETE", url.format(base["id"]), 404)  # nothing to restore
    api.error("DELETE", url.format(coupon["id"]), 422)
    assert api.ok("GET", f"/invoices/{invoice['id']}") == invoice
    assert adjustment_rows(api) == 0


def test_only_a_draft_can_be_adjusted(api: ApiClient, invoice: dict[str, Any]) -> None:
    base = invoice["lines"][0]
    adjust(api, invoice["id"], base["id"], quantity=2)
    api.ok("POST", f"/invoices/{invoice['id']}/finalize")
    url = f"/invoices/{invoice['id']}/lines/{base['id']}/adjustment"
    error = api.error("POST", url, 409, json={"quantity": "not a number"})
    assert "OPEN" in error["message"] and "DRAFT" in error["message"]
    api.error("POST", url, 409, json={"quantity": 3, "preview": True})
    assert "OPEN" in api.error("DELETE", url, 409)["message"]
    api.error("POST", f"/invoices/{invoice['id']}/lines/il_nope/adjustment", 409, json={})


def test_a_one_off_line_can_be_adjusted(api: ApiClient) -> None:
    api.customer("acme", country="FR")
    vat(api)
    created = api.ok(
        "POST",
        "/invoices",
        json={
            "customerId": "acme",
            "currency": "USD",
            "lines": [{"description": "Setup", "quantity": 1, "unitAmount": "10"}],
        },
    )
    adjusted = adjust(api, created["id"], created["lines"][0]["id"], quantity=3, unitAmount="33.33")
    assert (adjusted["subtotal"], adjusted["taxTotal"], adjusted["total"]) == (
        "99.99",
        "20.00",
        "119.99",
    )


# -- refresh: the adjustment wins over the new rating ------------------------------------


def test_an_adjustment_survives_a_refresh(api: ApiClient) -> None:
    """A bill-run draft re-rated through POST /refresh: the ledger-only runtime gets the
    bill run's in-memory usage source (tests/billing/fakes.py) as its usage store."""
    usage = InMemoryUsage()
    api.runtime.usage = usage
    api.customer("acme", country="FR")
    vat(api)
    api.ok("POST", "/metrics", json={"code": "calls", "name": "Calls", "aggregation": "sum"})
    api.ok(
        "POST",
        "/plans",
        json={
            "code": "basic",
            "name": "Basic",
            "currency": "USD",
            "interval": "monthly",
            "baseFee": "10",
            "charges": [
                {"metric": "calls", "model": "per_unit", "properties": {"unitAmount": "0.5"}}
            ],
        },
    )
    api.ok(
        "POST",
        "/subscriptions",
        json={"customerId": "acme", "planCode": "basic", "startDate": "2026-10-01"},
    )
    oct5 = datetime(2026, 10, 5, tzinfo=UTC)
    usage.add("acme", "calls", oct5, "100", ingested_at=oct5)
    with transaction(api.runtime.sessions) as session:
        run_id = create_bill_run(
            session,
            api.tenant_id,
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 11, 1, tzinfo=UTC),
        ).id
    BillRunner(api.runtime.sessions, usage, TaxService(), api.clock).run(run_id)
    [invoice] = api.ok("GET", "/invoices", params={"customerId": "acme"})["data"]
    fee, calls = invoice["lines"]
    assert (fee["amount"], calls["amount"], invoice["total"]) == ("10.00", "50.00", "72.00")

    adjust(api, invoice["id"], calls["id"], unitAmount="0.4")
    adjust(api, invoice["id"], fee["id"], quantity="2")
    oct20 = datetime(2026, 10, 20, tzinfo=UTC)
    usage.add("acme", "calls", oct20, "50", ingested_at=oct20)
    refreshed = api.ok("POST", f"/invoices/{invoice['id']}/refresh")
    fee, calls = refreshed["lines"]
    assert (fee["quantity"], fee["amount"], fee["taxAmount"], fee["adjusted"]) == (
        "2",
        "20.00",
        "4.00",
        True,
    )
    # The quantity follows the new usage (150); the adjusted unit price wins.
    assert (calls["quantity"], calls["unitAmount"], calls["amount"]) == ("150", "0.4", "60.00")
    assert (calls["taxAmount"], calls["adjusted"]) == ("12.00", True)
    assert (refreshed["subtotal"], refreshed["taxTotal"], refreshed["total"]) == (
        "80.00",
        "16.00",
        "96.00",
    )
    assert api.ok("GET", f"/invoices/{invoice['id']}") == refreshed
    assert adjustment_rows(api) == 2

    # DELETE gives back what the latest rating computed.
    restored = restore(api, invoice["id"], calls["id"])
    assert (restored["lines"][1]["amount"], restored["lines"][1]["adjusted"]) == ("75.00", False)
    assert restored["total"] == "114.00"  # 20 + 4 + 75 + 15
