"""usage alerts and their triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("wallet_id", sa.String(length=40), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("metric", sa.String(length=256), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("created_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["wallet_id"], ["wallets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    op.create_index("ix_alerts_tenant_id", "alerts", ["tenant_id"])
    op.create_index("ix_alerts_subscription_id", "alerts", ["subscription_id"])
    op.create_index("ix_alerts_wallet_id", "alerts", ["wallet_id"])
    op.create_table(
        "alert_triggers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("threshold", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("value", invoicing.db.Money(precision=38, scale=12), nullable=False),
        sa.Column("period_start", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("triggered_at", invoicing.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", invoicing.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "threshold", "period_start"),
    )
    op.create_index("ix_alert_triggers_alert_id", "alert_triggers", ["alert_id"])
    op.create_index(
        "ix_alert_triggers_unpublished", "alert_triggers", ["tenant_id", "published_at"]
    )


def downgrade() -> None:
    op.drop_table("alert_triggers")
    op.drop_table("alerts")
