"""insights dashboard: people per course group from a rollup (rows per person, summed), kept via dirty marks

Revision ID: 0023b_insights_people
Revises: 0022_cohort_program
Create Date: 2026-12-07 04:40:00

Triggers only note which users changed (insights_people_dirty); insights/people.py recomputes those users' rows
before the transaction commits, in Python, from their enrollments and certificates. A trigger sees every write
path (conditional UPDATEs, bulk revocations, cascaded deletes, raw SQL). Marking upserts the user's row, so a
second transaction changing the same user waits for the first to commit and then sees its result.

Existing users are marked here; the first commit that settles them (or `flask insights rebuild-rollups`, faster on
a large database) computes their rows.
"""

# ruff: noqa: S608  (every statement is built from fixed SQL fragments of this file; nothing comes from input)
import sqlalchemy as sa
from alembic import op

revision = "0023b_insights_people"
down_revision = "0022_cohort_program"
branch_labels = None
depends_on = None

CHANGED = {
    # a new day of activity moves a person's 'active' rows; activity within the same day does not
    "enrollments": (
        "OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.course_id IS DISTINCT FROM NEW.course_id "
        "OR OLD.enrolled_at IS DISTINCT FROM NEW.enrolled_at OR OLD.completed_at IS DISTINCT FROM NEW.completed_at "
        "OR {day_old} IS DISTINCT FROM {day_new}"
    ),
    "certificates": (
        "OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.course_id IS DISTINCT FROM NEW.course_id "
        "OR OLD.awarded_at IS DISTINCT FROM NEW.awarded_at"
    ),
}


def upgrade():
    op.create_table(
        "insights_people_days",
        sa.Column("measure", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("later", sa.Text(), nullable=False),
        sa.Column("w_lo", sa.Integer(), nullable=False),
        sa.Column("w_hi", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "measure", "day", "course_id", "later", "w_lo", "w_hi", name=op.f("pk_insights_people_days")
        ),
    )
    op.create_table(
        "insights_people_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_insights_people_states")),
    )
    op.create_table(
        "insights_people_dirty",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_insights_people_dirty")),
    )
    op.create_index("ix_insights_enrollment_days_day", "insights_enrollment_days", ["day"])
    # a period that ends before the latest enrollment reads people from enrollments: only those in the period and
    # those active in the last 30 days, by these
    op.create_index("ix_enrollments_enrolled_at", "enrollments", ["enrolled_at"])
    op.create_index("ix_enrollments_active_at", "enrollments", ["last_activity_at"])
    op.execute("INSERT INTO insights_people_dirty (user_id) SELECT DISTINCT user_id FROM enrollments")
    if op.get_bind().dialect.name == "postgresql":
        day = "date(timezone('UTC', {}.last_activity_at))"
        op.execute("""
            CREATE FUNCTION insights_people_mark() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                -- DO UPDATE (not DO NOTHING) locks the mark: a second writer for the same user waits here
                IF TG_OP <> 'INSERT' THEN
                    INSERT INTO insights_people_dirty (user_id) VALUES (OLD.user_id)
                    ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id;
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    INSERT INTO insights_people_dirty (user_id) VALUES (NEW.user_id)
                    ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id;
                END IF;
                RETURN NULL;
            END $$""")
        for table, changed in CHANGED.items():
            changed = changed.format(day_old=day.format("OLD"), day_new=day.format("NEW"))
            op.execute(f"""
                CREATE TRIGGER insights_people_{table}_write AFTER INSERT OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION insights_people_mark()""")
            op.execute(f"""
                CREATE TRIGGER insights_people_{table}_update AFTER UPDATE ON {table}
                FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION insights_people_mark()""")
        return
    day = "date({}.last_activity_at)"

    def mark(row: str) -> str:
        return f"INSERT INTO insights_people_dirty (user_id) VALUES ({row}.user_id) ON CONFLICT (user_id) DO NOTHING;"

    for table, changed in CHANGED.items():
        changed = changed.format(day_old=day.format("OLD"), day_new=day.format("NEW"))
        changed = changed.replace("IS DISTINCT FROM", "IS NOT")
        op.execute(f"CREATE TRIGGER insights_people_{table}_insert AFTER INSERT ON {table} BEGIN {mark('NEW')} END")
        op.execute(f"CREATE TRIGGER insights_people_{table}_delete AFTER DELETE ON {table} BEGIN {mark('OLD')} END")
        op.execute(
            f"CREATE TRIGGER insights_people_{table}_update AFTER UPDATE ON {table} WHEN {changed} "
            f"BEGIN {mark('OLD')} {mark('NEW')} END"
        )


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in CHANGED:
        if postgresql:
            op.execute(f"DROP TRIGGER insights_people_{table}_write ON {table}")
            op.execute(f"DROP TRIGGER insights_people_{table}_update ON {table}")
        else:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER insights_people_{table}_{event}")
    if postgresql:
        op.execute("DROP FUNCTION insights_people_mark()")
    op.drop_index("ix_insights_enrollment_days_day", table_name="insights_enrollment_days")
    op.drop_index("ix_enrollments_enrolled_at", table_name="enrollments")
    op.drop_index("ix_enrollments_active_at", table_name="enrollments")
    op.drop_table("insights_people_dirty")
    op.drop_table("insights_people_states")
    op.drop_table("insights_people_days")
