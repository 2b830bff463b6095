"""payments with currency and provider, payment providers and attempts, dunning, the
invoice's state times

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("payment_provider", sa.String(length=20), nullable=True))
        batch.add_column(
            sa.Column("payment_provider_customer_id", sa.String(length=200), nullable=True)
        )
    with op.batch_alter_table("invoices") as batch:
        for name in ("paid_at", "overdue_at", "uncollectible_at", "voided_at"):
            batch.add_column(sa.Column(name, invoicing.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("provider", sa.String(length=20), nullable=True))
    op.create_index("ix_payments_tenant_created", "payments", ["tenant_id", "created_at"])
    # Payments recorded before this migration take their invoice's currency.
    op.execute(
        "UPDATE payments SET currency = "
        "(SELECT invoices.currency FROM invoices WHERE invoices.id = payments.invoice_id)"
    )
    op.create_table(
        "payment_providers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "provider"),
    )
    op.create_index("ix_payment_providers_tenant_id", "payment_providers", ["tenant_id"])
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("amount", invoicing.db.Money(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("provider_reference", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", invoicing.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "idempotency_key"),
    )
    op.create_index("ix_payment_attempts_tenant_id", "payment_attempts", ["tenant_id"])
    op.create_index("ix_payment_attempts_invoice_id", "payment_attempts", ["invoice_id"])
    op.create_table(
        "dunning_policies",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("uncollectible_after_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", invoicing.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "dunning_steps",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", invoicing.db.UTCDateTime(), nullable=False),
        sa.Column("due_at", invoicing.db.UTCDateTime(), nullable=False),
        sa.Column("payment_attempted", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id", "step"),
    )
    op.create_index("ix_dunning_steps_tenant_id", "dunning_steps", ["tenant_id"])
    op.create_index("ix_dunning_steps_invoice_id", "dunning_steps", ["invoice_id"])
    # The scheduler looks for OPEN invoices past due and OVERDUE ones with steps left.
    op.create_index("ix_invoices_status_due", "invoices", ["tenant_id", "status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_invoices_status_due", table_name="invoices")
    op.drop_table("dunning_steps")
    op.drop_table("dunning_policies")
    op.drop_table("payment_attempts")
    op.drop_table("payment_providers")
    op.drop_index("ix_payments_tenant_created", table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("provider")
        batch.drop_column("currency")
    with op.batch_alter_table("invoices") as batch:
        for name in ("voided_at", "uncollectible_at", "overdue_at", "paid_at"):
            batch.drop_column(name)
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("payment_provider_customer_id")
        batch.drop_column("payment_provider")
