"""Subscription name and plan-change links

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 19:40:00.000000

docs/subscription-lifecycle.md: a plan change ends the subscription and starts a new one
linked to it (previous_subscription_id on the new, next_subscription_id on the old).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("previous_subscription_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("next_subscription_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("next_subscription_id")
        batch.drop_column("previous_subscription_id")
        batch.drop_column("name")
