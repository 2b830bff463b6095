"""The ten stages of period close, composed in the order of BILLING.md.

    Quota Check → Rollover → Aggregate → Allowance → Rate
        → Commit → Discount → Tax → Route → Settle

Each stage is a pure function of the previous state; `rate_subscription` is the whole
pipeline for one subscription and one period. The rules are in docs/billing-rules.md.

After an invoice is written, the ledger stores what the result reports: the rollover
buckets (`rollover_out`), the coupons' use and remaining amounts (`coupon_uses`) and
the wallet debits (`wallet_debits`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rating.context import (
    BillingContext,
    CouponUse,
    RatingState,
    RolloverBucket,
    WalletDebit,
)
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

    @property
    def rollover_out(self) -> Mapping[str, tuple[RolloverBucket, ...]]:
        return self.state.rollover_out


def rate_subscription(context: BillingContext) -> RatingResult:
    """Run the ten stages for one subscription and period."""
    state = RatingState(context=context)
    for stage in STAGES:
        state = stage(state)
    return RatingResult(invoice=settle(state), state=state)
