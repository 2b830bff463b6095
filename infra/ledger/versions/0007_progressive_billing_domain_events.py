"""progressive billing (plan thresholds, invoice type, crossings) and the domain-event outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing plans get no thresholds; the default is for them only (the model sets it).
    with op.batch_alter_table("plans") as batch:
        batch.add_column(
            sa.Column("usage_thresholds", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("plans") as batch:
        batch.alter_column("usage_thresholds", server_default=None)
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(
            sa.Column("type", sa.String(length=24), nullable=False, server_default="subscription")
        )
    op.create_index(
        "ix_invoices_type_subscription", "invoices", ["type", "subscription_id", "period_start"]
    )
    op.create_table(
        "progressive_crossings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("period_start", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("threshold", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("amount", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("crossed_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "period_start", "threshold"),
    )
    op.create_index("ix_progressive_crossings_tenant_id", "progressive_crossings", ["tenant_id"])
    op.create_table(
        "domain_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_domain_events_tenant_id", "domain_events", ["tenant_id"])
    op.create_index("ix_domain_events_unpublished", "domain_events", ["published_at", "created_at"])


def downgrade() -> None:
    op.drop_table("domain_events")
    op.drop_table("progressive_crossings")
    op.drop_index("ix_invoices_type_subscription", table_name="invoices")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("type")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("usage_thresholds")
