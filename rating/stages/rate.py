"""Stage 5, Rate: price every charge with its model; fixed fees, prorated when partial."""

from __future__ import annotations

from decimal import Decimal

from rating import pricing
from rating.context import ChargeQuantity, RatingState
from rating.model import InvoiceLine, LineType, Period
from rating.money import round_money
from rating.periods import proration_factor


def describe_group(name: str, group: tuple[tuple[str, str], ...]) -> str:
    if not group:
        return name
    return f"{name} ({', '.join(f'{k}={v}' for k, v in group)})"


def usage_line(quantity: ChargeQuantity, currency: str, period: Period) -> InvoiceLine:
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


def rate(state: RatingState) -> RatingState:
    ctx = state.context
    plan = ctx.subscription.plan
    currency = ctx.currency
    active = ctx.period.overlap(ctx.subscription.start, ctx.subscription.end)
    lines: list[InvoiceLine] = []
    if active is not None:
        factor = proration_factor(ctx.period, active)
        if plan.base_fee > 0:
            lines.append(
                _fixed_line(
                    f"{plan.name} base fee",
                    plan.base_fee,
                    Decimal(1),
                    factor,
                    currency,
                    active,
                    None,
                    LineType.CHARGE,
                )
            )
        for fixed in plan.fixed_charges:
            if fixed.one_time:
                # A setup fee is due once: on the period in which the subscription starts.
                if not ctx.period.start <= ctx.subscription.start < ctx.period.end:
                    continue
                lines.append(
                    _fixed_line(
                        fixed.name,
                        fixed.amount,
                        fixed.units,
                        Decimal(1),
                        currency,
                        active,
                        fixed.id,
                        LineType.SETUP_FEE,
                    )
                )
            else:
                lines.append(
                    _fixed_line(
                        fixed.name,
                        fixed.amount,
                        fixed.units,
                        factor if fixed.prorated else Decimal(1),
                        currency,
                        active,
                        fixed.id,
                        LineType.CHARGE,
                    )
                )
    for quantity in state.quantities:
        lines.append(usage_line(quantity, currency, ctx.period))
    return state.evolve(lines=tuple(lines))


def _fixed_line(
    name: str,
    amount: Decimal,
    units: Decimal,
    factor: Decimal,
    currency: str,
    active: Period,
    charge_id: str | None,
    line_type: LineType,
) -> InvoiceLine:
    exact = amount * units * factor
    prorated = factor != 1
    return InvoiceLine(
        type=LineType.PRORATION if prorated and line_type == LineType.CHARGE else line_type,
        description=f"{name} (prorated)" if prorated else name,
        amount=round_money(exact, currency),
        quantity=units,
        unit_amount=amount * factor if prorated else amount,
        charge_id=charge_id,
        period_start=active.start,
        period_end=active.end,
    )
