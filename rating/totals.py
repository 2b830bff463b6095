"""The totals of an invoice, from its lines: the one definition of the identities.

    subtotal       = Σ amounts of the lines that are not DISCOUNT or CREDIT
    discount_total = − Σ amounts of the DISCOUNT lines (coupons, maximum-spend adjustment)
    tax_total      = Σ line taxes (TAX_ADJUSTMENT lines carry a tax only)
    total          = Σ line amounts (DISCOUNT lines negative) + Σ line taxes
                   = subtotal − discount_total + tax_total
    credit_total   = the prepaid credits (wallet debits), never more than max(total, 0)
    amount_due     = total − credit_total − amount_paid

Every term is a sum of amounts already rounded on their lines, so the identities hold
exactly, to the minor unit. Settle (stage 10) uses `totals` on a rated invoice; the
ledger uses it again whenever a draft's lines change (tax override) or a payment
arrives, so the stored totals can never drift from the lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Protocol

from rating.model import LineType
from rating.money import EXACT, ZERO


class LineAmounts(Protocol):
    """What the totals read of a line: a rated `InvoiceLine` or a stored line row."""

    @property
    def type(self) -> str: ...

    @property
    def amount(self) -> Decimal: ...

    @property
    def tax_amount(self) -> Decimal: ...


@dataclass(frozen=True)
class Totals:
    """An invoice's totals; `amount_due` follows from them."""

    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    credit_total: Decimal = ZERO
    amount_paid: Decimal = ZERO

    @property
    def amount_due(self) -> Decimal:
        """What is left to pay: total − prepaid credits − payments."""
        with localcontext(EXACT):
            return self.total - self.credit_total - self.amount_paid


def totals(
    lines: Iterable[LineAmounts], *, credits: Decimal = ZERO, paid: Decimal = ZERO
) -> Totals:
    """The totals of `lines`; prepaid `credits` count up to the total (never below 0)."""
    subtotal = discounts = tax_total = ZERO
    with localcontext(EXACT):
        for line in lines:
            if line.type == LineType.DISCOUNT:
                discounts += line.amount
            elif line.type != LineType.CREDIT:
                subtotal += line.amount
            tax_total += line.tax_amount
        discount_total = -discounts
        total = subtotal - discount_total + tax_total
    return Totals(
        subtotal=subtotal,
        discount_total=discount_total,
        tax_total=tax_total,
        total=total,
        credit_total=min(credits, max(total, ZERO)),
        amount_paid=paid,
    )
