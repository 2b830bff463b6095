"""email deliveries, and when each domain event was fanned out to its deliverers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("domain_events") as batch:
        batch.add_column(sa.Column("dispatched_at", INSTANT, nullable=True))
        batch.create_index(
            "ix_domain_events_undispatched", ["dispatched_at", "created_at"], unique=False
        )
    # What happened before deliverers existed is not delivered now (no surprise mail
    # about last year's invoices after an upgrade).
    op.execute("UPDATE domain_events SET dispatched_at = created_at")
    op.create_table(
        "email_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("to_addresses", sa.JSON(), nullable=False),
        sa.Column("cc_addresses", sa.JSON(), nullable=False),
        sa.Column("bcc_addresses", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", INSTANT, nullable=False),
        sa.Column("last_attempt_at", INSTANT, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("sent_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("email_deliveries") as batch:
        batch.create_index("ix_email_deliveries_due", ["status", "next_attempt_at"])
        batch.create_index("ix_email_deliveries_object", ["tenant_id", "object_id"])
        batch.create_index(batch.f("ix_email_deliveries_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("email_deliveries")
    with op.batch_alter_table("domain_events") as batch:
        batch.drop_index("ix_domain_events_undispatched")
        batch.drop_column("dispatched_at")
