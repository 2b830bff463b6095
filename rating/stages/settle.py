"""Stage 10, Settle: the invoice's totals; the ledger writes it atomically with its number.

    subtotal       = Σ amounts of the lines that are not DISCOUNT or CREDIT
    discount_total = − Σ amounts of the DISCOUNT lines (coupons, maximum-spend adjustment)
    tax_total      = Σ line taxes
    total          = Σ line amounts (DISCOUNT lines negative) + Σ line taxes
                   = subtotal − discount_total + tax_total
    credit_total   = Σ wallet debits
    amount_due     = total − credit_total

Every term is a sum of amounts already rounded on their lines, so the identities hold
exactly, to the minor unit.
"""

from __future__ import annotations

from rating.context import RatingState
from rating.model import LineType, RatedInvoice
from rating.money import ZERO


class InconsistentInvoice(ValueError):
    """Stage results that break an invoice identity (a pipeline bug, never billed)."""


def settle(state: RatingState) -> RatedInvoice:
    ctx = state.context
    lines = state.lines
    subtotal = sum(
        (ln.amount for ln in lines if ln.type not in (LineType.DISCOUNT, LineType.CREDIT)), ZERO
    )
    discount_total = -sum((ln.amount for ln in lines if ln.type == LineType.DISCOUNT), ZERO)
    allocated = sum((ln.discount_amount for ln in lines if ln.type != LineType.DISCOUNT), ZERO)
    if allocated != discount_total:
        raise InconsistentInvoice(
            f"discount lines total {discount_total} but {allocated} is allocated to lines"
        )
    tax_total = sum((ln.tax_amount for ln in lines), ZERO)
    total = subtotal - discount_total + tax_total
    credit_total = sum((d.amount for d in state.wallet_debits), ZERO)
    if credit_total > max(total, ZERO):
        raise InconsistentInvoice(f"wallet debits {credit_total} exceed the total {total}")
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
