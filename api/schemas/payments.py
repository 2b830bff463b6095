"""Payments, payment providers and the dunning schedule."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import Body, Public
from api.schemas.money import Decimal_, StateCheckedDecimal, Timestamp, money
from invoicing.dunning import Policy
from invoicing.models import (
    DunningStepRow,
    PaymentAttemptRow,
    PaymentNotificationRow,
    PaymentProviderRow,
    PaymentRow,
)
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


class PaymentUrlIn(Body):
    success_url: str | None = Field(
        default=None, pattern=r"^https?://", max_length=2000, description="after paying"
    )
    cancel_url: str | None = Field(
        default=None, pattern=r"^https?://", max_length=2000, description="on giving up"
    )


class PaymentUrlPublic(Public):
    invoice_id: str
    provider: str
    url: str = Field(description="the provider's hosted page for what the invoice owes")
    reference: str | None = Field(description="the provider's id of the link or session")
    amount: Decimal_
    currency: str
    expires_at: Timestamp | None

    @classmethod
    def from_row(cls, row: PaymentAttemptRow) -> PaymentUrlPublic:
        return cls(
            invoice_id=row.invoice_id,
            provider=row.provider,
            url=row.url or "",
            reference=row.provider_reference,
            amount=money(row.amount, row.currency),
            currency=row.currency,
            expires_at=row.expires_at,
        )


class CheckoutUrlIn(Body):
    success_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2000,
        description="where the customer lands once the method is saved (Stripe needs it)",
    )
    cancel_url: str | None = Field(
        default=None, pattern=r"^https?://", max_length=2000, description="on giving up"
    )


class CheckoutUrlPublic(Public):
    customer_id: str = Field(description="the customer's externalId")
    provider: str
    url: str = Field(description="the provider's page where the customer saves a method")
    expires_at: Timestamp | None


class WebhookReceipt(Public):
    received: int = Field(description="results the post carried")
    applied: int = Field(description="results that changed an invoice, attempt or refund")
    ignored: int = Field(description="results about nothing of ours, or not final yet")
    duplicates: int = Field(description="results whose event id was received before")


class PaymentNotificationPublic(Public):
    id: str
    event_id: str
    kind: str
    reference: str
    succeeded: bool
    final: bool
    effect: str
    detail: str | None
    invoice_id: str | None
    received_at: Timestamp

    @classmethod
    def from_row(cls, row: PaymentNotificationRow) -> PaymentNotificationPublic:
        return cls(
            id=row.id,
            event_id=row.event_id,
            kind=row.kind,
            reference=row.reference,
            succeeded=row.succeeded,
            final=row.final,
            effect=row.effect,
            detail=row.detail,
            invoice_id=row.invoice_id,
            received_at=row.received_at,
        )


class PaymentNotificationList(Public):
    data: list[PaymentNotificationPublic]
