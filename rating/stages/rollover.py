"""Stage 2, Rollover: the included quantity of a period plus what earlier periods left.

Representation (docs/billing-rules.md, Rollover): the ledger stores, per charge, a list
of `RolloverBucket`s (quantity, expires_at), oldest first, and passes all of them in
`BillingContext.rollover_in`; this stage drops the expired ones. After the Allowance
stage consumed them, `carry_forward` gives the buckets the ledger stores next.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from rating.context import RatingState, RolloverBucket
from rating.model import Interval, Period, RolloverRule
from rating.money import ZERO
from rating.periods import next_period


def rollover(state: RatingState) -> RatingState:
    """Each charge's allowance: includedQuantity + its unexpired carried-over quantity."""
    ctx = state.context
    allowances: dict[str, Decimal] = {}
    buckets: dict[str, tuple[RolloverBucket, ...]] = {}
    for charge in ctx.subscription.plan.charges:
        carried: tuple[RolloverBucket, ...] = ()
        if charge.rollover is not None:
            carried = tuple(
                b
                for b in ctx.rollover_in.get(charge.id, ())
                if b.quantity > 0 and b.usable_in(ctx.period)
            )
            buckets[charge.id] = carried
        # Included quantity is not prorated for partial periods (only fixed fees are).
        allowances[charge.id] = charge.included_quantity + sum((b.quantity for b in carried), ZERO)
    return state.evolve(allowances=allowances, rollover_buckets=buckets)


def expiry(
    rule: RolloverRule, interval: Interval, earned_in: Period, zone: tzinfo = UTC
) -> datetime | None:
    """When quantity left unused in `earned_in` expires: the end of the N-th next period."""
    if rule.expiry_periods is None:
        return None
    period = earned_in
    for _ in range(rule.expiry_periods):
        period = next_period(interval, period, zone)
    return period.end


def carry_forward(
    rule: RolloverRule,
    interval: Interval,
    period: Period,
    carried: Sequence[RolloverBucket],
    included: Decimal,
    unused: Decimal,
    zone: tzinfo = UTC,
) -> tuple[RolloverBucket, ...]:
    """The buckets to store after `period`, oldest first.

    `unused` is the allowance the period left unused. Carried buckets are consumed
    before the period's own included quantity, oldest first (they expire sooner), so
    the unused part is the period's included quantity first, then the newest carry.
    Buckets that expire at the end of `period` are dropped; the optional cap limits
    the total carried balance by dropping the oldest quantity first.
    """
    left = unused
    fresh = min(left, included)
    left -= fresh
    kept: list[RolloverBucket] = []
    for bucket in reversed(carried):  # newest first: the oldest were consumed first
        take = min(left, bucket.quantity)
        left -= take
        if take > 0:
            kept.append(RolloverBucket(take, bucket.expires_at))
    kept.reverse()
    if fresh > 0:
        kept.append(RolloverBucket(fresh, expiry(rule, interval, period, zone)))
    kept = [b for b in kept if b.expires_at is None or b.expires_at > period.end]
    if rule.cap is not None:
        excess = sum((b.quantity for b in kept), ZERO) - rule.cap
        trimmed: list[RolloverBucket] = []
        for bucket in kept:  # oldest first
            drop = min(max(excess, ZERO), bucket.quantity)
            excess -= drop
            if bucket.quantity > drop:
                trimmed.append(RolloverBucket(bucket.quantity - drop, bucket.expires_at))
        kept = trimmed
    return tuple(kept)
