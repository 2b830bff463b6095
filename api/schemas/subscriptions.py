"""Subscription lifecycle requests: update, terminate, change plan."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Public
from api.schemas.customers import SubscriptionPublic
from api.schemas.money import EndInstant
from invoicing.subscriptions import SubscriptionPatch


class SubscriptionUpdate(Body):
    name: str | None = Field(default=None, max_length=200)
    end_date: EndInstant = None
    overrides: dict[str, Any] | None = Field(
        default=None,
        description='Replaces the overrides: {"baseFee": "…", "charges": {…}, "addCharges": '
        '[charge], "removeCharges": [charge id or metric code]} '
        "(docs/subscription-lifecycle.md)",
    )

    model_config = ConfigDict(extra="forbid")

    def to_patch(self) -> SubscriptionPatch:
        return SubscriptionPatch(
            sent=frozenset(self.model_fields_set),
            name=self.name,
            end_date=self.end_date,
            overrides=self.overrides,
        )


class TerminateRequest(Body):
    at: EndInstant = Field(default=None, description="default: now")
    final_invoice: bool = True
    credit_unused_advance_fees: bool = True

    model_config = ConfigDict(extra="forbid")


class ChangePlanRequest(Body):
    plan_code: str = Field(min_length=1)
    at: Literal["periodEnd"] | EndInstant = Field(
        default=None, description='an instant (default: now) or "periodEnd"'
    )

    model_config = ConfigDict(extra="forbid")


class TerminationPublic(SubscriptionPublic):
    """The subscription as ended, with what its ending billed and credited."""

    final_invoice_ids: list[str]
    credit_note_ids: list[str]


class PlanChangePublic(Public):
    """The ended (or ending) subscription and the one that follows it."""

    previous: SubscriptionPublic
    subscription: SubscriptionPublic
    final_invoice_ids: list[str]
    credit_note_ids: list[str]
