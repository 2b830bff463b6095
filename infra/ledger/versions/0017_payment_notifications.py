"""Payment-provider notifications, hosted payment links on attempts

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_notifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("effect", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id", "event_id"),
    )
    op.create_index("ix_payment_notifications_tenant_id", "payment_notifications", ["tenant_id"])
    with op.batch_alter_table("payment_attempts") as batch:
        batch.add_column(sa.Column("url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expires_at", INSTANT, nullable=True))
        batch.add_column(sa.Column("updated_at", INSTANT, nullable=True))
    op.create_index(
        "ix_payment_attempts_reference", "payment_attempts", ["tenant_id", "provider_reference"]
    )


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_reference", table_name="payment_attempts")
    with op.batch_alter_table("payment_attempts") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("expires_at")
        batch.drop_column("url")
    op.drop_index("ix_payment_notifications_tenant_id", table_name="payment_notifications")
    op.drop_table("payment_notifications")
