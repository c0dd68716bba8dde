"""The cohort dashboard: a fixed number of aggregate queries whatever the cohort's size.

Only learners who joined and have not left appear, and only their records for the cohort's assigned courses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, select

from accounts.models import User
from core.extensions import db
from courses.models import Course, Enrollment, LessonProgress, Module, Quiz, QuizAttempt
from courses.services import step_counts
from credentials.models import Certificate
from credentials.services import expiring_soon
from orgs.models import Cohort, CohortMember

INACTIVE_DAYS = 14


@dataclass
class CourseRow:
    course: Course
    total_steps: int
    enrolled_at: datetime | None = None
    last_activity_at: datetime | None = None
    completed_at: datetime | None = None
    done_steps: int = 0
    attempts: int = 0
    best_score: int | None = None
    certificate: Certificate | None = None
    certificate_status: str = ""

    @property
    def percent(self) -> int:
        if self.completed_at is not None:
            return 100
        return min(99, round(100 * self.done_steps / self.total_steps)) if self.total_steps else 0


@dataclass
class MemberRow:
    member: CohortMember
    user: User
    courses: list[CourseRow] = field(default_factory=list)
    last_activity_at: datetime | None = None
    inactive: bool = False
    behind: bool = False
    # a cohort following a program: the member's program certificate, if any, and its status now
    program_certificate: Certificate | None = None
    program_certificate_status: str = ""

    @property
    def courses_completed(self) -> int:
        return sum(1 for c in self.courses if c.completed_at is not None)

    @property
    def percent(self) -> int:
        return round(sum(c.percent for c in self.courses) / len(self.courses)) if self.courses else 0

    @property
    def completed(self) -> bool:
        return bool(self.courses) and all(c.completed_at is not None for c in self.courses)


def expected_percent(cohort: Cohort, today: date) -> int | None:
    """How far along the cohort should be by now: the share of the time from start to due date that has passed."""
    if cohort.due_on is None:
        return None
    if today >= cohort.due_on:
        return 100
    if today <= cohort.starts_on:
        return 0
    span = (cohort.due_on - cohort.starts_on).days or 1
    return round(100 * (today - cohort.starts_on).days / span)


def build(cohort: Cohort, *, now: datetime, member_id: int | None = None) -> list[MemberRow]:
    """Rows for every current member (or just ``member_id``), in six queries (seven for a cohort following a
    program: its program certificates). ``cohort.courses`` must be loaded."""
    courses = list(cohort.courses)
    course_ids = [c.id for c in courses]
    members_q = select(CohortMember.user_id).where(CohortMember.cohort_id == cohort.id, CohortMember.left_at.is_(None))
    if member_id is not None:
        members_q = members_q.where(CohortMember.id == member_id)
    member_users = members_q

    # 1. members and their accounts
    stmt = (
        select(CohortMember, User)
        .join(User, User.id == CohortMember.user_id)
        .where(CohortMember.cohort_id == cohort.id, CohortMember.left_at.is_(None))
        .order_by(User.name, User.id)
    )
    if member_id is not None:
        stmt = stmt.where(CohortMember.id == member_id)
    members = db.session.execute(stmt).all()
    if not members or not course_ids:
        return [MemberRow(m, u) for m, u in members]

    # 2-3. steps per course (lessons, then quizzes)
    step_totals = step_counts(course_ids)

    # 4. enrollments with lessons done, quizzes passed, attempts and best score, aggregated in SQL
    lessons_done = (
        select(func.count(LessonProgress.id)).where(LessonProgress.enrollment_id == Enrollment.id).scalar_subquery()
    )
    quizzes_passed = (
        select(func.count(func.distinct(QuizAttempt.quiz_id)))
        .where(QuizAttempt.enrollment_id == Enrollment.id, QuizAttempt.passed.is_(True))
        .scalar_subquery()
    )
    attempts = (
        select(func.count(QuizAttempt.id))
        .where(QuizAttempt.enrollment_id == Enrollment.id, QuizAttempt.submitted_at.is_not(None))
        .scalar_subquery()
    )
    best = select(func.max(QuizAttempt.score)).where(QuizAttempt.enrollment_id == Enrollment.id).scalar_subquery()
    enrollments = db.session.execute(
        select(
            Enrollment.user_id,
            Enrollment.course_id,
            Enrollment.enrolled_at,
            Enrollment.last_activity_at,
            Enrollment.completed_at,
            lessons_done,
            quizzes_passed,
            attempts,
            best,
        ).where(Enrollment.user_id.in_(member_users), Enrollment.course_id.in_(course_ids))
    ).all()

    # 5. certificates for the assigned courses
    certificates = db.session.scalars(
        select(Certificate).where(Certificate.user_id.in_(member_users), Certificate.course_id.in_(course_ids))
    ).all()

    # 6. a program's certificates (a cohort following a program has the program's courses)
    program_certs = {}
    if cohort.program_id is not None:
        program_certs = {
            c.user_id: c
            for c in db.session.scalars(
                select(Certificate).where(
                    Certificate.user_id.in_(member_users), Certificate.program_id == cohort.program_id
                )
            )
        }

    by_key = {(e.user_id, e.course_id): e for e in enrollments}
    certs = {(c.user_id, c.course_id): c for c in certificates}
    today = now.date()
    expected = expected_percent(cohort, today)
    rows = []
    for member, user in members:
        row = MemberRow(member, user)
        for course in courses:
            cr = CourseRow(course, step_totals.get(course.id, 0))
            e = by_key.get((user.id, course.id))
            if e is not None:
                cr.enrolled_at, cr.last_activity_at, cr.completed_at = e.enrolled_at, e.last_activity_at, e.completed_at
                cr.done_steps = (e[5] or 0) + (e[6] or 0)
                cr.attempts, cr.best_score = e[7] or 0, e[8]
            cert = certs.get((user.id, course.id))
            if cert is not None:
                cr.certificate = cert
                status = cert.status_at(now).value
                cr.certificate_status = "expiring" if status == "valid" and expiring_soon(cert, now) else status
            row.courses.append(cr)
        program_cert = program_certs.get(user.id)
        if program_cert is not None:
            row.program_certificate = program_cert
            row.program_certificate_status = program_cert.status_at(now).value
        activity = [c.last_activity_at for c in row.courses if c.last_activity_at is not None]
        row.last_activity_at = max(activity) if activity else None
        since = row.last_activity_at or member.joined_at
        row.inactive = not row.completed and now - since > timedelta(days=INACTIVE_DAYS)
        row.behind = expected is not None and not row.completed and row.percent < expected
        rows.append(row)
    return rows


def quiz_detail(cohort: Cohort, user_id: int) -> dict[int, list[tuple[Quiz, int, int | None, bool]]]:
    """Per assigned course: each quiz with the learner's attempts, best score and whether passed (two queries)."""
    course_ids = [c.id for c in cohort.courses]
    quizzes = db.session.execute(
        select(Module.course_id, Quiz)
        .join(Quiz, Quiz.module_id == Module.id)
        .where(Module.course_id.in_(course_ids))
        .order_by(Module.course_id, Module.position)
    ).all()
    stats = {
        quiz_id: (n, best, bool(passed))
        for quiz_id, n, best, passed in db.session.execute(
            select(
                QuizAttempt.quiz_id,
                func.count(QuizAttempt.id),
                func.max(QuizAttempt.score),
                func.max(func.coalesce(QuizAttempt.passed, False).cast(db.Integer)),
            )
            .join(Enrollment, and_(Enrollment.id == QuizAttempt.enrollment_id, Enrollment.user_id == user_id))
            .where(Enrollment.course_id.in_(course_ids), QuizAttempt.submitted_at.is_not(None))
            .group_by(QuizAttempt.quiz_id)
        ).all()
    }
    result: dict[int, list] = {}
    for course_id, quiz in quizzes:
        n, best, passed = stats.get(quiz.id, (0, None, False))
        result.setdefault(course_id, []).append((quiz, n, best, passed))
    return result
