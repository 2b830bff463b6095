"""What a payment provider does for us, whatever its API: charge a customer's saved
payment method for an invoice, or refund part of a charge.

A provider's answer is one of three: the money moved (`succeeded`), the provider
refused (`declined`: a card declined, no payment method; retrying the same request
changes nothing, a later dunning step may), or we could not tell (`PaymentUnavailable`
after the adapter's own retries: the attempt failed and dunning tries again later,
under a new idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from core.errors import Transient

PROVIDERS = ("stripe", "adyen", "gocardless", "tap", "moneyhash", "flutterwave", "cashfree")
# Providers with an adapter today; the others come with the integrations issue.
SUPPORTED = ("stripe",)


@dataclass(frozen=True)
class ChargeRequest:
    tenant_id: str
    invoice_id: str
    invoice_number: str | None
    customer_reference: str  # the customer's id at the provider (Stripe: cus_…)
    amount: Decimal  # in the currency's major unit, exact
    currency: str
    idempotency_key: str


@dataclass(frozen=True)
class RefundRequest:
    charge_reference: str  # the provider's id of the charge (Stripe: pi_…)
    amount: Decimal
    currency: str
    idempotency_key: str


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    reference: str | None = None  # the provider's id of the charge or refund
    error: str | None = None  # why it was declined, for people


class PaymentUnavailable(Transient):
    """The provider could not be reached or kept failing: nothing is known to have moved."""

    code = "payment_provider_unavailable"


class PaymentGateway(Protocol):
    name: str

    def charge(self, request: ChargeRequest) -> Outcome: ...

    def refund(self, request: RefundRequest) -> Outcome: ...

    def close(self) -> None: ...
