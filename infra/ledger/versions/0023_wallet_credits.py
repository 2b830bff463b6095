"""Wallets: exchange rate, auto top-up rules, termination; paid and granted top-ups

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 20:00:00.000000

docs/wallets.md: a wallet's rate_amount is the currency per credit; recurring_rules
holds its auto top-up rules and their firing state. A transaction's status is pending
(a paid top-up whose credit invoice is not paid), settled or cancelled; grant says paid
or granted, credits the credits it carried, source what made it (manual or a rule).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)
MONEY = invoicing.db.Money()


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("rate_amount", MONEY, nullable=False, server_default="1"))
        batch.add_column(sa.Column("recurring_rules", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("terminated_at", INSTANT, nullable=True))
    with op.batch_alter_table("wallet_transactions") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="settled")
        )
        batch.add_column(sa.Column("grant", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("credits", MONEY, nullable=True))
        batch.add_column(
            sa.Column("source", sa.String(length=20), nullable=False, server_default="manual")
        )


def downgrade() -> None:
    with op.batch_alter_table("wallet_transactions") as batch:
        batch.drop_column("source")
        batch.drop_column("credits")
        batch.drop_column("grant")
        batch.drop_column("status")
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("terminated_at")
        batch.drop_column("recurring_rules")
        batch.drop_column("rate_amount")
