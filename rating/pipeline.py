"""The ten stages of period close, composed in the order of BILLING.md.

    Quota Check → Rollover → Aggregate → Allowance → Rate
        → Commit → Discount → Tax → Route → Settle

Each stage is a pure function of the previous state; `rate_subscription` is the whole
pipeline for one subscription and one period, taxed with the local rates table in
`BillingContext.tax_rates`. The rules are in docs/billing-rules.md.

An external tax provider (AvaTax, Vertex) is asked between Discount and Tax, outside
rating (no I/O here), so the pipeline also runs in two halves:

    state = rate_until_tax(context)            # Quota Check … Discount
    line_taxes = <ask the provider about state.lines>  (invoicing/tax/service.py)
    result = finish(state, line_taxes)         # Tax with those results, Route, Settle

`finish(state)` without results taxes with the local table: `rate_subscription(context)`
is exactly `finish(rate_until_tax(context))`.

After an invoice is written, the ledger stores what the result reports: the rollover
buckets (`rollover_out`), the coupons' use and remaining amounts (`coupon_uses`) and
the wallet debits (`wallet_debits`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import localcontext

from rating.context import (
    BillingContext,
    CouponUse,
    LineTaxes,
    RatingState,
    RolloverBucket,
    WalletDebit,
)
from rating.model import RatedInvoice
from rating.money import EXACT
from rating.stages.aggregate import aggregate
from rating.stages.allowance import allowance
from rating.stages.commit import commit
from rating.stages.discount import discount
from rating.stages.quota_check import quota_check
from rating.stages.rate import rate
from rating.stages.rollover import rollover
from rating.stages.route import route
from rating.stages.settle import settle
from rating.stages.tax import tax, tax_from_provider

Stage = Callable[[RatingState], RatingState]

# Stages 1-7: everything a tax provider needs to know about the invoice.
UNTIL_TAX: tuple[Stage, ...] = (
    quota_check, rollover, aggregate, allowance, rate, commit, discount,
)  # fmt: skip
# Stages 8-9 with the local table (Settle, stage 10, makes the invoice of the last state).
STAGES: tuple[Stage, ...] = (*UNTIL_TAX, tax, route)


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


def rate_until_tax(context: BillingContext) -> RatingState:
    """Stages 1-7 (Quota Check … Discount): the lines and their discounts, untaxed."""
    state = RatingState(context=context)
    # Every stage's arithmetic is exact: the default context would round a 29-digit
    # quantity at 28 digits, and EXACT turns any hidden rounding into an error.
    with localcontext(EXACT):
        for stage in UNTIL_TAX:
            state = stage(state)
    return state


def finish(state: RatingState, line_taxes: LineTaxes | None = None) -> RatingResult:
    """Stages 8-10 on the state `rate_until_tax` returned: Tax, Route, Settle.

    Without `line_taxes` the Tax stage applies the local rates table of the context;
    with them (a provider's per-line rate and exact amount, keyed by line position) it
    takes those instead. Exempt customers pay no tax either way.
    """
    with localcontext(EXACT):
        taxed = tax(state) if line_taxes is None else tax_from_provider(state, line_taxes)
        routed = route(taxed)
        return RatingResult(invoice=settle(routed), state=routed)


def rate_subscription(context: BillingContext) -> RatingResult:
    """Run the ten stages for one subscription and period, taxed with the local table."""
    return finish(rate_until_tax(context))
