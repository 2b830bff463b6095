"""The portal link and the account API's responses: what one customer sees of itself.

Invoices, wallets, subscriptions and plans are shown with the tenant API's own models
(a customer reads the same fields its tenant does); the usage read-out adds each
metric's included quantity and the projected invoice of the period.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from api.schemas.catalog import PlanPublic
from api.schemas.common import Body, Public
from api.schemas.customers import SubscriptionPublic
from api.schemas.money import Timestamp
from api.schemas.usage import UsageMetricPublic

# A portal link lives from one minute to seven days; an hour unless asked.
DEFAULT_LIFETIME_MINUTES = 60
MAX_LIFETIME_MINUTES = 7 * 24 * 60


class PortalUrlCreate(Body):
    expires_in_minutes: int = Field(
        default=DEFAULT_LIFETIME_MINUTES,
        ge=1,
        le=MAX_LIFETIME_MINUTES,
        description="How long the link (and the portal session it opens) is valid: "
        f"1 to {MAX_LIFETIME_MINUTES} minutes, {DEFAULT_LIFETIME_MINUTES} by default",
    )

    model_config = ConfigDict(extra="forbid")


class PortalUrlPublic(Public):
    url: str = Field(description="The portal page; it trades the token for a session cookie")
    token: str = Field(description="Bearer token of the account API (/api/v1/account/*)")
    expires_at: Timestamp


class AccountCustomer(Public):
    external_id: str
    name: str
    email: str | None
    currency: str


class AccountSubscription(Public):
    """The customer and its current subscription (active now, latest start first; else
    the next to start; else null) with the plan it is on."""

    customer: AccountCustomer
    subscription: SubscriptionPublic | None
    plan: PlanPublic | None


class AccountUsageMetric(UsageMetricPublic):
    included_quantity: str | None = Field(
        None,
        description="the plan's included quantity of this metric per period "
        "(absent when none, or when several charges bill the metric)",
    )


class ProjectedLine(Public):
    type: str
    description: str
    amount: str


class ProjectedInvoice(Public):
    """The current period's invoice as it stands to be: the usage-independent lines and
    the usage amount projected to the period's end; before discounts, taxes, wallet
    credits and credit notes."""

    period_start: Timestamp
    period_end: Timestamp
    currency: str
    fixed_lines: list[ProjectedLine]
    usage_amount: str
    subtotal: str
    metrics: list[UsageMetricPublic]


class AccountUsage(Public):
    """The current billing period's exact usage so far, with the included and capped
    quantities, and the projected invoice (null without a current subscription)."""

    customer_id: str
    from_: str = Field(alias="from")
    to: str
    currency: str
    metrics: list[AccountUsageMetric]
    amount: str
    projected: ProjectedInvoice | None
