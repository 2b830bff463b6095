"""Several billing entities per tenant, each with its invoice prefix and taxes

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 22:00:00.000000

docs/billing-entities.md: `billing_entities` was one row per tenant (keyed by the
tenant); it becomes one row per (tenant, code). Today's rows become code `default`,
marked default, with the invoice prefix `INV` (so they go on with the tenant's
`invoice_sequences`). Customers and invoices get `billing_entity_id`; the existing rows
of a tenant with an entity are pinned to it (null stays only where the tenant has none).
Prefixes other than INV number from `invoice_number_sequences`.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

import invoicing.db

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

INSTANT = invoicing.db.UTCDateTime(timezone=True)

SELLER = (
    "legal_name",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country",
    "tax_id",
    "email",
    "iban",
)


OPTIONAL = {"address_line2", "tax_id", "email", "iban"}


def _seller_columns(*, nullable: bool) -> list[sa.Column[str]]:
    lengths = {"country": 2, "iban": 34, "postal_code": 40, "tax_id": 100, "city": 200}
    return [
        sa.Column(
            name,
            sa.String(length=lengths.get(name, 300)),
            nullable=nullable or name in OPTIONAL,
        )
        for name in SELLER
    ]


def upgrade() -> None:
    bind = op.get_bind()
    legacy = sa.table(
        "billing_entities",
        sa.column("tenant_id", sa.String()),
        *(sa.column(name, sa.String()) for name in SELLER),
        sa.column("updated_at", INSTANT),
    )
    old = bind.execute(sa.select(legacy)).all()
    op.drop_table("billing_entities")
    entities = op.create_table(
        "billing_entities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("invoice_prefix", sa.String(length=20), nullable=False),
        sa.Column("tax_codes", sa.JSON(), nullable=False),
        *_seller_columns(nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("archived_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_billing_entities_tenant"),
        sa.PrimaryKeyConstraint("id", name="pk_billing_entities"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_billing_entities_tenant_code"),
        sa.UniqueConstraint("tenant_id", "invoice_prefix", name="uq_billing_entities_prefix"),
    )
    op.create_index("ix_billing_entities_tenant_id", "billing_entities", ["tenant_id"])
    ids = {row.tenant_id: f"be_{uuid.uuid4().hex[:24]}" for row in old}
    if old:
        op.bulk_insert(
            entities,
            [
                {
                    "id": ids[row.tenant_id],
                    "tenant_id": row.tenant_id,
                    "code": "default",
                    "name": row.legal_name,
                    "is_default": True,
                    "invoice_prefix": "INV",
                    "tax_codes": [],
                    **{name: getattr(row, name) for name in SELLER},
                    "created_at": row.updated_at,
                    "updated_at": row.updated_at,
                }
                for row in old
            ],
        )
    op.create_table(
        "invoice_number_sequences",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "prefix"),
    )
    for table in ("customers", "invoices"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("billing_entity_id", sa.String(length=40), nullable=True))
            batch.create_foreign_key(
                f"fk_{table}_billing_entity", "billing_entities", ["billing_entity_id"], ["id"]
            )
            batch.create_index(f"ix_{table}_billing_entity_id", ["billing_entity_id"])
        for tenant_id, entity_id in ids.items():
            bind.execute(
                sa.text(
                    f"UPDATE {table} SET billing_entity_id = :entity WHERE tenant_id = :tenant"
                ),
                {"entity": entity_id, "tenant": tenant_id},
            )


def downgrade() -> None:
    bind = op.get_bind()
    current = sa.table(
        "billing_entities",
        sa.column("tenant_id", sa.String()),
        *(sa.column(name, sa.String()) for name in SELLER),
        sa.column("updated_at", INSTANT),
        sa.column("is_default", sa.Boolean()),
    )
    complete = [current.c[n].is_not(None) for n in SELLER if n not in OPTIONAL]
    rows = bind.execute(
        sa.select(*(c for c in current.c if c.name != "is_default")).where(
            current.c.is_default.is_(True), *complete
        )
    ).all()
    for table in ("invoices", "customers"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_billing_entity_id")
            batch.drop_constraint(f"fk_{table}_billing_entity", type_="foreignkey")
            batch.drop_column("billing_entity_id")
    op.drop_table("invoice_number_sequences")
    op.drop_index("ix_billing_entities_tenant_id", table_name="billing_entities")
    op.drop_table("billing_entities")
    legacy = op.create_table(
        "billing_entities",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        *_seller_columns(nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    if rows:
        op.bulk_insert(legacy, [dict(row._mapping) for row in rows])
