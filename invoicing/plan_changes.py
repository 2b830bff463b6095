"""Plan update (with or without cascade) and archive: docs/plan-changes.md.

Without cascade, every subscription of the plan keeps the definition it had: it is
pinned on the subscription (invoicing/plan_versions.py) and the plan row takes the new
one, for subscriptions created from then on. With cascade, subscriptions without
overrides follow from their next period: the old definition is pinned only for the
periods that start before the end of the current one; subscriptions with overrides
keep the old definition for good, as without cascade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, ValidationFailed
from invoicing import catalog, plan_versions
from invoicing.models import BillableMetric, PlanRow, SubscriptionRow
from invoicing.specs import ChargeSpec, EntitlementSpec, FixedChargeSpec, UsageThresholdSpec
from rating.model import Interval
from rating.money import ZERO
from rating.periods import period_containing, zone_of


@dataclass(frozen=True)
class PlanPatch:
    """What a PATCH sends; `sent` names the fields given (a null clears an optional one)."""

    name: str | None = None
    description: str | None = None
    base_fee: Decimal | None = None
    pay_in_advance: bool | None = None
    trial_days: int | None = None
    minimum_commitment: Decimal | None = None
    maximum_spend: Decimal | None = None
    charges: tuple[ChargeSpec, ...] | None = None
    fixed_charges: tuple[FixedChargeSpec, ...] | None = None
    usage_thresholds: tuple[UsageThresholdSpec, ...] | None = None
    entitlements: tuple[EntitlementSpec, ...] | None = None
    cascade: bool = False
    sent: frozenset[str] = field(default_factory=frozenset)


def _apply(session: Session, row: PlanRow, patch: PlanPatch) -> None:
    """Write the patch's definition fields on the row, under the rules of creation."""
    if patch.name is not None:
        row.name = patch.name
    if "description" in patch.sent:
        row.description = patch.description
    if "base_fee" in patch.sent:
        row.base_fee = catalog.non_negative(patch.base_fee, "baseFee") or ZERO
    if patch.pay_in_advance is not None:
        row.pay_in_advance = patch.pay_in_advance
    if patch.trial_days is not None:
        if patch.trial_days < 0:
            raise ValidationFailed("trialDays must not be negative")
        row.trial_days = patch.trial_days
    if "minimum_commitment" in patch.sent:
        row.minimum_commitment = catalog.non_negative(patch.minimum_commitment, "minimumCommitment")
    if "maximum_spend" in patch.sent:
        row.maximum_spend = catalog.non_negative(patch.maximum_spend, "maximumSpend")
    minimum, maximum = row.minimum_commitment, row.maximum_spend
    if minimum is not None and maximum is not None and maximum < minimum:
        raise ValidationFailed("maximumSpend must not be below minimumCommitment")
    if patch.charges is not None:
        codes = sorted({c.metric for c in patch.charges})
        known = {
            m.code: m
            for m in session.execute(
                select(BillableMetric).where(
                    BillableMetric.tenant_id == row.tenant_id, BillableMetric.code.in_(codes)
                )
            ).scalars()
        }
        charges = [catalog.charge_doc(c, i, known) for i, c in enumerate(patch.charges)]
        ids = [c["id"] for c in charges]
        if len(set(ids)) != len(ids):
            raise ValidationFailed("charges: a charge id is given twice")
        row.charges = charges
    if patch.fixed_charges is not None:
        row.fixed_charges = catalog.fixed_charge_docs(
            session, row.tenant_id, row.currency, patch.fixed_charges
        )
    if patch.usage_thresholds is not None:
        row.usage_thresholds = catalog.usage_thresholds_doc(
            [{"amount": t.amount, "recurring": t.recurring} for t in patch.usage_thresholds],
            "usageThresholds",
        )


def update_plan(
    session: Session, tenant_id: str, code: str, patch: PlanPatch, now: datetime
) -> PlanRow:
    """Change a plan; existing subscriptions keep what they had unless `cascade` lets
    those without overrides follow from their next period."""
    row = catalog.get_plan(session, tenant_id, code)
    if row.archived_at is not None:
        raise Conflict(f"plan {code!r} is archived", code="plan_archived")
    before = plan_versions.definition(row)
    _apply(session, row, patch)
    if patch.entitlements is not None:
        from invoicing.features import set_plan_entitlements

        set_plan_entitlements(session, tenant_id, row, patch.entitlements)
    if plan_versions.definition(row) == before:
        return row  # nothing billed changed: no subscription needs a pin
    subscriptions = session.execute(
        select(SubscriptionRow).where(
            SubscriptionRow.tenant_id == tenant_id, SubscriptionRow.plan_id == row.id
        )
    ).scalars()
    for sub in subscriptions:
        # The end of the customer's current (local) period: with cascade, the first
        # period the new definition bills.
        boundary = period_containing(
            Interval(row.interval), now, zone_of(sub.customer.timezone)
        ).end
        follows = patch.cascade and not sub.overrides
        if follows and sub.start_date >= boundary:
            continue  # it has not billed anything: it starts on the new definition
        pins = plan_versions.add_pin(sub.plan_versions, before, boundary if follows else None)
        if pins is not None:
            sub.plan_versions = pins
    return row


def archive_plan(session: Session, tenant_id: str, code: str, now: datetime) -> PlanRow:
    """Archive a plan: out of lists, no new subscriptions; existing ones go on billing."""
    row = catalog.get_plan(session, tenant_id, code)
    if row.archived_at is not None:
        raise Conflict(f"plan {code!r} is already archived", code="plan_archived")
    row.archived_at = now
    return row
