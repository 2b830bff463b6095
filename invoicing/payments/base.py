"""What a payment provider does for us, whatever its API: charge a customer's saved
payment method for an invoice, or refund part of a charge.

A provider's answer is one of four: the money moved (`succeeded`), the provider
accepted the charge and tells the result later by webhook (`pending`: a direct debit
being collected), the provider refused (`declined`: a card declined, no payment method;
retrying the same request changes nothing, a later dunning step may), or we could not
tell (`PaymentUnavailable` after the adapter's own retries: the attempt failed and
dunning tries again later, under a new idempotency key).

Besides charging, a gateway makes a hosted payment page for an invoice
(`payment_link`), some make a page where a customer saves a payment method
(`SavesPaymentMethods.checkout`), and each adapter module reads the provider's signed
notifications (`verify_webhook(config, headers, body, now) -> list[WebhookResult]`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from core.errors import DomainError, InvalidInput, Transient
from rating.money import minor_units

PROVIDERS = ("stripe", "adyen", "gocardless", "tap", "moneyhash", "flutterwave", "cashfree")
# Providers with an adapter (all of them, since the integrations issue).
SUPPORTED = ("stripe", "adyen", "gocardless", "tap", "moneyhash", "flutterwave", "cashfree")


@dataclass(frozen=True)
class ChargeRequest:
    tenant_id: str
    invoice_id: str
    invoice_number: str | None
    customer_reference: str  # the customer's id at the provider (Stripe: cus_…)
    amount: Decimal  # in the currency's major unit, exact
    currency: str
    idempotency_key: str
    customer_email: str | None = None  # the few providers that want it (Flutterwave)
    # The method the customer saved through a checkout page (invoicing/payments/
    # checkout.py): a Stripe pm_…, a GoCardless mandate MD…, an Adyen stored payment
    # method id. None: the adapter finds one from `customer_reference`, as before.
    payment_method: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    charge_reference: str  # the provider's id of the charge (Stripe: pi_…)
    amount: Decimal
    currency: str
    idempotency_key: str


@dataclass(frozen=True)
class LinkRequest:
    """A hosted payment page for what an invoice still owes."""

    tenant_id: str
    invoice_id: str
    invoice_number: str | None
    amount: Decimal  # in the currency's major unit, exact
    currency: str
    # Ours, unique per link: sent as the provider's idempotency key AND as the merchant
    # reference / metadata its notifications carry back (`WebhookResult.ours`).
    idempotency_key: str
    expires_at: datetime
    customer_reference: str | None = None  # the customer's id at the provider, if any
    customer_email: str | None = None
    customer_name: str | None = None
    success_url: str | None = None  # where the payer lands after paying
    cancel_url: str | None = None
    # When it was asked (the runtime's clock), for providers that take a lifetime
    # rather than an end (MoneyHash's expires_after_seconds).
    requested_at: datetime | None = None


@dataclass(frozen=True)
class PaymentLink:
    url: str  # the page the payer opens
    reference: str  # the provider's id of the link, session or order
    expires_at: datetime | None  # when the provider stops taking payments on it


@dataclass(frozen=True)
class CheckoutRequest:
    """A hosted page at the provider where a customer saves a payment method for later
    charges, paying nothing (`POST /customers/{externalId}/checkout-url`)."""

    tenant_id: str
    customer_id: str  # ours (cus_…), echoed back in the provider's metadata or reference
    customer_external_id: str
    currency: str  # the customer's: what the saved method will be charged in
    # Ours, unique per page, `<customer id>/checkout-<12 hex>`: the provider's idempotency
    # key and the reference its notification about the saved method echoes back.
    idempotency_key: str
    expires_at: datetime
    customer_reference: str | None = None  # the customer's id at the provider, if any
    customer_email: str | None = None
    customer_name: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None


@dataclass(frozen=True)
class CheckoutLink:
    url: str  # the page the customer opens
    reference: str  # the provider's id of the session, billing request or link
    expires_at: datetime | None
    # The customer's id at the provider the method is saved for, when the page named
    # one we did not have (Adyen: the shopperReference chosen): stored on the customer.
    customer_reference: str | None = None


CHECKOUT_KEY = "/checkout-"


def checkout_customer(key: str | None) -> str | None:
    """Our customer id in a checkout key (`cus_…/checkout-3` -> `cus_…`); None for any
    other key (a charge's, a link's)."""
    if not key or CHECKOUT_KEY not in key:
        return None
    return key.split(CHECKOUT_KEY, 1)[0] or None


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    reference: str | None = None  # the provider's id of the charge or refund
    error: str | None = None  # why it was declined, for people
    # Accepted, not yet collected (a direct debit): `succeeded` is False and the
    # provider's webhook tells the result; nothing is charged again meanwhile.
    pending: bool = False


@dataclass(frozen=True)
class WebhookResult:
    """What a verified provider notification says about one charge or refund."""

    reference: str  # the provider's id of the charge or refund, as `Outcome.reference`
    succeeded: bool  # the money moved (False: it failed; see `final`)
    event_id: str  # stable across the provider's redeliveries: the key to deduplicate on
    # "method": a payment method saved (or lost) through a checkout page; `reference`
    # is then the provider's id of what reported it (a SetupIntent, a mandate).
    kind: Literal["charge", "refund", "method"] = "charge"
    # False: a step on the way (created, submitted, processing): recorded, no effect.
    final: bool = True
    # Our idempotency key as the provider echoes it (metadata, merchant reference,
    # tx_ref): how a payment made on a hosted link finds its invoice.
    ours: str | None = None
    # What was paid, where the provider says (major unit, exact): a payment for less
    # than the attempt, or in another currency, is not applied.
    amount: Decimal | None = None
    currency: str | None = None
    # kind "method": the saved method's id (None: this notice does not name it) and the
    # customer's id at the provider.
    method: str | None = None
    customer_reference: str | None = None


class WebhookRejected(DomainError):
    """A notification whose signature, timestamp or shape is not the provider's. Not
    `InvalidInput` (422): it is answered 400, the status every provider documents for
    a notification not accepted."""

    code = "webhook_rejected"


class PaymentUnavailable(Transient):
    """The provider could not be reached or kept failing: nothing is known to have moved."""

    code = "payment_provider_unavailable"


class ProviderConfig(BaseModel):
    """A tenant's connection to one provider, as stored (camelCase keys, no others)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    # Where the vendor's API is; tests point it at a local server standing in for it.
    base_url: str | None = Field(default=None, pattern=r"^https?://")


