"""billing entities (the seller on invoice documents) and customer postal addresses

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)

CUSTOMER_COLUMNS = [
    ("address_line1", 300),
    ("address_line2", 300),
    ("city", 200),
    ("postal_code", 40),
    ("tax_id", 100),
]


def upgrade() -> None:
    op.create_table(
        "billing_entities",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("legal_name", sa.String(length=300), nullable=False),
        sa.Column("address_line1", sa.String(length=300), nullable=False),
        sa.Column("address_line2", sa.String(length=300), nullable=True),
        sa.Column("city", sa.String(length=200), nullable=False),
        sa.Column("postal_code", sa.String(length=40), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("tax_id", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    with op.batch_alter_table("customers") as batch:
        for name, length in CUSTOMER_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        for name, _ in reversed(CUSTOMER_COLUMNS):
            batch.drop_column(name)
    op.drop_table("billing_entities")
