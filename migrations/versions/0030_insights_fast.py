"""insights dashboard cache: every write that can change a dashboard number marks a user

Revision ID: 0030_insights_fast
Revises: 0024_suspension
Create Date: 2026-12-07 07:45:00

The dashboard's answer is cached per process while the ``insights`` counter is unchanged (insights/dashboard_cache.py),
and the counter moves when ``people.settle`` settles marked users. So the marking triggers of 0023b now also mark:

- certificates whose revocation or expiry changed (the certificate counts move; the people rows do not);
- enrollments whose activity moved back in time, or moved from a moment more than 29 days ago (within one day these
  can change "active in the last 30 days"; 0023b marked only a change of day).

What stays unmarked is activity moving forward within one day from a moment in the last 29 days: each ordinary
lesson completion. Proof that no cached answer changes: an entry computed at t0 (before the write at w >= t0) is
served up to m + 30 days, m the earliest activity at or after t0 - 30 days, so its window starts no later than m.
The old activity x >= w - 29 days > t0 - 30 days, so m <= x, and the new one y >= x: both inside every window the
entry is served for. One day of margin covers an app server's clock running ahead of the database's.
"""

# ruff: noqa: S608  (every statement is built from fixed SQL fragments of this file; nothing comes from input)
from alembic import op

revision = "0030_insights_fast"
down_revision = "0024_suspension"
branch_labels = None
depends_on = None

BEFORE = {
    # as 0023b created them
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
AFTER = {
    "enrollments": BEFORE["enrollments"]
    + " OR NEW.last_activity_at < OLD.last_activity_at OR OLD.last_activity_at < {days_ago_29}",
    "certificates": BEFORE["certificates"]
    + " OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at",
}


def _update_triggers(conditions: dict[str, str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        day = "date(timezone('UTC', {}.last_activity_at))"
        for table, changed in conditions.items():
            changed = changed.format(
                day_old=day.format("OLD"), day_new=day.format("NEW"), days_ago_29="now() - interval '29 days'"
            )
            op.execute(f"DROP TRIGGER insights_people_{table}_update ON {table}")
            op.execute(f"""
                CREATE TRIGGER insights_people_{table}_update AFTER UPDATE ON {table}
                FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION insights_people_mark()""")
        return
    day = "date({}.last_activity_at)"

    def mark(row: str) -> str:
        return f"INSERT INTO insights_people_dirty (user_id) VALUES ({row}.user_id) ON CONFLICT (user_id) DO NOTHING;"

    for table, changed in conditions.items():
        # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): text order is time order
        changed = changed.format(
            day_old=day.format("OLD"), day_new=day.format("NEW"), days_ago_29="datetime('now', '-29 days')"
        )
        changed = changed.replace("IS DISTINCT FROM", "IS NOT")
        op.execute(f"DROP TRIGGER insights_people_{table}_update")
        op.execute(
            f"CREATE TRIGGER insights_people_{table}_update AFTER UPDATE ON {table} WHEN {changed} "
            f"BEGIN {mark('OLD')} {mark('NEW')} END"
        )


def upgrade():
    _update_triggers(AFTER)


def downgrade():
    _update_triggers(BEFORE)
