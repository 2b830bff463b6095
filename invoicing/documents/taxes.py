"""The tax breakdown of a document: one subtotal per rate, whose sums add up.

EN 16931 wants one VAT breakdown per category and rate (BG-23), each with its taxable
amount: the lines of that rate less the document-level allowances of that rate. The
ledger keeps a line's share of the discounts in its `discount_amount` and taxes the
net (rating/stages/tax.py), so a rate's allowance is the sum of those shares. Two
rare leftovers are placed where they keep every sum exact (docs/documents.md):

- a discount not allocated to lines goes to the rate with the largest base;
- the tax of TAX_ADJUSTMENT lines (a manual override, no base of its own) goes to the
  taxed rate with the largest base (any rate when none is taxed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

from invoicing.documents.model import DocumentLine, TaxCategory, TaxSubtotal
from rating.money import EXACT, ZERO

EXEMPTION_REASON = "Exempt from tax"


@dataclass
class _Group:
    rate: Decimal
    base: Decimal = ZERO
    allowance: Decimal = ZERO
    tax: Decimal = ZERO


def category(rate: Decimal, *, exempt: bool) -> TaxCategory:
    """S (standard) for a positive rate; at 0 %, E for an exempt buyer, else Z."""
    if rate > 0:
        return "S"
    return "E" if exempt else "Z"


def tax_breakdown(
    lines: Iterable[DocumentLine], discount_total: Decimal, *, exempt: bool
) -> tuple[TaxSubtotal, ...]:
    """One subtotal per tax rate of the billed lines, highest rate first, such that
    Σ taxable = Σ billed amounts − `discount_total` and Σ tax = Σ line taxes."""
    groups: dict[Decimal, _Group] = {}
    adjustment_tax = ZERO
    with localcontext(EXACT):
        for line in lines:
            if line.kind == "TAX_ADJUSTMENT":
                adjustment_tax += line.tax_amount
                continue
            if not line.billed:
                continue
            rate = line.tax_rate if line.tax_rate is not None else ZERO
            group = groups.setdefault(rate, _Group(rate))
            group.base += line.amount
            group.allowance += line.discount_amount
            group.tax += line.tax_amount
        if not groups:
            groups[ZERO] = _Group(ZERO)
        ordered = sorted(groups.values(), key=lambda g: g.rate, reverse=True)
        largest = max(ordered, key=lambda g: (g.base - g.allowance, g.rate))
        unallocated = discount_total - sum((g.allowance for g in ordered), ZERO)
        largest.allowance += unallocated
        if adjustment_tax:
            taxed = [g for g in ordered if g.rate > 0] or ordered
            max(taxed, key=lambda g: (g.base - g.allowance, g.rate)).tax += adjustment_tax
        result = []
        for group in ordered:
            code = category(group.rate, exempt=exempt)
            subtotal = TaxSubtotal(
                rate=group.rate,
                category=code,
                taxable_amount=group.base - group.allowance,
                tax_amount=group.tax,
                allowance=group.allowance,
            )
            if code == "E":
                subtotal = replace(subtotal, exemption_reason=EXEMPTION_REASON)
            result.append(subtotal)
    return tuple(result)
