"""Metric rounding: round | ceil | floor of each period quantity, with a precision

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 22:00:00.000000

docs/aggregations.md (Rounding): a billable metric may round the quantity it measured
over a period before charges price it; both columns are null for a metric that bills
the exact quantity (every metric before this revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("rounding_function", sa.String(10), nullable=True))
        batch.add_column(sa.Column("rounding_precision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("rounding_precision")
        batch.drop_column("rounding_function")
