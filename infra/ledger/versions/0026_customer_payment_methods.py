"""Customers' saved payment methods

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 22:00:00.000000

docs/payment-providers.md (Saving a payment method): the method a customer saved on a
provider's checkout page, the provider that reported it, and when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("payment_method_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("payment_method_provider", sa.String(20), nullable=True))
        batch.add_column(sa.Column("payment_method_saved_at", INSTANT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("payment_method_saved_at")
        batch.drop_column("payment_method_provider")
        batch.drop_column("payment_method_id")
