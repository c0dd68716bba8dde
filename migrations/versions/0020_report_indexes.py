"""workforce report: learning_days rollup (filled from lesson_progress and quiz_attempts)

Revision ID: 0020_report_indexes
Revises: 0018_course_language
Create Date: 2026-12-07 01:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0020_report_indexes"
down_revision = "0018_course_language"
branch_labels = None
depends_on = None


def _fill_sql(dialect: str) -> str:
    # the same rule as insights/learning_days.py, written out so the migration does not depend on app code
    if dialect == "postgresql":
        day = "date(timezone('UTC', {}))"
        seconds = "date_part('epoch', a.submitted_at - a.started_at)"
    else:
        day = "date({})"
        seconds = "(julianday(a.submitted_at) - julianday(a.started_at)) * 86400.0"
    return f"""
        INSERT INTO learning_days (enrollment_id, day, lesson_minutes, active_seconds, first_passes)
        SELECT enrollment_id, day, sum(minutes), sum(seconds), sum(passes) FROM (
            SELECT p.enrollment_id AS enrollment_id, {day.format("p.completed_at")} AS day, l.minutes AS minutes,
                   coalesce(p.active_seconds, 0) AS seconds, 0 AS passes
            FROM lesson_progress p JOIN lessons l ON l.id = p.lesson_id
            UNION ALL
            SELECT a.enrollment_id, {day.format("a.submitted_at")}, 0,
                   CASE WHEN {seconds} >= 0 AND {seconds} <= 1800 THEN round({seconds}) ELSE 0 END, 0
            FROM quiz_attempts a WHERE a.submitted_at IS NOT NULL
            UNION ALL
            SELECT f.enrollment_id, {day.format("f.at")}, 0, 0, 1 FROM (
                SELECT enrollment_id, min(submitted_at) AS at FROM quiz_attempts
                WHERE passed IS TRUE AND submitted_at IS NOT NULL GROUP BY enrollment_id, quiz_id
            ) f
        ) steps
        GROUP BY enrollment_id, day
    """


def upgrade():
    op.create_table(
        "learning_days",
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("lesson_minutes", sa.Integer(), nullable=False),
        sa.Column("active_seconds", sa.Integer(), nullable=False),
        sa.Column("first_passes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_learning_days_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enrollment_id", "day", name=op.f("pk_learning_days")),
    )
    op.execute(_fill_sql(op.get_bind().dialect.name))


def downgrade():
    op.drop_table("learning_days")
