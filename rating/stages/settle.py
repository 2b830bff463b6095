"""Stage 10, Settle: the invoice's totals; the ledger writes it atomically with its number.

The totals are `rating.totals.totals` of the lines, with the wallet debits as the
prepaid credits (so amount_due = total − credit_total); their identities are written
there. Settle also checks what only a fresh rating can get wrong: the discount
allocated to the lines equals the DISCOUNT lines, and the wallets paid no more than
the total.
"""

from __future__ import annotations

from rating.context import RatingState
from rating.model import LineType, RatedInvoice
from rating.money import ZERO
from rating.totals import totals


class InconsistentInvoice(ValueError):
    """Stage results that break an invoice identity (a pipeline bug, never billed)."""


def settle(state: RatingState) -> RatedInvoice:
    ctx = state.context
    lines = state.lines
    debits = sum((d.amount for d in state.wallet_debits), ZERO)
    result = totals(lines, credits=debits)
    allocated = sum((ln.discount_amount for ln in lines if ln.type != LineType.DISCOUNT), ZERO)
    if allocated != result.discount_total:
        raise InconsistentInvoice(
            f"discount lines total {result.discount_total} but {allocated} is allocated to lines"
        )
    if result.credit_total != debits:
        raise InconsistentInvoice(f"wallet debits {debits} exceed the total {result.total}")
    return RatedInvoice(
        subscription_id=ctx.subscription.id,
        customer_id=ctx.subscription.customer.external_id,
        currency=ctx.currency,
        period=ctx.period,
        lines=lines,
        subtotal=result.subtotal,
        discount_total=result.discount_total,
        tax_total=result.tax_total,
        credit_total=result.credit_total,
        total=result.total,
        amount_due=result.amount_due,
    )
