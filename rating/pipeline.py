"""The ten stages of period close, composed in the order of BILLING.md.

    Quota Check → Rollover → Aggregate → Allowance → Rate
        → Commit → Discount → Tax → Route → Settle

Each stage is a pure function of the previous state; `rate_subscription` is the whole
pipeline for one subscription and one period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rating.context import BillingContext, CouponUse, RatingState, WalletDebit
from rating.model import RatedInvoice
from rating.stages.aggregate import aggregate
from rating.stages.allowance import allowance
from rating.stages.commit import commit
from rating.stages.discount import discount
from rating.stages.quota_check import quota_check
from rating.stages.rate import rate
from rating.stages.rollover import rollover
from rating.stages.route import route
from rating.stages.settle import settle
from rating.stages.tax import tax

Stage = Callable[[RatingState], RatingState]

STAGES: tuple[Stage, ...] = (
    quota_check, rollover, aggregate, allowance, rate, commit, discount, tax, route,
)  # fmt: skip


@dataclass(frozen=True)
class RatingResult:
    invoice: RatedInvoice
    state: RatingState  # the last state: rollover out, coupon uses, wallet debits

    @property
    def coupon_uses(self) -> tuple[CouponUse, ...]:
        return self.state.coupon_uses

    @property
    def wallet_debits(self) -> tuple[WalletDebit, ...]:
        return self.state.wallet_debits


def rate_subscription(context: BillingContext) -> RatingResult:
    """Run the ten stages for one subscription and period."""
    state = RatingState(context=context)
    for stage in STAGES:
        state = stage(state)
    return RatingResult(invoice=settle(state), state=state)
