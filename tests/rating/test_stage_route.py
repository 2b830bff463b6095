"""Stage 9, Route: wallets by priority then expiry, scoped, never beyond balance or due."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest

from rating.context import BillingContext, RatingState, WalletBalance, WalletDebit
from rating.model import (
    Customer,
    Interval,
    InvoiceLine,
    LineType,
    Plan,
    Subscription,
)
from rating.stages.route import route
from tests.helpers.dates import OCTOBER, at

# What is due per line: amount − discount + tax.
LINES = (
    InvoiceLine(LineType.CHARGE, "Pro base fee", D("49.00"), tax_amount=D("9.80")),  # 58.80
    InvoiceLine(
        LineType.USAGE_FEE,
        "API calls",
        D("12.35"),
        metric="api_calls",
        discount_amount=D("1.24"),
        tax_amount=D("2.22"),
    ),  # 13.33
    InvoiceLine(
        LineType.USAGE_FEE, "Storage", D("8.00"), metric="storage", tax_amount=D("1.60")
    ),  # 9.60
    InvoiceLine(LineType.PRORATION, "Support", D("10.97"), tax_amount=D("2.19")),  # 13.16
    InvoiceLine(LineType.DISCOUNT, "Coupon X", D("-1.24")),
)
TOTAL_DUE = D("94.89")


def wallet(
    wallet_id: str,
    balance: str,
    priority: int = 1,
    expires_at: datetime | None = None,
    metrics: tuple[str, ...] = (),
    fee_types: tuple[str, ...] = (),
) -> WalletBalance:
    return WalletBalance(wallet_id, priority, D(balance), expires_at, metrics, fee_types)


def run(wallets: list[WalletBalance], issued_at: datetime | None = None) -> RatingState:
    plan = Plan("pro", "Pro", "USD", Interval.MONTHLY)
    subscription = Subscription("sub", Customer("acme", "Acme", "USD"), plan, OCTOBER.start)
    ctx = BillingContext(subscription, OCTOBER, wallets=tuple(wallets), issued_at=issued_at)
    return route(RatingState(context=ctx, lines=LINES))


@pytest.mark.parametrize(
    ("wallets", "debits"),
    [
        pytest.param([], [], id="no-wallet"),
        pytest.param([wallet("w", "500")], [("w", "94.89")], id="never-more-than-due"),
        pytest.param([wallet("w", "50")], [("w", "50")], id="never-more-than-balance"),
        pytest.param(
            [wallet("w2", "100", priority=2), wallet("w1", "30", priority=1)],
            [("w1", "30"), ("w2", "64.89")],
            id="priority-first",
        ),
        pytest.param(
            [
                wallet("late", "50", expires_at=at(2026, 12, 31)),
                wallet("soon", "50", expires_at=at(2026, 11, 15)),
            ],
            [("soon", "50"), ("late", "44.89")],
            id="then-earliest-expiry",
        ),
        pytest.param(
            [wallet("forever", "50"), wallet("dated", "50", expires_at=at(2027, 6))],
            [("dated", "50"), ("forever", "44.89")],
            id="never-expiring-last",
        ),
        pytest.param(
            [wallet("b", "50"), wallet("a", "50")], [("a", "50"), ("b", "44.89")], id="then-id"
        ),
        pytest.param(
            [wallet("old", "50", expires_at=at(2026, 10, 20)), wallet("w", "10")],
            [("w", "10")],
            id="expired-skipped",
        ),
        pytest.param(
            [wallet("edge", "50", expires_at=at(2026, 11))], [], id="expiring-at-issue-is-expired"
        ),
        pytest.param(
            [wallet("ok", "50", expires_at=at(2026, 11, 2))],
            [("ok", "50")],
            id="expiring-after-issue",
        ),
        pytest.param([wallet("zero", "0"), wallet("neg", "-5")], [], id="empty-wallets-skipped"),
        pytest.param([wallet("w", "10.009")], [("w", "10.00")], id="whole-cents-only"),
        pytest.param(
            [wallet("w", "500", metrics=("api_calls",))],
            [("w", "13.33")],
            id="metric-scope-after-discount-with-tax",
        ),
        pytest.param(
            [wallet("w", "500", fee_types=("USAGE_FEE",))], [("w", "22.93")], id="fee-type-usage"
        ),
        pytest.param(
            [wallet("w", "500", fee_types=("CHARGE",))],
            [("w", "71.96")],
            id="fee-type-charge-includes-proration",
        ),
        pytest.param(
            [wallet("w", "500", fee_types=("PRORATION",))],
            [("w", "13.16")],
            id="fee-type-proration-only",
        ),
        pytest.param(
            [wallet("w", "500", metrics=("storage",), fee_types=("CHARGE",))],
            [("w", "81.56")],
            id="metrics-plus-fee-types",
        ),
        pytest.param(
            [wallet("w", "500", metrics=("storage",), fee_types=("USAGE_FEE",))],
            [("w", "9.60")],
            id="usage-fees-limited-to-metrics",
        ),
        pytest.param(
            [wallet("calls", "500", metrics=("api_calls",)), wallet("any", "500", priority=2)],
            [("calls", "13.33"), ("any", "81.56")],
            id="scoped-then-general",
        ),
    ],
)
def test_route(wallets: list[WalletBalance], debits: list[tuple[str, str]]) -> None:
    state = run(wallets)
    assert state.wallet_debits == tuple(WalletDebit(w, D(a)) for w, a in debits)
    assert sum((d.amount for d in state.wallet_debits), D(0)) <= TOTAL_DUE
    balances = {w.id: w.balance for w in wallets}
    assert all(d.amount <= balances[d.wallet_id] for d in state.wallet_debits)


def test_issue_date_decides_expiry() -> None:
    w = wallet("w", "50", expires_at=at(2026, 11, 2))
    assert run([w], issued_at=at(2026, 11, 5)).wallet_debits == ()
    assert run([w], issued_at=at(2026, 11, 1)).wallet_debits == (WalletDebit("w", D(50)),)
