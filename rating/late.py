"""Late usage: events that arrived after their period's invoice was finalized.

BILLING.md: late events are stored, flagged late, and billed as a separate
prior-period line on the customer's next invoice. A finalized invoice is never
changed; the next invoice gets, per charge and group, the difference between the
price of everything now known for the old period and the price already billed:

    amount = price(billable(q_known_now)) − price(billable(q_known_at_cutoff))

with the same hard cap and included quantity as the old period, so a graduated or
volume charge bills the late units at the tier they fall in. Rollover and commitments
of the old period are not reopened (they were settled with it). The difference is
exact (`EXACT` context) and rounded once, like any line: the amount ROUND_HALF_UP to
the minor unit, the unit amount ROUND_HALF_UP to 12 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, localcontext

from rating import pricing
from rating.model import Group, InvoiceLine, LineType, Period, UsageCharge
from rating.money import EXACT, ZERO, ratio, round_money
from rating.pricing.base import UNIT_AMOUNT_DECIMALS

Quantities = Mapping[tuple[str, Group], Decimal]


def supports_late_billing(charge: UsageCharge) -> bool:
    """Charges priced per transaction (percentage with per-event rules) are not re-priced."""
    return not pricing.needs_event_amounts(charge.model, charge.properties)


def _billable(charge: UsageCharge, quantity: Decimal) -> Decimal:
    # The old period's quantity as its invoice priced it: rounded by the metric first.
    quantity = charge.metric.rounded(quantity)
    if charge.hard_cap is not None:
        quantity = min(quantity, charge.hard_cap)
    with localcontext(EXACT):
        return max(quantity - charge.included_quantity, ZERO)


def late_usage_lines(
    charges: tuple[UsageCharge, ...],
    old_period: Period,
    prior_invoice_id: str,
    billed: Quantities,
    known: Quantities,
    currency: str,
) -> tuple[InvoiceLine, ...]:
    """The prior-period lines for one finalized invoice, from the quantities it billed
    (`billed`, events ingested up to its cutoff) and those known now (`known`)."""
    lines = []
    for charge in charges:
        if not supports_late_billing(charge):
            continue
        groups = sorted({g for (cid, g) in known if cid == charge.id})
        for group in groups:
            before = _billable(charge, billed.get((charge.id, group), ZERO))
            after = _billable(charge, known[(charge.id, group)])
            if after == before:
                continue
            now_priced = pricing.price(charge.model, charge.properties, pricing.ChargeUsage(after))
            billed_priced = pricing.price(
                charge.model, charge.properties, pricing.ChargeUsage(before)
            )
            with localcontext(EXACT):
                exact = now_priced.amount - billed_priced.amount
                quantity = after - before
            amount = round_money(exact, currency)
            label = ", ".join(f"{k}={v}" for k, v in group)
            name = f"{charge.metric.name} ({label})" if label else charge.metric.name
            lines.append(
                InvoiceLine(
                    type=LineType.USAGE_FEE,
                    description=(
                        f"{name}: late usage for {old_period.start:%Y-%m-%d} to "
                        f"{old_period.end:%Y-%m-%d}"
                    ),
                    amount=amount,
                    quantity=quantity,
                    unit_amount=ratio(exact, quantity, UNIT_AMOUNT_DECIMALS) if quantity else ZERO,
                    metric=charge.metric.code,
                    group=group,
                    charge_id=charge.id,
                    period_start=old_period.start,
                    period_end=old_period.end,
                    prior_invoice_id=prior_invoice_id,
                )
            )
    return tuple(lines)