C = TypeVar("C", bound=ProviderConfig)


def parse_config(model: type[C], config: Mapping[str, Any]) -> C:
    """`config` checked against the provider's model; what is wrong, as InvalidInput."""
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in ("config", *error["loc"]))
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{where}: {message}")
        raise InvalidInput("; ".join(problems)) from None


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` in the currency's smallest unit: Decimal('12.34') USD -> 1234, JPY 500 ->
    500. An amount finer than the minor unit is refused, never rounded here."""
    scaled = amount.scaleb(minor_units(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def key_uuid(key: str) -> str:
    """A UUID standing for an idempotency key, for providers that take only UUIDs: the
    same key always gives the same UUID (version-4 form, bits from SHA-256 of the key),
    so a retry or a second pass carries the same one."""
    digest = bytearray(hashlib.sha256(key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(digest)))


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """HTTP headers by lower-cased name (names are case-insensitive on the wire)."""
    return {name.lower(): value for name, value in headers.items()}


@runtime_checkable
class ConfirmsNotifications(Protocol):
    """A gateway whose provider's notification signature does not cover the body
    (Flutterwave's verif-hash is a shared secret sent as it is): a success it reports is
    asked of the provider's API before it is applied."""

    def confirm(self, result: WebhookResult) -> WebhookResult: ...


@runtime_checkable
class SavesPaymentMethods(Protocol):
    """A gateway whose provider has a hosted page where a customer saves a payment
    method without paying (Stripe Checkout in setup mode, a GoCardless mandate flow,
    an Adyen zero-value link). Gateways without one answer `checkout_unsupported`."""

    def checkout(self, request: CheckoutRequest) -> CheckoutLink: ...


class PaymentGateway(Protocol):
    name: str

    def charge(self, request: ChargeRequest) -> Outcome: ...

    def refund(self, request: RefundRequest) -> Outcome: ...

    def payment_link(self, request: LinkRequest) -> PaymentLink: ...

    def close(self) -> None: ...
