"""insights dashboard rollups: enrollments and course certificates per UTC day, kept by triggers

Revision ID: 0023_insights_rollup
Revises: 0021_certificate_language
Create Date: 2026-12-07 04:10:00

Triggers rather than ORM events: enrollments are completed by a conditional UPDATE, org credentials are revoked in
bulk, users' enrollments go by cascaded deletes and the benchmark loads rows with plain SQL; a trigger sees all of
them, in the writing transaction. Counts change by +1/-1 under the row lock of an upsert, so two transactions
writing the same day never lose each other's change (recomputing a shared day row from its source rows would,
under READ COMMITTED). The rule for a day and a duration is the one insights/reports.py uses for its direct query,
written out here so that the migration does not depend on app code.
"""

# ruff: noqa: S608  (every statement is built from fixed SQL fragments of this file; nothing comes from input)
import sqlalchemy as sa
from alembic import op

revision = "0023_insights_rollup"
down_revision = "0021_certificate_language"
branch_labels = None
depends_on = None


def _rules(dialect: str) -> tuple[str, str]:
    """SQL templates for the UTC day of a timestamp and whole tenths of a day between two of them."""
    if dialect == "postgresql":
        return "date(timezone('UTC', {0}))", "CAST(floor(extract(epoch FROM {0} - {1}) / 8640) AS INTEGER)"
    # SQLite stores naive UTC; julianday() is a float: nudged up so that exactly 2 days is 20 tenths, not 19.99999
    return "date({0})", "CAST((julianday({0}) - julianday({1})) * 10 + 0.000001 AS INTEGER)"


def _enrollment_row(dialect: str, row: str) -> tuple[str, str, str]:
    day, tenths = _rules(dialect)
    return (
        day.format(f"{row}.enrolled_at"),
        f"{row}.completed_at IS NOT NULL",
        f"CASE WHEN {row}.completed_at IS NULL THEN 0 "
        f"ELSE {tenths.format(f'{row}.completed_at', f'{row}.enrolled_at')} END",
    )


def _certificate_rows(dialect: str, row: str) -> str:
    """(kind, day) rows one certificate contributes, as a SELECT (kinds whose timestamp is NULL give no row)."""
    day, _ = _rules(dialect)
    return (
        f"SELECT 'issued' AS kind, {day.format(f'{row}.awarded_at')} AS day "
        f"UNION ALL SELECT 'revoked', {day.format(f'{row}.revoked_at')} "
        f"UNION ALL SELECT 'expires', CASE WHEN {row}.revoked_at IS NULL THEN {day.format(f'{row}.expires_at')} END"
    )


def _sync_sql(dialect: str, row: str, sign: int) -> list[str]:
    """Statements adding (+1) or taking back (-1) one enrollment's and one certificate's contribution."""
    day, completed, tenths = _enrollment_row(dialect, row)
    if sign > 0:
        enrollment = f"""
            INSERT INTO insights_enrollment_days (course_id, day, completed, tenths, n)
            VALUES ({row}.course_id, {day}, {completed}, {tenths}, 1)
            ON CONFLICT (course_id, day, completed, tenths) DO UPDATE SET n = insights_enrollment_days.n + 1"""
        certificate = f"""
            INSERT INTO insights_certificate_days (course_id, kind, day, n)
            SELECT {row}.course_id, c.kind, c.day, 1 FROM ({_certificate_rows(dialect, row)}) AS c
            WHERE c.day IS NOT NULL AND {row}.course_id IS NOT NULL
            ON CONFLICT (course_id, kind, day) DO UPDATE SET n = insights_certificate_days.n + 1"""
    else:
        # the row being taken back was added when it was written: no insert needed (and a table emptied before
        # its source rows are deleted stays empty)
        enrollment = f"""
            UPDATE insights_enrollment_days SET n = n - 1
            WHERE course_id = {row}.course_id AND day = {day} AND completed = ({completed}) AND tenths = {tenths}"""
        certificate = f"""
            UPDATE insights_certificate_days SET n = n - 1
            WHERE course_id = {row}.course_id
              AND (kind, day) IN (SELECT c.kind, c.day FROM ({_certificate_rows(dialect, row)}) AS c)"""
    return [enrollment, certificate]


