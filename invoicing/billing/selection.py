"""Which (subscription, period) items a bill run invoices: pure, no ledger access.

A run over a window bills every calendar period of a subscription's plan that ends in
the window and overlaps the subscription's active dates, unless that period already
has an invoice (the ledger's unique key: re-running a period creates nothing).

A window of UTC midnights is a range of calendar dates: each customer's periods are
its local ones, and a run bills those whose local end falls in the window's dates read
in the customer's zone (the October run bills every customer's local October;
docs/customer-timezones.md). A run may be told `ended_by` (the scheduler's `now`): it
then leaves out periods that have not ended by then, for a later pass to bill.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rating.model import Period, Subscription
from rating.periods import local_window, periods_within
from streams.billing_usage import UsageRequest

LONGEST_PERIOD = timedelta(days=366)  # a leap year, the longest billing period
# Local midnights lie within a day of the UTC midnight of the same date (UTC−12 to
# UTC+14): what the ledger is asked for is the window widened by it.
ZONE_MARGIN = timedelta(days=1)

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
    return window.start - LONGEST_PERIOD - ZONE_MARGIN


def ledger_window(window: Period) -> Period:
    """`window` widened to hold every zone's local periods of its dates: the bounds of
    the ledger reads (subscriptions starting before its end, invoices overlapping it)."""
    return Period(window.start - ZONE_MARGIN, window.end + ZONE_MARGIN)


def items_to_bill(
    subscriptions: Iterable[tuple[Subscription, str]],
    window: Period,
    invoiced: Container[InvoicedKey],
    ended_by: datetime | None = None,
) -> list[BillingItem]:
    """The items of `subscriptions` ((subscription, customer row id) pairs, in billing
    order) that a run over `window` invoices, given the keys already invoiced; with
    `ended_by`, only periods that have ended by then."""
    items = []
    for subscription, customer_row_id in subscriptions:
        zone = subscription.customer.zone
        for period in periods_within(subscription.plan.interval, local_window(window, zone), zone):
            if ended_by is not None and period.end > ended_by:
                continue
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
