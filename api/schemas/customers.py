"""Customers and their subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from api.schemas.common import Body, Public
from api.schemas.money import EndInstant, StartInstant, Timestamp
from invoicing.custom_sections import customer_codes
from invoicing.models import CustomerRow, SubscriptionRow
from invoicing.specs import CustomerPatch, CustomerSpec, PostalAddressSpec, SubscriptionSpec
from invoicing.subscriptions import public_status

# -- customers -------------------------------------------------------------------------


class CustomerCreate(Body):
    external_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=300)
    email: str | None = None
    currency: str = Field(min_length=3, max_length=3)
    country: str | None = None
    region: str | None = None
    tax_exempt: bool = False
    timezone: str | None = None
    invoice_grace_days: int = Field(default=0, ge=0)
    net_payment_term_days: int | None = Field(default=None, ge=0, le=3650)
    payment_provider: str | None = Field(
        default=None, description="stripe | adyen | gocardless | tap | moneyhash | …"
    )
    payment_provider_customer_id: str | None = Field(default=None, max_length=200)
    address_line1: str | None = Field(default=None, max_length=300)
    address_line2: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=40)
    tax_id: str | None = Field(default=None, max_length=100, description="VAT or GST number")
    metadata: dict[str, str] | None = Field(
        default=None, description="Your key/value texts: 50 keys, 40 and 500 characters"
    )
    billing_entity_code: str | None = Field(
        default=None, max_length=100, description="Its seller; default: the default entity"
    )
    invoice_custom_section_codes: list[str] | None = Field(
        default=None,
        description="The customer's own invoice custom sections, in print order "
        "(absent or empty: the tenant's appliesToAll sections)",
    )
    skip_invoice_custom_sections: bool | None = Field(
        default=None, description="true: the customer's invoices carry no custom sections"
    )

    # API.md: a field the contract does not know is a 422, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> CustomerSpec:
        return CustomerSpec(
            external_id=self.external_id,
            name=self.name,
            email=self.email,
            currency=self.currency,
            country=self.country,
            region=self.region,
            tax_exempt=self.tax_exempt,
            timezone=self.timezone,
            invoice_grace_days=self.invoice_grace_days,
            net_payment_term_days=self.net_payment_term_days,
            payment_provider=self.payment_provider,
            payment_provider_customer_id=self.payment_provider_customer_id,
            address=_address(self),
        )


class CustomerUpdate(Body):
    """Only the fields sent change; null clears email, country, region or a part of the
    address."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    email: str | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    country: str | None = None
    region: str | None = None
    tax_exempt: bool | None = None
    timezone: str | None = None
    invoice_grace_days: int | None = Field(default=None, ge=0)
    net_payment_term_days: int | None = Field(default=None, ge=0, le=3650)
    payment_provider: str | None = Field(
        default=None, description="stripe | adyen | gocardless | tap | moneyhash | …"
    )
    payment_provider_customer_id: str | None = Field(default=None, max_length=200)
    address_line1: str | None = Field(default=None, max_length=300)
    address_line2: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=40)
    tax_id: str | None = Field(default=None, max_length=100, description="VAT or GST number")
    metadata: dict[str, str | None] | None = Field(
        default=None, description="Keys sent are set, a key sent as null is removed"
    )
    billing_entity_code: str | None = Field(
        default=None, max_length=100, description="Move it (refused once it has invoices)"
    )
    invoice_custom_section_codes: list[str] | None = Field(
        default=None, description="Replaces the customer's own list ([]: none of its own)"
    )
    skip_invoice_custom_sections: bool | None = None

    model_config = ConfigDict(extra="forbid")

    def to_spec(self) -> CustomerPatch:
        return CustomerPatch(
            name=self.name,
            email=self.email,
            currency=self.currency,
            country=self.country,
            region=self.region,
            tax_exempt=self.tax_exempt,
            timezone=self.timezone,
            invoice_grace_days=self.invoice_grace_days,
            net_payment_term_days=self.net_payment_term_days,
            payment_provider=self.payment_provider,
            payment_provider_customer_id=self.payment_provider_customer_id,
            address=_address(self),
            sent=frozenset(self.model_fields_set),
        )


def _address(body: CustomerCreate | CustomerUpdate) -> PostalAddressSpec:
    return PostalAddressSpec(
        address_line1=body.address_line1,
        address_line2=body.address_line2,
        city=body.city,
        postal_code=body.postal_code,
        tax_id=body.tax_id,
    )


