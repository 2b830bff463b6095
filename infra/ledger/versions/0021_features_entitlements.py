"""Features with typed privileges, and entitlements of plans and subscriptions

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 19:30:00.000000

docs/features-and-entitlements.md: a feature's privileges are a JSON list on it; an
entitlement row grants one feature with its values to a plan or (as an override) to one
subscription. The per-request customer read joins them by plan_id and subscription_id,
hence their indexes; deleting a feature deletes its grants.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "features",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("privileges", sa.JSON(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("features") as batch:
        batch.create_index("ix_features_tenant_id", ["tenant_id"])
    op.create_table(
        "entitlements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("feature_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=True),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["feature_id"], ["features.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "feature_id"),
        sa.UniqueConstraint("subscription_id", "feature_id"),
    )
    with op.batch_alter_table("entitlements") as batch:
        batch.create_index("ix_entitlements_tenant_id", ["tenant_id"])
        batch.create_index("ix_entitlements_feature_id", ["feature_id"])
        batch.create_index("ix_entitlements_plan_id", ["plan_id"])
        batch.create_index("ix_entitlements_subscription_id", ["subscription_id"])


def downgrade() -> None:
    op.drop_table("entitlements")
    op.drop_table("features")
