"""The activity log, the API request log, and their retention settings

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 09:00:00.000000

docs/audit-log.md: an activity entry is written in the transaction of the change; a
request-log row after the response. Both are read newest first per tenant (the
(tenant_id, created_at, id) indexes serve the pages and the retention purge). The
retention days are nullable columns of tenant_settings: null is the default.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tenant_settings") as batch:
        batch.add_column(sa.Column("activity_retention_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("request_log_retention_days", sa.Integer(), nullable=True))
    op.create_table(
        "activity_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.String(length=200), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("activity_log") as batch:
        batch.create_index("ix_activity_log_tenant", ["tenant_id", "created_at", "id"])
        batch.create_index(
            "ix_activity_log_resource", ["tenant_id", "resource_type", "resource_id"]
        )
    op.create_table(
        "request_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("duration_us", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_log") as batch:
        batch.create_index("ix_request_log_tenant", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_table("activity_log")
    with op.batch_alter_table("tenant_settings") as batch:
        batch.drop_column("request_log_retention_days")
        batch.drop_column("activity_retention_days")
