"""quota crossings (hard caps reached, and the outbox of quota-exceeded)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_crossings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("charge_id", sa.String(length=40), nullable=False),
        sa.Column("customer_external_id", sa.String(length=256), nullable=False),
        sa.Column("metric", sa.String(length=256), nullable=False),
        sa.Column("period_start", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cap", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("used", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("crossed_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "subscription_id", "charge_id", "period_start"),
    )
    op.create_index(
        "ix_quota_crossings_unpublished", "quota_crossings", ["tenant_id", "published_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_quota_crossings_unpublished", table_name="quota_crossings")
    op.drop_table("quota_crossings")
