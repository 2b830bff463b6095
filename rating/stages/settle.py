"""Stage 10, Settle: the invoice's totals; the ledger writes it atomically with its number.

total = Σ line amounts (DISCOUNT lines are negative) + Σ line taxes
amount due = total − credits (wallets now; credit notes and payments later)
"""

from __future__ import annotations

from rating.context import RatingState
from rating.model import ZERO, LineType, RatedInvoice


def settle(state: RatingState) -> RatedInvoice:
    ctx = state.context
    lines = state.lines
    subtotal = sum(
        (ln.amount for ln in lines if ln.type not in (LineType.DISCOUNT, LineType.CREDIT)), ZERO
    )
    discount_total = -sum((ln.amount for ln in lines if ln.type == LineType.DISCOUNT), ZERO)
    tax_total = sum((ln.tax_amount for ln in lines), ZERO)
    total = subtotal - discount_total + tax_total
    credit_total = min(sum((d.amount for d in state.wallet_debits), ZERO), max(total, ZERO))
    return RatedInvoice(
        subscription_id=ctx.subscription.id,
        customer_id=ctx.subscription.customer.external_id,
        currency=ctx.currency,
        period=ctx.period,
        lines=lines,
        subtotal=subtotal,
        discount_total=discount_total,
        tax_total=tax_total,
        credit_total=credit_total,
        total=total,
        amount_due=total - credit_total,
    )
