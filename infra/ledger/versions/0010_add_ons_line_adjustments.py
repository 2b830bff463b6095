"""add-ons and fee adjustments of draft invoice lines

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

MONEY = invoicing.db.Money(precision=38, scale=12)
INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "add_ons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_codes", sa.JSON(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    op.create_index("ix_add_ons_tenant_id", "add_ons", ["tenant_id"])
    op.create_table(
        "invoice_line_adjustments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("line_key", sa.String(length=1000), nullable=False),
        sa.Column("quantity", MONEY, nullable=True),
        sa.Column("unit_amount", MONEY, nullable=True),
        sa.Column("computed_quantity", MONEY, nullable=False),
        sa.Column("computed_unit_amount", MONEY, nullable=False),
        sa.Column("computed_amount", MONEY, nullable=False),
        sa.Column("computed_tax_amount", MONEY, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("line_id"),
    )
    op.create_index(
        "ix_invoice_line_adjustments_tenant_id", "invoice_line_adjustments", ["tenant_id"]
    )
    op.create_index(
        "ix_invoice_line_adjustments_invoice_id", "invoice_line_adjustments", ["invoice_id"]
    )


def downgrade() -> None:
    op.drop_table("invoice_line_adjustments")
    op.drop_table("add_ons")
