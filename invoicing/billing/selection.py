"""Which (subscription, period) items a bill run invoices: pure, no ledger access.

A run over a window bills every calendar period of a subscription's plan that ends in
the window and overlaps the subscription's active dates, unless that period already
has an invoice (the ledger's unique key: re-running a period creates nothing).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rating.model import Period, Subscription
from rating.periods import periods_within
from streams.billing_usage import UsageRequest

LONGEST_PERIOD = timedelta(days=366)  # a leap year, the longest billing period

InvoicedKey = tuple[str, datetime, datetime]
"""(subscription id, period start, period end) of an invoice the ledger holds."""


@dataclass(frozen=True)
class BillingItem:
    """One subscription and one of its periods to invoice."""

    key: str
    subscription: Subscription
    period: Period
    active: Period  # the part of the period in which the subscription is active
    customer_row_id: str

    @property
    def usage_request(self) -> UsageRequest:
        """What the usage source is asked for this item."""
        return UsageRequest(
            key=self.key,
            customer_id=self.subscription.customer.external_id,
            active=self.active,
            period=self.period,
            charges=self.subscription.plan.charges,
        )


def earliest_end(window: Period) -> datetime:
    """Subscriptions that ended before this instant have nothing to bill in the window.

    A period billed by the run ends in the window but may start up to a year before it
    (a quarter ending in the window): only subscriptions that ended before the longest
    possible period are left out when loading; `items_to_bill` decides exactly.
    """
    return window.start - LONGEST_PERIOD


def items_to_bill(
    subscriptions: Iterable[tuple[Subscription, str]],
    window: Period,
    invoiced: Container[InvoicedKey],
) -> list[BillingItem]:
    """The items of `subscriptions` ((subscription, customer row id) pairs, in billing
    order) that a run over `window` invoices, given the keys already invoiced."""
    items = []
    for subscription, customer_row_id in subscriptions:
        for period in periods_within(subscription.plan.interval, window):
            active = period.overlap(subscription.start, subscription.end)
            if active is None or (subscription.id, period.start, period.end) in invoiced:
                continue
            items.append(
                BillingItem(
                    f"{subscription.id}|{period.start.isoformat()}",
                    subscription.for_period(period.start),
                    period,
                    active,
                    customer_row_id,
                )
            )
    return items
