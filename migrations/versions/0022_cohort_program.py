"""Cohorts follow a program and can be archived; workforce reports are cached per organization, filters and day

Revision ID: 0022_cohort_program
Revises: 0026_content_versions
Create Date: 2026-12-07 04:10:00

"""

import sqlalchemy as sa
from alembic import op

import core.database

revision = "0022_cohort_program"
down_revision = "0026_content_versions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cohorts") as batch_op:
        batch_op.add_column(sa.Column("program_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("archived_at", core.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_cohorts_program_id_programs", "programs", ["program_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_cohorts_program_id", ["program_id"])
    op.create_table(
        "report_versions",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_report_versions")),
    )
    op.create_table(
        "workforce_report_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("org_version", sa.Integer(), nullable=False),
        sa.Column("all_version", sa.Integer(), nullable=False),
        sa.Column("computed_at", core.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_workforce_report_cache_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workforce_report_cache")),
        sa.UniqueConstraint("key", name=op.f("uq_workforce_report_cache_key")),
    )
    op.create_index("ix_workforce_report_cache_organization_id", "workforce_report_cache", ["organization_id"])


def downgrade():
    op.drop_index("ix_workforce_report_cache_organization_id", table_name="workforce_report_cache")
    op.drop_table("workforce_report_cache")
    op.drop_table("report_versions")
    with op.batch_alter_table("cohorts") as batch_op:
        batch_op.drop_index("ix_cohorts_program_id")
        batch_op.drop_constraint("fk_cohorts_program_id_programs", type_="foreignkey")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("program_id")
