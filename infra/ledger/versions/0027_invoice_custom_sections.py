"""Invoice custom sections, the customers' choice of them, and the invoices' copies

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 22:30:00.000000

docs/invoice-custom-sections.md: a tenant's sections (code unique per tenant, deleted
ones kept: their code stays taken); on customers, their own list of section codes (JSON,
print order) and whether they skip sections; on invoices, a copy of each section as
printed (invoice_section_copies), refreshed while DRAFT and frozen at finalize.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invoice_custom_sections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("applies_to_all", sa.Boolean(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("deleted_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("invoice_custom_sections") as batch:
        batch.create_index("ix_invoice_custom_sections_tenant_id", ["tenant_id"])
    op.create_table(
        "invoice_section_copies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("invoice_section_copies") as batch:
        batch.create_index("ix_invoice_section_copies_invoice_id", ["invoice_id"])
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("invoice_custom_section_codes", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("skip_invoice_custom_sections", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("skip_invoice_custom_sections")
        batch.drop_column("invoice_custom_section_codes")
    op.drop_table("invoice_section_copies")
    op.drop_table("invoice_custom_sections")
