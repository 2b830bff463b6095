"""Stage 9, Route: prepaid wallet credits pay the invoice first.

Wallets in order of priority (1 first), then earliest expiry; a scoped wallet pays
only lines of its metrics or fee types. What the wallets do not cover is due.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rating.context import RatingState, WalletBalance, WalletDebit
from rating.model import ZERO, InvoiceLine, LineType

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def _pays(wallet: WalletBalance, line: InvoiceLine) -> bool:
    if wallet.metric_codes and line.metric not in wallet.metric_codes:
        return False
    return not (wallet.fee_types and line.type.value not in wallet.fee_types)


def route(state: RatingState) -> RatingState:
    ctx = state.context
    wallets = sorted(
        (
            w
            for w in ctx.wallets
            if w.balance > 0 and (w.expires_at is None or w.expires_at > ctx.period.end)
        ),
        key=lambda w: (w.priority, w.expires_at or _FAR_FUTURE, w.id),
    )
    if not wallets:
        return state
    lines = [ln for ln in state.lines if ln.type not in (LineType.DISCOUNT, LineType.CREDIT)]
    due = [ln.amount - ln.discount_amount + ln.tax_amount for ln in lines]
    debits = []
    for wallet in wallets:
        left = wallet.balance
        used = ZERO
        for i, line in enumerate(lines):
            if left <= 0 or due[i] <= 0 or not _pays(wallet, line):
                continue
            pay = min(left, due[i])
            due[i] -= pay
            left -= pay
            used += pay
        if used > 0:
            debits.append(WalletDebit(wallet.id, used))
    return state.evolve(wallet_debits=tuple(debits))
