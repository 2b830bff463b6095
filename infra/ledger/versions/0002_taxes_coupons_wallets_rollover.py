"""taxes coupons wallets rollover

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:10:25.048339
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("percentage", invoicing.db.Money(precision=38, scale=12), nullable=True),
        sa.Column("amount", invoicing.db.Money(precision=38, scale=12), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("frequency", sa.String(length=20), nullable=False),
        sa.Column("frequency_duration", sa.Integer(), nullable=True),
        sa.Column("plan_codes", sa.JSON(), nullable=False),
        sa.Column("metric_codes", sa.JSON(), nullable=False),
        sa.Column("expires_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "taxes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rate", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("taxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_taxes_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "applied_coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount_remaining", invoicing.db.Money(precision=38, scale=12), nullable=True),
        sa.Column("periods_remaining", sa.Integer(), nullable=True),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("applied_coupons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_applied_coupons_coupon_id"), ["coupon_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_applied_coupons_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_applied_coupons_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "wallets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("expires_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scope_metrics", sa.JSON(), nullable=False),
        sa.Column("scope_fee_types", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("wallets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wallets_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wallets_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "coupon_usages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("applied_coupon_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["applied_coupon_id"],
            ["applied_coupons.id"],
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coupon_usages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coupon_usages_applied_coupon_id"), ["applied_coupon_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_coupon_usages_invoice_id"), ["invoice_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_coupon_usages_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "rollover_buckets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("charge_id", sa.String(length=40), nullable=False),
        sa.Column("quantity", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("expires_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("consumed_by", sa.String(length=40), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rollover_buckets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rollover_buckets_consumed_by"), ["consumed_by"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rollover_buckets_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            "ix_rollover_sub_charge", ["subscription_id", "charge_id"], unique=False
        )

    op.create_table(
        "wallet_transactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("wallet_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("remaining", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("funding", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["wallets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("wallet_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wallet_transactions_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_wallet_transactions_wallet_id"), ["wallet_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("wallet_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_transactions_wallet_id"))
        batch_op.drop_index(batch_op.f("ix_wallet_transactions_tenant_id"))

    op.drop_table("wallet_transactions")
    with op.batch_alter_table("rollover_buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_rollover_sub_charge")
        batch_op.drop_index(batch_op.f("ix_rollover_buckets_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_rollover_buckets_consumed_by"))

    op.drop_table("rollover_buckets")
    with op.batch_alter_table("coupon_usages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_usages_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_coupon_usages_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_coupon_usages_applied_coupon_id"))

    op.drop_table("coupon_usages")
    with op.batch_alter_table("wallets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallets_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_wallets_customer_id"))

    op.drop_table("wallets")
    with op.batch_alter_table("applied_coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applied_coupons_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_applied_coupons_customer_id"))
        batch_op.drop_index(batch_op.f("ix_applied_coupons_coupon_id"))

    op.drop_table("applied_coupons")
    with op.batch_alter_table("taxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_taxes_tenant_id"))

    op.drop_table("taxes")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_tenant_id"))

    op.drop_table("coupons")
