"""Stage 9, Route: prepaid wallet credits pay the invoice first.

Wallets pay in order of priority (1 first), then earliest expiry (wallets that never
expire last), then id. A wallet that has expired when the invoice is issued, or has
no balance, pays nothing. Each wallet pays the lines it may pay, in line order, up to
what is still due on each line (amount − discount_amount + tax_amount) and never more
than its balance in whole minor units. What the wallets do not cover is due.

Scope, as in Lago: a wallet with metric codes pays the usage lines of those metrics;
one with fee types pays the lines of those types (a "CHARGE" wallet also pays
PRORATION lines, which are prorated fixed fees); with both, it pays the usage lines of
its metrics plus the non-usage lines of its fee types.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rating.context import RatingState, WalletBalance, WalletDebit
from rating.model import InvoiceLine, LineType
from rating.money import ZERO, round_down

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def _fee_types(wallet: WalletBalance) -> set[str]:
    types = {t.strip().upper() for t in wallet.fee_types}
    if LineType.CHARGE.value in types:
        types.add(LineType.PRORATION.value)
    return types


def pays(wallet: WalletBalance, line: InvoiceLine) -> bool:
    """Whether a wallet's scope covers a line."""
    if line.type in (LineType.DISCOUNT, LineType.CREDIT):
        return False
    by_metric = line.type == LineType.USAGE_FEE and line.metric in wallet.metric_codes
    by_type = line.type.value in _fee_types(wallet)
    if wallet.metric_codes and wallet.fee_types:
        return by_metric or (by_type and line.type != LineType.USAGE_FEE)
    if wallet.metric_codes:
        return by_metric
    if wallet.fee_types:
        return by_type
    return True


def payment_order(state: RatingState) -> list[WalletBalance]:
    """The wallets that can pay this invoice, in the order they pay."""
    issued = state.context.issue_date
    usable = (
        w
        for w in state.context.wallets
        if w.balance > 0 and (w.expires_at is None or w.expires_at > issued)
    )
    return sorted(usable, key=lambda w: (w.priority, w.expires_at or _FAR_FUTURE, w.id))


def route(state: RatingState) -> RatingState:
    wallets = payment_order(state)
    if not wallets:
        return state.evolve(wallet_debits=())
    currency = state.context.currency
    lines = state.lines
    due = [
        max(ln.amount - ln.discount_amount + ln.tax_amount, ZERO)
        if ln.type not in (LineType.DISCOUNT, LineType.CREDIT)
        else ZERO
        for ln in lines
    ]
    debits: list[WalletDebit] = []
    for wallet in wallets:
        # Lines are whole minor units; a sub-unit rest of the balance stays in the wallet.
        left = round_down(wallet.balance, currency)
        used = ZERO
        for i, line in enumerate(lines):
            if left <= 0:
                break
            if due[i] <= 0 or not pays(wallet, line):
                continue
            pay = min(left, due[i])
            due[i] -= pay
            left -= pay
            used += pay
        if used > 0:
            debits.append(WalletDebit(wallet.id, used))
    return state.evolve(wallet_debits=tuple(debits))
