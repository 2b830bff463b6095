"""ERP connections, syncs, the sync log, and tenant settings

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("multi_erp", sa.Boolean(), nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "erp_connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("oauth_state", sa.String(length=64), nullable=True),
        sa.Column("code_verifier", sa.Text(), nullable=True),
        sa.Column("authorize_url", sa.Text(), nullable=True),
        sa.Column("account", sa.String(length=200), nullable=True),
        sa.Column("test_at", INSTANT, nullable=True),
        sa.Column("test_status", sa.String(length=10), nullable=True),
        sa.Column("test_code", sa.Integer(), nullable=True),
        sa.Column("test_error", sa.Text(), nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("activated_at", INSTANT, nullable=True),
        sa.Column("disconnected_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("oauth_state"),
    )
    with op.batch_alter_table("erp_connections") as batch:
        batch.create_index(batch.f("ix_erp_connections_tenant_id"), ["tenant_id"])
    op.create_table(
        "erp_syncs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", INSTANT, nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("external_version", sa.String(length=100), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("synced_at", INSTANT, nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["erp_connections.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "kind", "document_id"),
    )
    with op.batch_alter_table("erp_syncs") as batch:
        batch.create_index("ix_erp_syncs_due", ["status", "next_attempt_at"])
        batch.create_index(batch.f("ix_erp_syncs_tenant_id"), ["tenant_id"])
        batch.create_index(batch.f("ix_erp_syncs_invoice_id"), ["invoice_id"])
    op.create_table(
        "erp_sync_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("sync_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["erp_connections.id"]),
        sa.ForeignKeyConstraint(["sync_id"], ["erp_syncs.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("erp_sync_log") as batch:
        batch.create_index("ix_erp_sync_log_tenant", ["tenant_id", "created_at"])
        batch.create_index(batch.f("ix_erp_sync_log_invoice_id"), ["invoice_id"])


def downgrade() -> None:
    op.drop_table("erp_sync_log")
    op.drop_table("erp_syncs")
    op.drop_table("erp_connections")
    op.drop_table("tenant_settings")
