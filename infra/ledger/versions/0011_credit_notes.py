"""credit notes, their sequence and the uses of credit balances

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 20:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

MONEY = invoicing.db.Money(precision=38, scale=12)
INSTANT = invoicing.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("balance", MONEY, nullable=False),
        sa.Column("refund_status", sa.String(length=20), nullable=True),
        sa.Column("refund_reference", sa.String(length=200), nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("issued_at", INSTANT, nullable=True),
        sa.Column("applied_at", INSTANT, nullable=True),
        sa.Column("voided_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "number"),
    )
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_notes_balance",
            ["tenant_id", "customer_id", "currency", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_credit_notes_invoice_id"), ["invoice_id"], unique=False
        )
        batch_op.create_index(
            "ix_credit_notes_tenant_created", ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_credit_notes_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "credit_note_sequences",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    # Every tenant starts its credit-note numbers at 1.
    op.execute(
        "INSERT INTO credit_note_sequences (tenant_id, next_value) SELECT id, 1 FROM tenants"
    )
    op.create_table(
        "credit_note_uses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("credit_note_id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["credit_note_id"], ["credit_notes.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("credit_note_uses", schema=None) as batch_op:
        for column in ("credit_note_id", "invoice_id", "tenant_id"):
            batch_op.create_index(
                batch_op.f(f"ix_credit_note_uses_{column}"), [column], unique=False
            )


def downgrade() -> None:
    op.drop_table("credit_note_uses")
    op.drop_table("credit_note_sequences")
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        for name in ("tenant_id", "invoice_id"):
            batch_op.drop_index(batch_op.f(f"ix_credit_notes_{name}"))
        batch_op.drop_index("ix_credit_notes_tenant_created")
        batch_op.drop_index("ix_credit_notes_balance")
    op.drop_table("credit_notes")
