"""insights day rollups on PostgreSQL: triggers append changes, folded in before commit

Revision ID: 0030b_insights_day_changes
Revises: 0027_ob_api
Create Date: 2026-12-07 08:05:00

On PostgreSQL the day rollups' row triggers (0023) now append to insights_enrollment_day_changes and
insights_certificate_day_changes instead of updating the day rows, and insights/rollups.py folds the changes into
the day tables before the writing transaction commits. Before, a bulk write in one transaction updated the same
day row once per source row, each update leaving a version the next one had to walk past (quadratic), and
concurrent writers queued on the shared day rows (a course's enrollments or certificates of one day) from their
write until their commit. SQLite keeps 0023's triggers (one writer at a time, rows updated in place); the change
tables exist there too, empty, so that models and migrations agree.

Also two indexes that let the dashboard read the first day of "active in the last 30 days" from indexes alone
(insights/models.py says why).
"""

# ruff: noqa: S608  (every statement is built from fixed SQL fragments of this file; nothing comes from input)
import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0030b_insights_day_changes"
down_revision = "0027_ob_api"
branch_labels = None
depends_on = None

# PostgreSQL: the day rollups' triggers append changes (insights_*_day_changes) instead of updating the day rows;
# insights/rollups.py folds them in before commit. The day and duration rules are 0023's, written out again here.
DAY = "date(timezone('UTC', {0}))"
TENTHS = "CAST(floor(extract(epoch FROM {0} - {1}) / 8640) AS INTEGER)"


def _enrollment_change(row: str, sign: int) -> str:
    tenths = TENTHS.format(f"{row}.completed_at", f"{row}.enrolled_at")
    return f"""
        INSERT INTO insights_enrollment_day_changes (course_id, day, completed, tenths, n)
        VALUES ({row}.course_id, {DAY.format(f"{row}.enrolled_at")}, {row}.completed_at IS NOT NULL,
                CASE WHEN {row}.completed_at IS NULL THEN 0 ELSE {tenths} END, {sign})"""


def _certificate_change(row: str, sign: int) -> str:
    kinds = (
        f"SELECT 'issued' AS kind, {DAY.format(f'{row}.awarded_at')} AS day "
        f"UNION ALL SELECT 'revoked', {DAY.format(f'{row}.revoked_at')} "
        f"UNION ALL SELECT 'expires', CASE WHEN {row}.revoked_at IS NULL THEN {DAY.format(f'{row}.expires_at')} END"
    )
    return f"""
        INSERT INTO insights_certificate_day_changes (course_id, kind, day, n)
        SELECT {row}.course_id, c.kind, c.day, {sign} FROM ({kinds}) AS c
        WHERE c.day IS NOT NULL AND {row}.course_id IS NOT NULL"""


def _functions(bodies: dict[str, tuple[str, str]]) -> None:
    for table, (take, add) in bodies.items():
        op.execute(f"""
            CREATE OR REPLACE FUNCTION insights_{table}_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN {take}; END IF;
                IF TG_OP <> 'DELETE' THEN {add}; END IF;
                RETURN NULL;
            END $$""")


def _rollup_0023():
    """Migration 0023's module, for the function bodies it created (restored on downgrade)."""
    spec = importlib.util.spec_from_file_location("rollup_0023", Path(__file__).with_name("0023_insights_rollup.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade():
    op.create_table(
        "insights_enrollment_day_changes",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("tenths", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_table(
        "insights_certificate_day_changes",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    # the first day of "active in the last 30 days" from indexes alone (insights/models.py)
    op.create_index("ix_enrollments_user_activity", "enrollments", ["user_id", "course_id", "last_activity_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_enrollments_active_at", table_name="enrollments")
        op.create_index(
            "ix_enrollments_active_at", "enrollments", ["last_activity_at"], postgresql_include=["user_id"]
        )
        _functions(
            {
                "enrollments": (_enrollment_change("OLD", -1), _enrollment_change("NEW", 1)),
                "certificates": (_certificate_change("OLD", -1), _certificate_change("NEW", 1)),
            }
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        # changes not folded yet belong in the day tables before the triggers write there again
        op.execute(FOLD)
        old = _rollup_0023()
        _functions(
            {
                table: (old._sync_sql("postgresql", "OLD", -1)[which], old._sync_sql("postgresql", "NEW", 1)[which])
                for table, which in (("enrollments", 0), ("certificates", 1))
            }
        )
    op.drop_table("insights_certificate_day_changes")
    op.drop_table("insights_enrollment_day_changes")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_enrollments_active_at", table_name="enrollments")
        op.create_index("ix_enrollments_active_at", "enrollments", ["last_activity_at"])
    op.drop_index("ix_enrollments_user_activity", table_name="enrollments")


# the same statement as insights.rollups.FOLD (a migration does not import app code)
FOLD = """
    WITH e AS (DELETE FROM insights_enrollment_day_changes RETURNING course_id, day, completed, tenths, n),
    e_in AS (
        INSERT INTO insights_enrollment_days AS t (course_id, day, completed, tenths, n)
        SELECT course_id, day, completed, tenths, sum(n) FROM e
        WHERE course_id IN (SELECT id FROM courses)
        GROUP BY course_id, day, completed, tenths HAVING sum(n) <> 0
        ORDER BY course_id, day, completed, tenths
        ON CONFLICT (course_id, day, completed, tenths) DO UPDATE SET n = t.n + excluded.n
    ),
    c AS (DELETE FROM insights_certificate_day_changes RETURNING course_id, kind, day, n),
    c_in AS (
        INSERT INTO insights_certificate_days AS t (course_id, kind, day, n)
        SELECT course_id, kind, day, sum(n) FROM c
        WHERE course_id IN (SELECT id FROM courses)
        GROUP BY course_id, kind, day HAVING sum(n) <> 0
        ORDER BY course_id, kind, day
        ON CONFLICT (course_id, kind, day) DO UPDATE SET n = t.n + excluded.n
    )
    SELECT (SELECT count(*) FROM e) + (SELECT count(*) FROM c)"""
