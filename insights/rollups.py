"""The insights dashboard's per-day rollups (insights.models.EnrollmentDay, CertificateDay), recomputed from source.

Database triggers (migration 0023_insights_rollup) keep both tables current in every writing transaction. This
module holds the same rules as SQL over enrollments and certificates: ``expected_rows`` is what the tests compare
the tables with, and ``rebuild`` refills them after a bulk load that bypassed the triggers (the 1M-learner
benchmark generator loads with triggers off, then rebuilds once).
"""

from __future__ import annotations

from sqlalchemy import and_, case, delete, func, insert, literal, select, union_all

from core.extensions import db
from courses.models import Enrollment
from credentials.models import Certificate
from insights.models import CertificateDay, EnrollmentDay


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


def rebuild() -> tuple[int, int]:
    """Refill both rollups from enrollments and certificates (flushes; the caller commits). Returns their row counts."""
    from insights import dashboard_cache

    dashboard_cache.bump(db.session.connection())  # cached dashboards were computed from the tables before
    db.session.execute(delete(EnrollmentDay))
    db.session.execute(delete(CertificateDay))
    db.session.execute(
        insert(EnrollmentDay).from_select(["course_id", "day", "completed", "tenths", "n"], _enrollment_rows())
    )
    db.session.execute(insert(CertificateDay).from_select(["course_id", "kind", "day", "n"], _certificate_rows()))
    count = func.count()
    return (
        db.session.scalar(select(count).select_from(EnrollmentDay)),
        db.session.scalar(select(count).select_from(CertificateDay)),
    )