ENROLLMENT_CHANGED = (
    "OLD.course_id IS DISTINCT FROM NEW.course_id OR OLD.enrolled_at IS DISTINCT FROM NEW.enrolled_at "
    "OR OLD.completed_at IS DISTINCT FROM NEW.completed_at"
)
CERTIFICATE_CHANGED = (
    "OLD.course_id IS DISTINCT FROM NEW.course_id OR OLD.awarded_at IS DISTINCT FROM NEW.awarded_at "
    "OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at"
)


def _create_triggers(dialect: str) -> None:
    tables = (("enrollments", 0, ENROLLMENT_CHANGED), ("certificates", 1, CERTIFICATE_CHANGED))
    if dialect == "postgresql":
        for table, which, changed in tables:
            add, take = _sync_sql(dialect, "NEW", 1)[which], _sync_sql(dialect, "OLD", -1)[which]
            op.execute(f"""
                CREATE FUNCTION insights_{table}_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP <> 'INSERT' THEN {take}; END IF;
                    IF TG_OP <> 'DELETE' THEN {add}; END IF;
                    RETURN NULL;
                END $$""")
            op.execute(f"""
                CREATE TRIGGER insights_{table}_rollup_write AFTER INSERT OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION insights_{table}_rollup()""")
            op.execute(f"""
                CREATE TRIGGER insights_{table}_rollup_update AFTER UPDATE ON {table}
                FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION insights_{table}_rollup()""")
        return
    for table, which, changed in tables:
        add, take = _sync_sql(dialect, "NEW", 1)[which], _sync_sql(dialect, "OLD", -1)[which]
        changed = changed.replace("IS DISTINCT FROM", "IS NOT")
        op.execute(f"CREATE TRIGGER insights_{table}_rollup_insert AFTER INSERT ON {table} BEGIN {add}; END")
        op.execute(f"CREATE TRIGGER insights_{table}_rollup_delete AFTER DELETE ON {table} BEGIN {take}; END")
        op.execute(
            f"CREATE TRIGGER insights_{table}_rollup_update AFTER UPDATE ON {table} WHEN {changed} "
            f"BEGIN {take}; {add}; END"
        )


def _fill_sql(dialect: str) -> list[str]:
    day, completed, tenths = _enrollment_row(dialect, "e")
    day_of, _ = _rules(dialect)
    return [
        f"""INSERT INTO insights_enrollment_days (course_id, day, completed, tenths, n)
            SELECT course_id, day, completed, tenths, count(*) FROM (
                SELECT e.course_id AS course_id, {day} AS day, {completed} AS completed, {tenths} AS tenths
                FROM enrollments e) AS rows
            GROUP BY course_id, day, completed, tenths""",
        f"""INSERT INTO insights_certificate_days (course_id, kind, day, n)
            SELECT course_id, kind, day, count(*) FROM (
                SELECT course_id, 'issued' AS kind, {day_of.format("awarded_at")} AS day FROM certificates
                UNION ALL SELECT course_id, 'revoked', {day_of.format("revoked_at")} FROM certificates
                UNION ALL SELECT course_id, 'expires',
                    CASE WHEN revoked_at IS NULL THEN {day_of.format("expires_at")} END FROM certificates) AS c
            WHERE course_id IS NOT NULL AND day IS NOT NULL
            GROUP BY course_id, kind, day""",
    ]


def upgrade():
    op.create_table(
        "insights_enrollment_days",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("tenths", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_insights_enrollment_days_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "day", "completed", "tenths", name=op.f("pk_insights_enrollment_days")),
    )
    op.create_table(
        "insights_certificate_days",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_insights_certificate_days_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "kind", "day", name=op.f("pk_insights_certificate_days")),
    )
    op.create_index("ix_certificates_expires_at", "certificates", ["expires_at"])
    dialect = op.get_bind().dialect.name
    for statement in _fill_sql(dialect):
        op.execute(statement)
    _create_triggers(dialect)


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in ("enrollments", "certificates"):
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER insights_{table}_rollup_write ON {table}")
            op.execute(f"DROP TRIGGER insights_{table}_rollup_update ON {table}")
            op.execute(f"DROP FUNCTION insights_{table}_rollup()")
        else:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER insights_{table}_rollup_{event}")
    op.drop_index("ix_certificates_expires_at", table_name="certificates")
    op.drop_table("insights_certificate_days")
    op.drop_table("insights_enrollment_days")
