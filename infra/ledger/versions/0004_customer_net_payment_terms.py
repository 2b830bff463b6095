"""customer net payment terms

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null: the process's default (METERLINE_INVOICE_DUE_DAYS, 30 unless set).
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("net_payment_term_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("net_payment_term_days")
