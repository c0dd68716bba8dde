"""The insights dashboard's per-day rollups (insights.models.EnrollmentDay, CertificateDay), recomputed from source.

Database triggers (migration 0023_insights_rollup) keep both tables current in every writing transaction (on
PostgreSQL through appended changes that ``fold`` adds in before commit, migration 0030b). This
module holds the same rules as SQL over enrollments and certificates: ``expected_rows`` is what the tests compare
the tables with, and ``rebuild`` refills them after a bulk load that bypassed the triggers (the 1M-learner
benchmark generator loads with triggers off, then rebuilds once).
"""

from __future__ import annotations

from sqlalchemy import and_, case, delete, func, insert, literal, select, text, union_all

from core.extensions import db
from courses.models import Enrollment
from credentials.models import Certificate
from insights.models import CertificateDay, EnrollmentDay, certificate_day_changes, enrollment_day_changes


def _day(moment):
    """The UTC calendar day of a timestamp column (the dashboard's periods are whole UTC days)."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", moment))
    return func.date(moment)  # SQLite stores naive UTC


def _enrollment_rows():
    from insights.reports import _tenths

    rows = select(
        Enrollment.course_id.label("course_id"),
        _day(Enrollment.enrolled_at).label("day"),
        Enrollment.completed_at.is_not(None).label("completed"),
        case(
            (Enrollment.completed_at.is_(None), 0), else_=_tenths(Enrollment.completed_at, Enrollment.enrolled_at)
        ).label("tenths"),
    ).subquery()
    return select(rows.c.course_id, rows.c.day, rows.c.completed, rows.c.tenths, func.count()).group_by(
        rows.c.course_id, rows.c.day, rows.c.completed, rows.c.tenths
    )


def _certificate_rows():
    course = Certificate.course_id.is_not(None)
    parts = union_all(
        select(Certificate.course_id, literal("issued").label("kind"), _day(Certificate.awarded_at).label("day")).where(
            course
        ),
        select(Certificate.course_id, literal("revoked"), _day(Certificate.revoked_at)).where(
            course, Certificate.revoked_at.is_not(None)
        ),
        select(Certificate.course_id, literal("expires"), _day(Certificate.expires_at)).where(
            and_(course, Certificate.revoked_at.is_(None), Certificate.expires_at.is_not(None))
        ),
    ).subquery()
    return select(parts.c.course_id, parts.c.kind, parts.c.day, func.count()).group_by(
        parts.c.course_id, parts.c.kind, parts.c.day
    )


def expected_rows() -> tuple[dict, dict]:
    """(enrollment day counts, certificate day counts) recomputed from source, keyed like the tables' rows."""
    enrollments = {(c, str(d), bool(done), t): n for c, d, done, t, n in db.session.execute(_enrollment_rows())}
    certificates = {(c, k, str(d)): n for c, k, d, n in db.session.execute(_certificate_rows())}
    return enrollments, certificates


def stored_rows() -> tuple[dict, dict]:
    """The tables' nonzero rows, keyed like expected_rows (a count back at zero leaves a row that means nothing)."""
    e, c = EnrollmentDay, CertificateDay
    enrollments = {
        (course, str(day), bool(done), tenths): n
        for course, day, done, tenths, n in db.session.execute(
            select(e.course_id, e.day, e.completed, e.tenths, e.n).where(e.n != 0)
        )
    }
    certificates = {
        (course, kind, str(day)): n
        for course, kind, day, n in db.session.execute(select(c.course_id, c.kind, c.day, c.n).where(c.n != 0))
    }
    return enrollments, certificates


# PostgreSQL's triggers append changes (migration 0030b); this adds them up into the day tables: each day row is
# locked once, in key order (two transactions folding at once cannot deadlock), changes of a course deleted since
# are dropped with it. Returns the numbers of enrollment and certificate change rows consumed.
FOLD = text("""
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
    SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM c)""")


def fold(connection=None) -> tuple[int, int]:
    """Add the changes PostgreSQL's triggers appended into the day tables, in the current transaction (one
    statement; the caller commits). A session does it just before it commits (insights/people.py); a read does it
    for changes left by SQL outside a session. Nothing to do on SQLite, whose triggers update the day rows.

    Returns the number of (enrollment, certificate) change rows consumed: the dashboard's parts that read either
    table are kept until the next write that had some (insights/dashboard_cache.py)."""
    connection = connection or db.session.connection()
    if connection.dialect.name != "postgresql":
        return 0, 0
    enrollments, certificates = connection.execute(FOLD).one()
    return enrollments, certificates


def rebuild() -> tuple[int, int]:
    """Refill both rollups from enrollments and certificates (flushes; the caller commits). Returns their row counts."""
    from insights import dashboard_cache

    dashboard_cache.bump(db.session.connection())  # cached dashboards were computed from the tables before
    db.session.execute(delete(EnrollmentDay))
    db.session.execute(delete(CertificateDay))
    db.session.execute(delete(enrollment_day_changes))
    db.session.execute(delete(certificate_day_changes))
    db.session.execute(
        insert(EnrollmentDay).from_select(["course_id", "day", "completed", "tenths", "n"], _enrollment_rows())
    )
    db.session.execute(insert(CertificateDay).from_select(["course_id", "kind", "day", "n"], _certificate_rows()))
    count = func.count()
    return (
        db.session.scalar(select(count).select_from(EnrollmentDay)),
        db.session.scalar(select(count).select_from(CertificateDay)),
    )
