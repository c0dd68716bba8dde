"""xAPI statements (stored once, forwarded at most once). Saved candidates belong to organizations (orgs/models.py)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Column, Date, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from courses.models import Enrollment
from credentials.models import Certificate


class XapiStatement(db.Model):
    __tablename__ = "xapi_statements"
    __table_args__ = (
        Index("ix_xapi_statements_timestamp", "timestamp"),
        Index("ix_xapi_statements_sent_at", "sent_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the statement's UUID
    timestamp: Mapped[datetime]
    verb: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    statement: Mapped[dict] = mapped_column(JSON)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class LearningDay(db.Model):
    """One enrollment's learning on one UTC day, summed from lesson_progress and quiz_attempts (a rollup).

    The workforce report reads these instead of every lesson and attempt (1.3 M rows at 10,000 learners): the
    report's periods are whole UTC days, so summing days gives exactly the numbers the raw rows give. Kept up to
    date by insights/learning_days.py when progress or attempts change, and rebuilt by
    ``flask reports rebuild-learning-days``.
    """

    __tablename__ = "learning_days"

    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    # stated minutes of the lessons completed that day (the lessons' current minutes)
    lesson_minutes: Mapped[int] = mapped_column(default=0)
    # measured active seconds: the lessons' recorded time plus submitted quiz attempts' start-to-submit time
    active_seconds: Mapped[int] = mapped_column(default=0)
    # module quizzes passed for the first time that day (measurable skill gains)
    first_passes: Mapped[int] = mapped_column(default=0)


class EnrollmentDay(db.Model):
    """Enrollments started on one UTC day in one course, by time to complete (a rollup for the insights dashboard).

    ``completed`` false rows count the enrollments not completed yet (``tenths`` is then 0); true rows count the
    completed ones by whole tenths of a day from enrolling to completing, the unit of the dashboard's medians.
    Maintained by database triggers on ``enrollments`` (migration 0023) in the writing transaction, so every write
    path (the ORM, conditional UPDATEs, cascaded deletes, raw SQL) keeps it exact; insights/rollups.py rebuilds it.
    """

    __tablename__ = "insights_enrollment_days"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    completed: Mapped[bool] = mapped_column(primary_key=True)
    tenths: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int]


class CertificateDay(db.Model):
    """Course certificates per UTC day and course: ``issued`` by award day, ``revoked`` by revocation day, and
    ``expires`` by expiry day for those not revoked (a rollup for the insights dashboard, kept like EnrollmentDay).
    """

    __tablename__ = "insights_certificate_days"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    n: Mapped[int]


# Changes to the two day rollups on PostgreSQL: its triggers (migration 0030) append one row per changed source row
# here, and rollups.fold adds them up into the day tables just before the writing transaction commits (and at a read
# that finds some: bulk SQL outside a session). Updating a day row from every row trigger made a bulk write
# quadratic there (each update of the same row in one transaction leaves a version that later ones walk past) and
# locked the day rows shared by concurrent writers (a course's enrollments and certificates of one day) from the
# write until commit. Appending conflicts with nobody; the fold locks each day row once, in key order, at commit.
# SQLite's triggers update the day rows directly (one writer at a time, updated in place): these stay empty there.
enrollment_day_changes = Table(
    "insights_enrollment_day_changes",
    db.metadata,
    Column("course_id", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("completed", Boolean, nullable=False),
    Column("tenths", Integer, nullable=False),
    Column("n", Integer, nullable=False),
)
certificate_day_changes = Table(
    "insights_certificate_day_changes",
    db.metadata,
    Column("course_id", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("day", Date, nullable=False),
    Column("n", Integer, nullable=False),
)

# the dashboard counts certificates expiring in the next 60 days from the rollup's whole days and reads only the
# two partial days at either end from certificates themselves, by this index
Index("ix_certificates_expires_at", Certificate.expires_at)


class ReportVersion(db.Model):
    """How often the data behind workforce reports changed: ``org:<id>`` for one organization (its members'
    learning, certificates, cohorts), ``all`` for what every organization's report reads (courses, programs,
    occupations, bulk rebuilds). A cached report is good only while both numbers are the ones it was built at."""

    __tablename__ = "report_versions"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


class CachedReport(db.Model):
    """A workforce report as computed (insights/report_cache.py), keyed by organization, filters and day."""

    __tablename__ = "workforce_report_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    # sha256 of organization, cohort, program, period and the moment the report is judged at
    key: Mapped[str] = mapped_column(String(64), unique=True)
    org_version: Mapped[int]
    all_version: Mapped[int]
    computed_at: Mapped[datetime]
    payload: Mapped[dict] = mapped_column(JSON)


# people counts read only the enrollments started in the period and those active in the last 30 days
Index("ix_enrollments_enrolled_at", Enrollment.enrolled_at)
# "active in the last 30 days" starts inside a day: that day's learners are read by activity, then each one's
# courses and activity by user (insights/reports.py). At 1M learners that was ~7k learners and ~21k enrollments read
# from the heap page by page (0.4-0.6 s of the dashboard's ~0.85 s); these two answer from the index alone
# (migration 0030b). The second adds one index entry to an activity update, which touches every index of the table
# anyway (last_activity_at is indexed, so the update is never HOT).
Index("ix_enrollments_active_at", Enrollment.last_activity_at, postgresql_include=["user_id"])
Index("ix_enrollments_user_activity", Enrollment.user_id, Enrollment.course_id, Enrollment.last_activity_at)


class PeopleDay(db.Model):
    """Distinct people per course group, as per-person rows summed (a rollup for the insights dashboard).

    For each measure, each person's qualifying enrollments are ordered by (UTC day, course id); the row of one
    enrollment carries its day, its course and ``later``, the courses that come after it for that person. A person
    counts in a group of courses G once: at their last qualifying enrollment in G, the row whose course is in G and
    whose ``later`` misses G. So the people of any group since a day are a sum over rows, whatever the number of
    learners. ``credentialed`` rows hold for credential windows ``w_lo <= W < w_hi`` (whole days; other measures
    0, 0). Kept by insights/people.py from the users that triggers mark in insights_people_dirty.
    """

    __tablename__ = "insights_people_days"

    measure: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(primary_key=True)
    later: Mapped[str] = mapped_column(Text, primary_key=True)  # course ids, ascending, comma-separated
    w_lo: Mapped[int] = mapped_column(primary_key=True)
    w_hi: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int]


class PeopleState(db.Model):
    """What a person's rows in insights_people_days were computed from, to take them back when it changes.

    No foreign key: a deleted user's state must outlive them until their rows are taken back."""

    __tablename__ = "insights_people_states"

    user_id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[list] = mapped_column(JSON)


class PeopleDirty(db.Model):
    """Users whose enrollments or course certificates changed since their rows were computed (set by triggers)."""

    __tablename__ = "insights_people_dirty"

    user_id: Mapped[int] = mapped_column(primary_key=True)


# "is any enrollment on or after the period's end?" (then people come from enrollments, not the rollup)
Index("ix_insights_enrollment_days_day", EnrollmentDay.day)
