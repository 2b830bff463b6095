"""Stage 5, Rate: price every charge with its model; fixed fees, prorated when partial.

The invoice of period P bills:
- every usage charge of P (payInAdvance usage charges too: Lago bills those as events
  arrive; here they are billed on the invoice of the period in which the usage occurred);
- fixed fees in arrears (base fee, recurring fixed charges) for P;
- fixed fees in advance for the period this invoice opens (the next one), and, on the
  subscription's first invoice, for P too, since no earlier invoice opened P;
- setup fees (one-time fixed charges) on the subscription's first invoice only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from rating import pricing
from rating.context import BillingContext, ChargeQuantity, RatingState
from rating.model import InvoiceLine, LineType, Period
from rating.money import EXACT, prorate, ratio, round_money
from rating.periods import add_days, proration_days
from rating.pricing.base import UNIT_AMOUNT_DECIMALS


def describe_group(name: str, group: tuple[tuple[str, str], ...]) -> str:
    if not group:
        return name
    return f"{name} ({', '.join(f'{k}={v}' for k, v in group)})"


def usage_line(quantity: ChargeQuantity, currency: str, period: Period) -> InvoiceLine:
    """The USAGE_FEE line of one charge and group: the model's exact price, rounded once."""
    charge = quantity.charge
    priced = pricing.price(
        charge.model,
        charge.properties,
        pricing.ChargeUsage(
            quantity=quantity.billable,
            event_count=quantity.event_count,
            event_amounts=quantity.event_amounts,
        ),
    )
    return InvoiceLine(
        type=LineType.USAGE_FEE,
        description=describe_group(charge.metric.name, quantity.group),
        amount=round_money(priced.amount, currency),
        quantity=quantity.billable,
        unit_amount=priced.unit_amount,
        metric=charge.metric.code,
        group=quantity.group,
        charge_id=charge.id,
        period_start=period.start,
        period_end=period.end,
    )


@dataclass(frozen=True)
class _RecurringFee:
    name: str
    amount: Decimal
    units: Decimal
    charge_id: str | None
    pay_in_advance: bool
    prorated: bool
    billable_from: datetime  # the subscription start, or the trial end for the base fee


def _recurring_fees(ctx: BillingContext) -> Iterator[_RecurringFee]:
    subscription = ctx.subscription
    plan = subscription.plan
    if plan.base_fee > 0:
        # A plan's trial waives its base fee (only) until the trial ends, as in Lago.
        trial_end = add_days(subscription.start, plan.trial_days, subscription.customer.zone)
        yield _RecurringFee(
            name=f"{plan.name} base fee",
            amount=plan.base_fee,
            units=Decimal(1),
            charge_id=None,
            pay_in_advance=plan.pay_in_advance,
            prorated=True,
            billable_from=trial_end,
        )
    for fixed in plan.fixed_charges:
        if not fixed.one_time:
            yield _RecurringFee(
                name=fixed.name,
                amount=fixed.amount,
                units=fixed.units,
                charge_id=fixed.id,
                pay_in_advance=fixed.pay_in_advance,
                prorated=fixed.prorated,
                billable_from=subscription.start,
            )


def _service_periods(ctx: BillingContext, pay_in_advance: bool) -> list[Period]:
    """The periods whose fee this invoice bills: P in arrears; the opened one in advance."""
    if not pay_in_advance:
        return [ctx.period]
    periods = [ctx.period] if ctx.opens_subscription else []
    if ctx.advance_period is not None:
        periods.append(ctx.advance_period)
    return periods


def _recurring_line(ctx: BillingContext, fee: _RecurringFee, period: Period) -> InvoiceLine | None:
    subscription = ctx.subscription
    used_part = period.overlap(max(subscription.start, fee.billable_from), subscription.end)
    if used_part is None:
        return None  # not active in that period (ended before it, or still in trial)
    used, total = proration_days(period, used_part, ctx.subscription.customer.zone)
    if used >= total or not fee.prorated:
        return InvoiceLine(
            type=LineType.CHARGE,
            description=fee.name,
            amount=round_money(fee.amount * fee.units, ctx.currency),
            quantity=fee.units,
            unit_amount=fee.amount,
            charge_id=fee.charge_id,
            period_start=used_part.start,
            period_end=used_part.end,
        )
    # Days used / days in period, rounded once on the line (BILLING.md: Prorations).
    with localcontext(EXACT):
        unit_amount = ratio(fee.amount * used, total, UNIT_AMOUNT_DECIMALS)
    return InvoiceLine(
        type=LineType.PRORATION,
        description=f"{fee.name} (prorated {used}/{total} days)",
        amount=prorate(fee.amount * fee.units, used, total, ctx.currency),
        quantity=fee.units,
        unit_amount=unit_amount,
        charge_id=fee.charge_id,
        period_start=used_part.start,
        period_end=used_part.end,
    )


def fixed_fee_lines(ctx: BillingContext) -> list[InvoiceLine]:
    """Setup fees, then base fee and recurring fixed charges, in arrears or in advance."""
    lines: list[InvoiceLine] = []
    active = ctx.active
    if ctx.opens_subscription and active is not None:
        for fixed in ctx.subscription.plan.fixed_charges:
            if fixed.one_time:
                # Due once, in full, on the first invoice (never prorated).
                lines.append(
                    InvoiceLine(
                        type=LineType.SETUP_FEE,
                        description=fixed.name,
                        amount=round_money(fixed.amount * fixed.units, ctx.currency),
                        quantity=fixed.units,
                        unit_amount=fixed.amount,
                        charge_id=fixed.id,
                        period_start=active.start,
                        period_end=active.end,
                    )
                )
    for fee in _recurring_fees(ctx):
        for period in _service_periods(ctx, fee.pay_in_advance):
            line = _recurring_line(ctx, fee, period)
            if line is not None:
                lines.append(line)
    return lines


def rate(state: RatingState) -> RatingState:
    """Fixed-fee lines, then one USAGE_FEE line per charge quantity (in Aggregate's order)."""
    ctx = state.context
    lines = fixed_fee_lines(ctx)
    usage_period = ctx.active or ctx.period
    lines.extend(usage_line(q, ctx.currency, usage_period) for q in state.quantities)
    # Late usage of earlier, finalized periods comes last, as separate prior-period lines.
    lines.extend(ctx.prior_lines)
    return state.evolve(lines=tuple(lines))
