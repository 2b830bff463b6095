"""Coupon status and soft delete, applied-coupon terms, tax descriptions, customer
metadata and soft delete

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 19:30:00.000000

docs/coupons-taxes-customers.md: an applied coupon keeps its own copy of the terms
(percentage, amount, frequency, duration), overridable when applied; null on older rows
means the coupon's terms. Deleted coupons and customers stay as rows (deleted_at).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)
MONEY = invoicing.db.Money()


def upgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="active")
        )
        batch.add_column(sa.Column("deleted_at", INSTANT, nullable=True))
    with op.batch_alter_table("coupons") as batch:
        batch.alter_column("status", server_default=None)
    with op.batch_alter_table("applied_coupons") as batch:
        batch.add_column(sa.Column("percentage", MONEY, nullable=True))
        batch.add_column(sa.Column("amount", MONEY, nullable=True))
        batch.add_column(sa.Column("frequency", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("frequency_duration", sa.Integer(), nullable=True))
    with op.batch_alter_table("taxes") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("metadata", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(sa.Column("deleted_at", INSTANT, nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("metadata", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("metadata")
    with op.batch_alter_table("taxes") as batch:
        batch.drop_column("description")
    with op.batch_alter_table("applied_coupons") as batch:
        batch.drop_column("frequency_duration")
        batch.drop_column("frequency")
        batch.drop_column("amount")
        batch.drop_column("percentage")
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("status")
        batch.drop_column("description")
