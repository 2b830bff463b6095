"""invoice revisions: a voided invoice regenerated for the same period

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OLD = ["tenant_id", "subscription_id", "period_start", "period_end"]
NEW_NAME = "uq_invoices_subscription_period_revision"
# How the unnamed constraint of 0001 is found: PostgreSQL named it itself; on SQLite,
# where the table is rebuilt, reflection names it by this convention.
PG_OLD_NAME = "invoices_tenant_id_subscription_id_period_start_period_end_key"
SQLITE_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
SQLITE_OLD_NAME = "uq_invoices_tenant_id_subscription_id_period_start_period_end"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("regenerated_from", sa.String(length=40), nullable=True))
    if sqlite:
        with op.batch_alter_table(
            "invoices", recreate="always", naming_convention=SQLITE_CONVENTION
        ) as batch:
            batch.drop_constraint(SQLITE_OLD_NAME, type_="unique")
            batch.create_unique_constraint(NEW_NAME, [*OLD, "revision"])
    else:
        op.drop_constraint(PG_OLD_NAME, "invoices", type_="unique")
        op.create_unique_constraint(NEW_NAME, "invoices", [*OLD, "revision"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.batch_alter_table(
            "invoices", recreate="always", naming_convention=SQLITE_CONVENTION
        ) as batch:
            batch.drop_constraint(NEW_NAME, type_="unique")
            batch.create_unique_constraint(SQLITE_OLD_NAME, OLD)
    else:
        op.drop_constraint(NEW_NAME, "invoices", type_="unique")
        op.create_unique_constraint(PG_OLD_NAME, "invoices", OLD)
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("regenerated_from")
        batch.drop_column("revision")
