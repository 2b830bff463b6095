"""Progressive billing: usage invoiced during the period, deducted at its end.

A plan (or a subscription's override) sets `usageThresholds`. When the period's usage
amount (the sum of its USAGE_FEE lines, before discounts and taxes, as the usage
read-out shows it) reaches a threshold, the usage not yet billed is invoiced at once:

    unbilled line = the period's line now − what earlier progressive invoices billed
                    for the same charge and group

and the period-end invoice takes what those invoices billed off its usage lines (a
"Progressive billing credit" before coupons and taxes, `credit`), so the period is
billed exactly once in all. The rules are in docs/progressive-billing.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal

from rating.context import ProgressiveBilled, RatingState
from rating.model import Group, InvoiceLine, LineType, UsageThreshold
from rating.money import EXACT, ZERO

# A batch that passes more multiples of a recurring threshold at once records the
# highest ones only: the crossings of one invoice stay bounded.
MAX_MULTIPLES = 100

Key = tuple[str, Group]


def this_period_usage(line: InvoiceLine) -> bool:
    return line.type == LineType.USAGE_FEE and line.prior_invoice_id is None


def billable(line: InvoiceLine) -> Decimal:
    """What a usage line bills before coupons and taxes: its amount less the maximum
    spend cut (Commit records it in `discount_amount`)."""
    return line.amount - line.discount_amount


def usage_amount(lines: Iterable[InvoiceLine]) -> Decimal:
    """The usage amount thresholds are measured on: this period's usage lines, after
    the maximum spend cap (a capped period never bills beyond it, progressively or not)."""
    return sum((billable(ln) for ln in lines if this_period_usage(ln)), ZERO)


def reached(thresholds: Sequence[UsageThreshold], amount: Decimal) -> list[Decimal]:
    """The threshold amounts `amount` has reached (≥); a recurring one at each multiple
    up to the amount (50, 100, 150 for 50 recurring and 170), the highest MAX_MULTIPLES."""
    out: set[Decimal] = set()
    for threshold in thresholds:
        step = threshold.amount
        if threshold.recurring:
            multiples = int(EXACT.divide_int(amount, step)) if amount >= step else 0
            first = max(1, multiples - MAX_MULTIPLES + 1)
            out.update(EXACT.multiply(step, Decimal(k)) for k in range(first, multiples + 1))
        elif amount >= step:
            out.add(step)
    return sorted(out)


def unbilled_lines(
    current: Iterable[InvoiceLine], billed: ProgressiveBilled | None
) -> tuple[InvoiceLine, ...]:
    """The period's usage lines (after the maximum spend cap) less what progressive
    invoices already billed of each: the lines of the next progressive invoice (those
    that changed)."""
    amounts = billed.amounts if billed else {}
    quantities = billed.quantities if billed else {}
    out = []
    for line in current:
        if not this_period_usage(line) or line.charge_id is None:
            continue
        key = (line.charge_id, line.group)
        amount = EXACT.subtract(billable(line), amounts.get(key, ZERO))
        if amount == 0:
            continue
        quantity = EXACT.subtract(line.quantity, quantities.get(key, ZERO))
        out.append(
            replace(
                line,
                description=f"{line.description} (usage to date)",
                amount=amount,
                quantity=quantity,
                discount_amount=ZERO,
                tax_amount=ZERO,
                tax_rate=ZERO,
            )
        )
    return tuple(out)


def credit(state: RatingState) -> RatingState:
    """Take what the period's progressive invoices billed off its usage lines.

    Each usage line first gives back what was billed for its own charge and group, then
    what is left of the total is taken from the usage lines in order, never beyond a
    line's net (amount − discount_amount, after the maximum-spend cut): the credit is
    at most the period's usage. Recorded like a discount (`discount_amount` on the lines,
    one DISCOUNT line of minus the total), so coupons, taxes and wallets see the rest.
    """
    billed = state.context.progressive
    if billed is None:
        return state
    lines = list(state.lines)
    budget = billed.total
    if budget <= 0:
        return state
    taken = ZERO
    own = {k: v for k, v in billed.amounts.items() if v > 0}
    for pass_own in (True, False):
        for i, line in enumerate(lines):
            if budget - taken <= 0:
                break
            if not this_period_usage(line) or line.charge_id is None:
                continue
            net = line.amount - line.discount_amount
            if net <= 0:
                continue
            if pass_own:
                key = (line.charge_id, line.group)
                cut = min(own.pop(key, ZERO), net, budget - taken)
            else:
                cut = min(net, budget - taken)
            if cut > 0:
                lines[i] = replace(line, discount_amount=line.discount_amount + cut)
                taken += cut
    if taken <= 0:
        return state
    numbers = ", ".join(billed.invoice_numbers)
    lines.append(
        InvoiceLine(
            type=LineType.DISCOUNT,
            description="Progressive billing credit" + (f" ({numbers})" if numbers else ""),
            amount=-taken,
            unit_amount=-taken,
        )
    )
    return state.evolve(lines=tuple(lines))
