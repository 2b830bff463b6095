"""Plan archive, and plan versions kept by subscriptions

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 19:40:00.000000

docs/plan-changes.md: an archived plan (archived_at set) takes no new subscriptions and
is left out of lists; a PATCH of a plan pins the old definition on the subscriptions that
keep it (subscriptions.plan_versions, JSON, null for a plan never patched).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("archived_at", INSTANT, nullable=True))
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("plan_versions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("plan_versions")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("archived_at")
