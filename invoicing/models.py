"""Ledger tables (SQLAlchemy 2). Every row belongs to a tenant.

Schema changes go through numbered Alembic migrations in infra/ledger/versions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.ids import new_id
from invoicing.db import Money, UTCDateTime
from rating.money import ZERO

__all__ = ["new_id"]  # re-exported: the ledger modules take ids from here


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    # Only a SHA-256 of the key is stored; the key itself is shown once at creation.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BillableMetric(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    aggregation: Mapped[str] = mapped_column(String(20))
    field: Mapped[str] = mapped_column(String(100), default="value")
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    group_by: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # round | ceil | floor of each period quantity, to `rounding_precision` decimals
    # (negative: tens, hundreds …); none: the exact quantity (docs/aggregations.md).
    rounding_function: Mapped[str | None] = mapped_column(String(10), nullable=True)
    rounding_precision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PlanRow(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(12))
    base_fee: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    pay_in_advance: Mapped[bool] = mapped_column(Boolean, default=False)
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    minimum_commitment: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    maximum_spend: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    # Usage charges and fixed charges are documents of the plan (each with its own id).
    charges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    fixed_charges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Progressive billing: [{"amount": "100", "recurring": false}, ...] (decimal text).
    usage_thresholds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Archived plans (DELETE) take no new subscriptions; existing ones go on billing.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Features the plan grants (docs/features-and-entitlements.md), by feature code.
    entitlements: Mapped[list[EntitlementRow]] = relationship(
        lazy="selectin",
        order_by="[EntitlementRow.created_at, EntitlementRow.id]",
        cascade="all, delete-orphan",
    )


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tax_exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    invoice_grace_days: Mapped[int] = mapped_column(Integer, default=0)
    # Days from issue to due date; None: the process's default (invoice_due_days).
    net_payment_term_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Who collects this customer's invoices (a tenant's payment provider) and the
    # customer's id there (a Stripe `cus_…`); None: payments are recorded by hand.
    payment_provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payment_provider_customer_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The method the customer saved on a checkout page (invoicing/payments/checkout.py),
    # as the provider that reported it names it: later charges at that provider use it.
    payment_method_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payment_method_provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payment_method_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The buyer's postal address and tax id, as the invoice documents show them.
    address_line1: Mapped[str | None] = mapped_column(String(300), nullable=True)
    address_line2: Mapped[str | None] = mapped_column(String(300), nullable=True)
    city: Mapped[str | None] = mapped_column(String(200), nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    tax_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The tenant's own key/value pairs ({"crm_id": "42"}); bounded in invoicing/customers.py.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Soft delete: hidden from the API, its invoices and history kept; its externalId
    # stays taken (docs/coupons-taxes-customers.md).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Invoice custom sections (docs/invoice-custom-sections.md): the codes of the
    # customer's own list, in print order (None or empty: the tenant's appliesToAll
    # sections), and whether its invoices carry none at all (None: false).
    invoice_custom_section_codes: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    skip_invoice_custom_sections: Mapped[bool | None] = mapped_column(
        Boolean, default=False, nullable=True
    )
    # The billing entity the customer is billed by (docs/billing-entities.md); None only
    # while the tenant has no billing entity at all.
    billing_entity_id: Mapped[str | None] = mapped_column(
        ForeignKey("billing_entities.id", name="fk_customers_billing_entity"),
        nullable=True,
        index=True,
    )

    # Loaded on use: an eager outer join would break the FOR UPDATE reads of this row.
    billing_entity: Mapped[BillingEntityRow | None] = relationship()


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_tenant_dates", "tenant_id", "start_date"),
        Index("ix_subscriptions_analytics_end", "tenant_id", "end_date"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    start_date: Mapped[datetime] = mapped_column(UTCDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Earlier definitions of a patched plan that this subscription keeps
    # (invoicing/plan_versions.py); None: it bills the plan as it is.
    plan_versions: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A plan change ends this subscription and starts a linked one (as in Lago).
    previous_subscription_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    next_subscription_id: Mapped[str | None] = mapped_column(String(40), nullable=True)

    customer: Mapped[CustomerRow] = relationship(lazy="joined")
    plan: Mapped[PlanRow] = relationship(lazy="joined")


class BillRunRow(Base):
    __tablename__ = "bill_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="pending")
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    invoices_created: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        # One invoice per subscription and period: what makes bill runs idempotent. A
        # voided invoice's regeneration is the next revision of the same period.
        UniqueConstraint(
            "tenant_id",
            "subscription_id",
            "period_start",
            "period_end",
            "revision",
            name="uq_invoices_subscription_period_revision",
        ),
        UniqueConstraint("tenant_id", "number"),
        Index("ix_invoices_tenant_created", "tenant_id", "created_at"),
        Index("ix_invoices_type_subscription", "type", "subscription_id", "period_start"),
        Index("ix_invoices_status_due", "tenant_id", "status", "due_at"),
        # Revenue analytics (invoicing/analytics.py): covering, so that a range of
        # months is summed from the index alone (`id` for the join to the usage lines:
        # SQLite's index entries carry the rowid, not this text key).
        Index(
            "ix_invoices_analytics_issued",
            "tenant_id", "issued_at", "currency", "status", "type", "total", "id",
        ),
        Index(
            "ix_invoices_analytics_due", "tenant_id", "status", "due_at", "currency", "amount_due"
        ),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("subscriptions.id"), nullable=True
    )
    bill_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    number: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    subtotal: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    discount_total: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    tax_total: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    credit_total: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    total: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    amount_paid: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    amount_due: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # subscription | progressive_billing | one_off | credit (API.md)
    type: Mapped[str] = mapped_column(
        String(24), default="subscription", server_default="subscription"
    )
    # When the invoice entered each later state (None: never).
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    uncollectible_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # 0, or the count of voided invoices of the same period this one was regenerated
    # from (`regenerated_from` names the latest).
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    regenerated_from: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The seller, fixed at finalize with the number taken from its sequence; a DRAFT
    # (None) follows its customer's entity (docs/billing-entities.md).
    billing_entity_id: Mapped[str | None] = mapped_column(
        ForeignKey("billing_entities.id", name="fk_invoices_billing_entity"),
        nullable=True,
        index=True,
    )

    customer: Mapped[CustomerRow] = relationship(lazy="joined")
    # Loaded on use: an eager outer join would break the FOR UPDATE reads of this row.
    billing_entity: Mapped[BillingEntityRow | None] = relationship()
    lines: Mapped[list[InvoiceLineRow]] = relationship(
        order_by="InvoiceLineRow.position", cascade="all, delete-orphan", lazy="selectin"
    )
    # Its copy of the custom sections: refreshed while DRAFT, frozen at finalize.
    custom_sections: Mapped[list[InvoiceSectionCopyRow]] = relationship(
        order_by="InvoiceSectionCopyRow.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class InvoiceLineRow(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        Index("ix_invoice_lines_analytics_usage", "invoice_id", "type", "metric", "amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500))
    metric: Mapped[str | None] = mapped_column(String(100), nullable=True)
    group: Mapped[dict[str, Any]] = mapped_column("group_values", JSON, default=dict)
    charge_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    quantity: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    unit_amount: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    amount: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    discount_amount: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    tax_rate: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    tax_amount: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A prior-period line: late usage of that finalized invoice, for events ingested up
    # to `late_through` (the next late line of the same invoice starts after it).
    prior_invoice_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    late_through: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A fee adjustment of this DRAFT line, if any (invoicing/adjustments.py); read-only
    # here and no column of this table, so the bill run's bulk writer is unaffected.
    adjustment: Mapped[LineAdjustmentRow | None] = relationship(
        primaryjoin="InvoiceLineRow.id == foreign(LineAdjustmentRow.line_id)",
        viewonly=True,
        uselist=False,
        lazy="selectin",
    )


class InvoiceSequence(Base):
    """The next number of the tenant's own prefix `INV` (a tenant without billing
    entities, or the entity whose prefix is INV); other prefixes: InvoiceNumberSequence."""

    __tablename__ = "invoice_sequences"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer, default=1)


class PaymentRow(Base):
    """Money received for an invoice: recorded by hand, or collected by a provider."""

    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_tenant_created", "tenant_id", "created_at"),
        Index("ix_payments_analytics_created", "tenant_id", "created_at", "currency", "amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None: manual
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TaxRow(Base):
    """A rate of the local tax table: by country, and region within it."""

    __tablename__ = "taxes"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    rate: Mapped[Decimal] = mapped_column(Money())
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class CouponRow(Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # percentage | fixed
    percentage: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    frequency: Mapped[str] = mapped_column(String(20), default="once")  # once|recurring|forever
    frequency_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plan_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metric_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # active: may be applied; inactive: no new applications (applied ones go on).
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Soft delete: its applications are terminated, its code stays taken.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AppliedCouponRow(Base):
    """A coupon applied to a customer, with what is left of it."""

    __tablename__ = "applied_coupons"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    coupon_id: Mapped[str] = mapped_column(ForeignKey("coupons.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | terminated
    amount_remaining: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    periods_remaining: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The terms of this application, copied from the coupon (or overridden) when it was
    # applied, so that a later change of the coupon never changes it. Null on rows applied
    # before they existed: the coupon's terms then.
    percentage: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    frequency: Mapped[str | None] = mapped_column(String(20), nullable=True)
    frequency_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)

    coupon: Mapped[CouponRow] = relationship(lazy="joined")


class CouponUsageRow(Base):
    """What one invoice took from an applied coupon (reverted when a draft is refreshed)."""

    __tablename__ = "coupon_usages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    applied_coupon_id: Mapped[str] = mapped_column(ForeignKey("applied_coupons.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WalletRow(Base):
    """Prepaid credits of a customer (1 credit = 1 unit of the wallet's currency)."""

    __tablename__ = "wallets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    scope_metrics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scope_fee_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Currency per credit (docs/wallets.md): balances and transactions are kept in the
    # currency, exact to its minor unit; credits are those amounts divided by the rate.
    rate_amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal(1), server_default="1")
    # Auto top-up rules with their firing state (invoicing/wallet_rules.py); None: none.
    recurring_rules: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # Loaded on access only: wallets are locked FOR UPDATE, which an outer join forbids.
    customer: Mapped[CustomerRow] = relationship()


