"""Payments, payment providers and the dunning schedule."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import Body, Public
from api.schemas.money import Decimal_, StateCheckedDecimal, Timestamp, money
from invoicing.dunning import Policy
from invoicing.models import DunningStepRow, PaymentProviderRow, PaymentRow
from invoicing.payments.providers import public_config


class PaymentCreate(Body):
    amount: StateCheckedDecimal
    reference: str | None = Field(default=None, max_length=200)


class PaymentPublic(Public):
    id: str
    invoice_id: str
    amount: Decimal_
    currency: str | None
    reference: str | None
    provider: str | None = Field(description="null for a payment recorded by hand")
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: PaymentRow) -> PaymentPublic:
        return cls(
            id=row.id,
            invoice_id=row.invoice_id,
            amount=money(row.amount, row.currency) if row.currency else row.amount,
            currency=row.currency,
            reference=row.reference,
            provider=row.provider,
            created_at=row.created_at,
        )


class PaymentProviderCreate(Body):
    provider: str = Field(description="stripe | adyen | gocardless | tap | moneyhash | …")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description='Stripe: {"secretKey", "baseUrl"?}; Adyen: {"apiKey", "merchantAccount", '
        '"hmacKey"?}; GoCardless: {"accessToken", "webhookSecret"?}; Flutterwave: '
        '{"secretKey", "secretHash"?} (docs/payment-providers.md)',
    )


class PaymentProviderUpdate(Body):
    config: dict[str, Any]


class PaymentProviderPublic(Public):
    id: str
    provider: str
    config: dict[str, Any] = Field(description="secrets are shown masked")
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: PaymentProviderRow) -> PaymentProviderPublic:
        return cls(
            id=row.id,
            provider=row.provider,
            config=public_config(row.config),
            created_at=row.created_at,
        )


class DunningStepIn(Body):
    after_days: int = Field(ge=1, le=3650, description="days after dueAt")


class DunningPolicyIn(Body):
    steps: list[DunningStepIn] = Field(min_length=5, max_length=5)
    uncollectible_after_days: int = Field(ge=1, le=3650)


class DunningStepOut(Public):
    after_days: int


class DunningPolicyPublic(Public):
    steps: list[DunningStepOut]
    uncollectible_after_days: int

    @classmethod
    def of(cls, policy: Policy) -> DunningPolicyPublic:
        return cls(
            steps=[DunningStepOut(after_days=d) for d in policy.steps],
            uncollectible_after_days=policy.uncollectible_after_days,
        )


class DunningStepPublic(Public):
    step: int
    at: Timestamp
    scheduled_at: Timestamp = Field(description="dueAt + the step's afterDays")
    payment_attempted: bool
    result: str = Field(
        description="reminded | skipped (caught up) | payment_succeeded | payment_failed"
    )

    @classmethod
    def from_row(cls, row: DunningStepRow) -> DunningStepPublic:
        return cls(
            step=row.step,
            at=row.at,
            scheduled_at=row.due_at,
            payment_attempted=row.payment_attempted,
            result=row.result,
        )


class DunningStepList(Public):
    data: list[DunningStepPublic]