class SavedPaymentMethodPublic(Public):
    id: str = Field(description="the provider's id: a Stripe pm_…, a GoCardless mandate, …")
    provider: str = Field(description="charges at this provider use it")
    saved_at: Timestamp | None


class CustomerPublic(Public):
    id: str
    external_id: str
    name: str
    email: str | None
    currency: str
    country: str | None
    region: str | None
    tax_exempt: bool
    timezone: str
    invoice_grace_days: int
    net_payment_term_days: int | None
    payment_provider: str | None
    payment_provider_customer_id: str | None
    payment_method: SavedPaymentMethodPublic | None = Field(
        description="saved on a checkout page (POST /customers/{externalId}/checkout-url)"
    )
    created_at: Timestamp
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    tax_id: str | None
    metadata: dict[str, str]
    billing_entity_code: str | None = Field(
        description="The billing entity it is billed by (null: the tenant has none)"
    )
    invoice_custom_section_codes: list[str] = Field(default_factory=list)
    skip_invoice_custom_sections: bool = False

    @classmethod
    def from_row(cls, row: CustomerRow) -> CustomerPublic:
        return cls(
            id=row.id,
            external_id=row.external_id,
            name=row.name,
            email=row.email,
            currency=row.currency,
            country=row.country,
            region=row.region,
            tax_exempt=row.tax_exempt,
            timezone=row.timezone,
            invoice_grace_days=row.invoice_grace_days,
            net_payment_term_days=row.net_payment_term_days,
            payment_provider=row.payment_provider,
            payment_provider_customer_id=row.payment_provider_customer_id,
            payment_method=SavedPaymentMethodPublic(
                id=row.payment_method_id,
                provider=row.payment_method_provider,
                saved_at=row.payment_method_saved_at,
            )
            if row.payment_method_id and row.payment_method_provider
            else None,
            created_at=row.created_at,
            address_line1=row.address_line1,
            address_line2=row.address_line2,
            city=row.city,
            postal_code=row.postal_code,
            tax_id=row.tax_id,
            metadata=dict(row.meta or {}),
            billing_entity_code=row.billing_entity.code if row.billing_entity else None,
            invoice_custom_section_codes=customer_codes(row),
            skip_invoice_custom_sections=bool(row.skip_invoice_custom_sections),
        )


# -- subscriptions ---------------------------------------------------------------------


class SubscriptionCreate(Body):
    id: str | None = Field(default=None, min_length=1, max_length=40)
    customer_id: str
    plan_code: str
    start_date: StartInstant
    end_date: EndInstant = None
    overrides: dict[str, Any] | None = Field(
        default=None,
        description='Per charge (id or metric code): {"charges": {"api_calls": '
        '{"properties": {...}, "includedQuantity": "100", "filters": {...}}}}; "baseFee"; '
        '"addCharges": [charge as a plan\'s]; "removeCharges": [charge id or metric code] '
        "(docs/subscription-lifecycle.md)",
    )

    def to_spec(self) -> SubscriptionSpec:
        return SubscriptionSpec(
            id=self.id,
            customer_id=self.customer_id,
            plan_code=self.plan_code,
            start_date=self.start_date,
            end_date=self.end_date,
            overrides=self.overrides or {},
        )


class SubscriptionPublic(Public):
    id: str
    customer_id: str
    plan_code: str
    start_date: Timestamp
    end_date: Timestamp | None
    status: str
    overrides: dict[str, Any]
    created_at: Timestamp
    terminated_at: Timestamp | None
    name: str | None = None
    previous_subscription_id: str | None = None
    next_subscription_id: str | None = None

    @classmethod
    def from_row(cls, row: SubscriptionRow, now: datetime | None = None) -> SubscriptionPublic:
        """The subscription; with `now`, `pending` until it starts."""
        return cls(
            id=row.id,
            name=row.name,
            previous_subscription_id=row.previous_subscription_id,
            next_subscription_id=row.next_subscription_id,
            customer_id=row.customer.external_id,
            plan_code=row.plan.code,
            start_date=row.start_date,
            end_date=row.end_date,
            status=row.status if now is None else public_status(row, now),
            overrides=row.overrides or {},
            created_at=row.created_at,
            terminated_at=row.terminated_at,
        )
