"""late usage lines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 06:39:12.553856
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prior_invoice_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("late_through", invoicing.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_invoice_lines_prior_invoice_id"), ["prior_invoice_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_lines_prior_invoice_id"))
        batch_op.drop_column("late_through")
        batch_op.drop_column("prior_invoice_id")
