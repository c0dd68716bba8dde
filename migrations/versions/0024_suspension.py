"""Suspension: certificates.suspended_at / suspended_until / suspension_reason, and status lists with a purpose
(a suspension list mirrors the slots of one revocation list)

Revision ID: 0024_suspension
Revises: 0023b_insights_people
Create Date: 2026-12-07 04:20:00

"""

import sqlalchemy as sa
from alembic import op

import core.database

revision = "0024_suspension"
down_revision = "0023b_insights_people"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("status_lists") as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), server_default="revocation", nullable=False))
        batch_op.add_column(sa.Column("revocation_list_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_status_lists_revocation_list_id"), ["revocation_list_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_status_lists_revocation_list_id_status_lists"),
            "status_lists",
            ["revocation_list_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_status_lists_purpose_known"), "purpose IN ('revocation', 'suspension')"
        )
    # plain ADD COLUMN, never a batch rebuild: rebuilding `certificates` on SQLite would drop the insights
    # rollup triggers (0023) that live on it
    op.add_column("certificates", sa.Column("suspended_at", core.database.UTCDateTime(timezone=True), nullable=True))
    op.add_column(
        "certificates", sa.Column("suspended_until", core.database.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("certificates", sa.Column("suspension_reason", sa.Text(), nullable=True))


def downgrade():
    # SQLite 3.35+ drops a column in place (no rebuild, so the triggers on `certificates` stay)
    op.drop_column("certificates", "suspension_reason")
    op.drop_column("certificates", "suspended_until")
    op.drop_column("certificates", "suspended_at")
    with op.batch_alter_table("status_lists") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_status_lists_purpose_known"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_status_lists_revocation_list_id_status_lists"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_status_lists_revocation_list_id"), type_="unique")
        batch_op.drop_column("revocation_list_id")
        batch_op.drop_column("purpose")