class WalletTransactionRow(Base):
    """A top-up (credit) or a deduction (debit) of a wallet.

    Deductions consume top-ups oldest first; `funding` lists which top-ups paid a
    deduction and how much each, and a top-up's `remaining` is what is left of it.
    """

    __tablename__ = "wallet_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"), index=True)
    # inbound: top_up | refund; outbound: deduction | forfeit (terminated) | expiry
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money())
    remaining: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    # A deduction's: the invoice it paid; a paid top-up's: the credit invoice it needs.
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    funding: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # pending (a paid top-up whose invoice is not paid yet) | settled | cancelled
    status: Mapped[str] = mapped_column(String(20), default="settled", server_default="settled")
    grant: Mapped[str | None] = mapped_column(String(10), nullable=True)  # paid | granted
    credits: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    # manual | threshold | interval (an auto top-up rule)
    source: Mapped[str] = mapped_column(String(20), default="manual", server_default="manual")


class RolloverBucketRow(Base):
    """Unused included quantity of a subscription's charge carried to later periods."""

    __tablename__ = "rollover_buckets"
    __table_args__ = (Index("ix_rollover_sub_charge", "subscription_id", "charge_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    charge_id: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Money())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The invoice that produced this carry, and the one that consumed it: refreshing a
    # draft deletes what it produced and gives back what it consumed.
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    consumed_by: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class QuotaCrossingRow(Base):
    """A hard cap reached: one row per (subscription, charge, period), so a crossing is
    announced once however often its events are redelivered or resent. It is also the
    outbox of the `quota-exceeded` message: `published_at` is set once Kafka has it."""

    __tablename__ = "quota_crossings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "subscription_id", "charge_id", "period_start"),
        Index("ix_quota_crossings_unpublished", "tenant_id", "published_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    charge_id: Mapped[str] = mapped_column(String(40))
    customer_external_id: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(256))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    cap: Mapped[Decimal] = mapped_column(Money())
    used: Mapped[Decimal] = mapped_column(Money())
    crossed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AlertRow(Base):
    """A usage alert: thresholds on a subscription's usage or a wallet's balance."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("subscriptions.id"), nullable=True, index=True
    )
    wallet_id: Mapped[str | None] = mapped_column(
        ForeignKey("wallets.id"), nullable=True, index=True
    )
    code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    metric: Mapped[str | None] = mapped_column(String(256), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # [{"value": "10", "code": "ten" | None, "recurring": false}], values as exact text.
    thresholds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertTriggerRow(Base):
    """A threshold reached: once per (alert, threshold, period); the outbox of its
    usage-alerts message (`published_at` set once Kafka has it)."""

    __tablename__ = "alert_triggers"
    __table_args__ = (
        UniqueConstraint("alert_id", "threshold", "period_start"),
        Index("ix_alert_triggers_unpublished", "tenant_id", "published_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    threshold: Mapped[Decimal] = mapped_column(Money())
    value: Mapped[Decimal] = mapped_column(Money())
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    triggered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ProgressiveCrossingRow(Base):
    """A usage threshold reached: one row per (subscription, period, threshold amount),
    so a threshold bills once however often its events are redelivered or resent. The
    invoice it issued (none when nothing was left to bill) is `invoice_id`."""

    __tablename__ = "progressive_crossings"
    __table_args__ = (UniqueConstraint("subscription_id", "period_start", "threshold"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    threshold: Mapped[Decimal] = mapped_column(Money())
    amount: Mapped[Decimal] = mapped_column(Money())  # the usage amount that reached it
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    crossed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DomainEventRow(Base):
    """The outbox of `billing-events`: a change that later deliverers (webhooks, ERP
    sync, email) must hear of, written in the transaction that makes the change and
    produced to Kafka afterwards (`published_at`), at least once, keyed by `id`."""

    __tablename__ = "domain_events"
    __table_args__ = (
        Index("ix_domain_events_unpublished", "published_at", "created_at"),
        Index("ix_domain_events_undispatched", "dispatched_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))  # quota.exceeded, invoice.finalized, …
    object_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the deliverers fanned it out into their deliveries (invoicing/deliveries).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PaymentProviderRow(Base):
    """A tenant's connection to a payment provider (`stripe`, …) and its configuration
    (API key, base URL); one per provider."""

    __tablename__ = "payment_providers"
    __table_args__ = (UniqueConstraint("tenant_id", "provider"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentAttemptRow(Base):
    """One try to collect an invoice through its customer's provider: at finalize and at
    each dunning step. `idempotency_key` is what the provider saw, so a retried request
    of the same attempt can never charge twice."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_payment_attempts_reference", "tenant_id", "provider_reference"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    # pending (asked, no answer yet) | processing (accepted, the webhook tells) |
    # succeeded | failed | link (a hosted payment page, open until paid or expired)
    status: Mapped[str] = mapped_column(String(20))
    provider_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A hosted payment link's page and end; None for charges.
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PaymentNotificationRow(Base):
    """A provider's verified notification, kept once per event id: a redelivery finds
    it and changes nothing. `effect` says what it did (applied | ignored | duplicate
    are answered; only the first two are stored)."""

    __tablename__ = "payment_notifications"
    __table_args__ = (UniqueConstraint("provider_id", "event_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10))  # charge | refund | method
    reference: Mapped[str] = mapped_column(String(255))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    final: Mapped[bool] = mapped_column(Boolean)
    effect: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    invoice_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DunningPolicyRow(Base):
    """A tenant's dunning schedule: days after `dueAt` of each step, and of UNCOLLECTIBLE.
    No row: the default (1, 3, 7, 14, 21; 30)."""

    __tablename__ = "dunning_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    steps: Mapped[list[Any]] = mapped_column(JSON)  # [1, 3, 7, 14, 21]
    uncollectible_after_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DunningStepRow(Base):
    """A dunning step taken on an overdue invoice; unique per (invoice, step), which is
    what makes a second scheduler pass at the same moment change nothing."""

    __tablename__ = "dunning_steps"
    __table_args__ = (UniqueConstraint("invoice_id", "step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)  # 1 … 5
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the pass took it
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when it was scheduled for
    payment_attempted: Mapped[bool] = mapped_column(Boolean, default=False)
    # reminded (no provider) | payment_succeeded | payment_failed
    result: Mapped[str] = mapped_column(String(40))


class AddOnRow(Base):
    """A catalog product billed once (on one-off invoices): a name and a unit amount,
    with its own taxes (`tax_codes`, codes of the tax table) when it names any."""

    __tablename__ = "add_ons"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    tax_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LineAdjustmentRow(Base):
    """A fee adjustment of a DRAFT invoice's line: the units and unit price that win
    over the rating, and the computed values a DELETE restores.

    `line_id` is no foreign key: a draft refresh replaces every line, and the adjustment
    then moves to the new line of the same `line_key` (charge, metric, group, period)."""

    __tablename__ = "invoice_line_adjustments"
    __table_args__ = (UniqueConstraint("line_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    line_id: Mapped[str] = mapped_column(String(40))
    line_key: Mapped[str] = mapped_column(String(1000))
    # What the adjustment overrides; None: that value follows the rating.
    quantity: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    unit_amount: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    computed_quantity: Mapped[Decimal] = mapped_column(Money())
    computed_unit_amount: Mapped[Decimal] = mapped_column(Money())
    computed_amount: Mapped[Decimal] = mapped_column(Money())
    computed_tax_amount: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CreditNoteRow(Base):
    """Money an issued invoice gives back: an offset of what is due, a balance for the
    customer's later invoices (`credit`), or a refund of what was paid.

        DRAFT → ISSUED → APPLIED
          ↘       ↘ VOID

    Numbered at creation from the tenant's credit-note sequence (a void note keeps its
    number, so the sequence has no gaps)."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index("ix_credit_notes_tenant_created", "tenant_id", "created_at"),
        Index("ix_credit_notes_balance", "tenant_id", "customer_id", "currency", "status"),
        Index("ix_credit_notes_analytics_issued", "tenant_id", "issued_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    type: Mapped[str] = mapped_column(String(20))  # offset | credit | refund
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A `credit` note's balance not yet used by later invoices.
    balance: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    # A `refund`: how it went out (None before it is applied).
    refund_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    refund_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    customer: Mapped[CustomerRow] = relationship(lazy="joined")


class CreditNoteSequence(Base):
    """The next credit-note number of a tenant."""

    __tablename__ = "credit_note_sequences"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer, default=1)


class CreditUseRow(Base):
    """A part of a `credit` note's balance that an invoice used (its CREDIT line)."""

    __tablename__ = "credit_note_uses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    credit_note_id: Mapped[str] = mapped_column(ForeignKey("credit_notes.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingEntityRow(Base):
    """A seller of a tenant's invoices (docs/billing-entities.md): legal name, address,
    tax id and bank account as the documents show them, its own invoice prefix (and so
    its own number sequence) and the tax codes its customers pay where their place has
    no rate. Customers belong to one; one per tenant is the default (`PUT
    /billing-entity` edits it). A tenant without any: documents name the tenant."""

    __tablename__ = "billing_entities"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="uq_billing_entities_tenant_code"),
        UniqueConstraint("tenant_id", "invoice_prefix", name="uq_billing_entities_prefix"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", name="fk_billing_entities_tenant"), index=True
    )
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    invoice_prefix: Mapped[str] = mapped_column(String(20))
    tax_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    legal_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    address_line1: Mapped[str | None] = mapped_column(String(300), nullable=True)
    address_line2: Mapped[str | None] = mapped_column(String(300), nullable=True)
    city: Mapped[str | None] = mapped_column(String(200), nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    tax_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    iban: Mapped[str | None] = mapped_column(String(34), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InvoiceNumberSequence(Base):
    """The next invoice number of a prefix other than the tenant's own `INV`
    (`InvoiceSequence`): the sequence of the billing entity that has the prefix."""

    __tablename__ = "invoice_number_sequences"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer, default=1)


class EmailDeliveryRow(Base):
    """One email to send: an invoice or a credit note (its PDF attached) or a payment
    receipt, queued by its domain event (`event_id`, at most one email each) or by a
    resend request. The state lives here, so a restart loses nothing."""

    __tablename__ = "email_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id"),
        Index("ix_email_deliveries_due", "status", "next_attempt_at"),
        Index("ix_email_deliveries_object", "tenant_id", "object_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # invoice | credit_note | receipt
    object_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    to: Mapped[list[Any]] = mapped_column("to_addresses", JSON, default=list)
    cc: Mapped[list[Any]] = mapped_column("cc_addresses", JSON, default=list)
    bcc: Mapped[list[Any]] = mapped_column("bcc_addresses", JSON, default=list)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookEndpointRow(Base):
    """Where a tenant wants its domain events POSTed. The signing secret is kept
    encrypted (`invoicing.secrets`); a deleted endpoint keeps its row for the log."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(Text)  # encrypted
    events: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)  # None: every type
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="enabled")  # enabled | disabled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookDeliveryRow(Base):
    """One event for one endpoint: the exact body signed and sent on every attempt, and
    what the last attempt gave. At most one per (endpoint, event)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|succeeded|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A manual retry is one attempt: its failure is final.
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantSettingsRow(Base):
    """A tenant's switches (`PUT /settings`); no row means every default."""

    __tablename__ = "tenant_settings"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    multi_erp: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Days the activity and request logs keep (docs/audit-log.md); null: the default.
    activity_retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    request_log_retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ErpConnectionRow(Base):
    """A tenant's connection to an ERP. Secrets of `config` and every token are kept
    sealed (`invoicing.secrets`); a disconnected connection keeps its row for the log."""

    __tablename__ = "erp_connections"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    # pending_authorization | active | disconnected
    status: Mapped[str] = mapped_column(String(24))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # secret values sealed
    credentials: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed JSON
    # OAuth: SHA-256 of the `state` the callback must bring back, the sealed PKCE
    # verifier and the sealed authorize URL (shown while pending).
    oauth_state: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    code_verifier: Mapped[str | None] = mapped_column(Text, nullable=True)
    authorize_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    account: Mapped[str | None] = mapped_column(String(200), nullable=True)
    test_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    test_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    test_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    test_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ErpSyncRow(Base):
    """One document in one ERP: the ERP's id of its record, and the sync under way.

    A change of the document (finalized, paid, voided …) starts a new sync: `attempts`
    counts from 1 again and `generation` moves on, so an attempt that was already in
    flight with the old state is followed by another."""

    __tablename__ = "erp_syncs"
    __table_args__ = (
        UniqueConstraint("connection_id", "kind", "document_id"),
        Index("ix_erp_syncs_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("erp_connections.id"))
    kind: Mapped[str] = mapped_column(String(12))  # invoice | credit_note
    document_id: Mapped[str] = mapped_column(String(40))
    invoice_id: Mapped[str] = mapped_column(String(40), index=True)  # a credit note's invoice
    status: Mapped[str] = mapped_column(String(10))  # pending | syncing | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    external_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ErpSyncLogRow(Base):
    """Every attempt to put a document into an ERP, as it went."""

    __tablename__ = "erp_sync_log"
    __table_args__ = (Index("ix_erp_sync_log_tenant", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the attempt's time
    sync_id: Mapped[str] = mapped_column(ForeignKey("erp_syncs.id"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("erp_connections.id"))
    provider: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))
    document_id: Mapped[str] = mapped_column(String(40))
    invoice_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(10))  # SUCCESS | FAILED
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)


class ActivityRow(Base):
    """Who changed what (docs/audit-log.md): written in the transaction of the change,
    so a change rolled back leaves no entry."""

    __tablename__ = "activity_log"
    __table_args__ = (
        Index("ix_activity_log_tenant", "tenant_id", "created_at", "id"),
        Index("ix_activity_log_resource", "tenant_id", "resource_type", "resource_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_type: Mapped[str] = mapped_column(String(20))  # api_key | system
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    action: Mapped[str] = mapped_column(String(60))  # invoice.finalized …
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(200))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # redacted
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RequestLogRow(Base):
    """One API request of a tenant's key: no body, no query string, no header."""

    __tablename__ = "request_log"
    __table_args__ = (Index("ix_request_log_tenant", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when it arrived
    request_id: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    route: Mapped[str | None] = mapped_column(String(300), nullable=True)  # the template
    status: Mapped[int] = mapped_column(Integer)
    duration_us: Mapped[int] = mapped_column(Integer)  # microseconds, to the last byte


class FeatureRow(Base):
    """Something a plan grants (docs/features-and-entitlements.md), with typed privileges:
    [{"code", "name", "type": boolean|integer|select, "options": [...] | null}]."""

    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    privileges: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EntitlementRow(Base):
    """A feature granted by a plan (plan_id) or overridden for one subscription
    (subscription_id): exactly one of the two is set; values {privilege code: value}."""

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("plan_id", "feature_id"),
        UniqueConstraint("subscription_id", "feature_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    feature_id: Mapped[str] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), nullable=True, index=True
    )
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    feature: Mapped[FeatureRow] = relationship(lazy="joined")


class InvoiceCustomSectionRow(Base):
    """A reusable text block printed on invoices (docs/invoice-custom-sections.md).
    Soft-deleted: its code stays taken, issued invoices keep their copies."""

    __tablename__ = "invoice_custom_sections"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[str] = mapped_column(Text)
    applies_to_all: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InvoiceSectionCopyRow(Base):
    """An invoice's copy of one custom section as printed: what the section said when
    the invoice was last refreshed as a DRAFT, or finalized."""

    __tablename__ = "invoice_section_copies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text)
