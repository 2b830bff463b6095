"""ledger foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:23:36.906993
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "bill_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("period_start", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("invoices_created", sa.Integer(), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bill_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bill_runs_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("tax_exempt", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("invoice_grace_days", sa.Integer(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "external_id"),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "invoice_sequences",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "metrics",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("aggregation", sa.String(length=20), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("group_by", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metrics_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("interval", sa.String(length=12), nullable=False),
        sa.Column("base_fee", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("pay_in_advance", sa.Boolean(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("minimum_commitment", invoicing.db.Money(precision=38, scale=12), nullable=True),
        sa.Column("maximum_spend", invoicing.db.Money(precision=38, scale=12), nullable=True),
        sa.Column("charges", sa.JSON(), nullable=False),
        sa.Column("fixed_charges", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("start_date", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_date", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("terminated_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriptions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subscriptions_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(
            "ix_subscriptions_tenant_dates", ["tenant_id", "start_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subscriptions_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("bill_run_id", sa.String(length=40), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_start", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("subtotal", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("discount_total", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("tax_total", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("credit_total", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("total", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("amount_paid", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("amount_due", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finalized_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
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
        sa.UniqueConstraint("tenant_id", "number"),
        sa.UniqueConstraint("tenant_id", "subscription_id", "period_start", "period_end"),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_invoices_tenant_created", ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_invoices_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=True),
        sa.Column("group_values", sa.JSON(), nullable=False),
        sa.Column("charge_id", sa.String(length=40), nullable=True),
        sa.Column("quantity", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("unit_amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("discount_amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("tax_rate", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("tax_amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("period_start", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_end", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_lines_invoice_id"), ["invoice_id"], unique=False
        )

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
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
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_payments_invoice_id"))

    op.drop_table("payments")
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_lines_invoice_id"))

    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_tenant_id"))
        batch_op.drop_index("ix_invoices_tenant_created")
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id"))

    op.drop_table("invoices")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_tenant_id"))
        batch_op.drop_index("ix_subscriptions_tenant_dates")
        batch_op.drop_index(batch_op.f("ix_subscriptions_plan_id"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_customer_id"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_tenant_id"))

    op.drop_table("plans")
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metrics_tenant_id"))

    op.drop_table("metrics")
    op.drop_table("invoice_sequences")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_tenant_id"))

    op.drop_table("customers")
    with op.batch_alter_table("bill_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bill_runs_tenant_id"))

    op.drop_table("bill_runs")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
