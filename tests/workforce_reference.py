"""The workforce report as it was computed before the learning_days rollup (insights/workforce.py at 3.0 of
issue 14): every lesson and quiz attempt summed for each request, every breakdown a plain two-level aggregate.

Slow (20 s at 10,000 learners) but straightforward; tests/test_workforce_fast.py holds the fast report to it on
random data. Only the computation is kept here; the Row and Report types are the module's own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Integer, String, and_, case, cast, func, literal, literal_column, null, or_, select, union_all

from core.database import UTCDateTime
from core.extensions import db
from courses.models import (
    Course,
    Enrollment,
    Lesson,
    LessonProgress,
    Module,
    Program,
    ProgramCourse,
    Quiz,
    QuizAttempt,
    course_occupations,
)
from courses.services import ACTIVE_GAP_SECONDS
from credentials.models import Certificate
from insights.workforce import Report, Row, _names
from orgs.models import Cohort, CohortMember, Organization

EXIT_AFTER_DAYS = 90
BREAKDOWNS = ("total", "program", "course", "occupation", "cohort")


def _seconds(later, earlier):
    """Seconds from ``earlier`` to ``later`` as SQL, on both databases."""
    if db.engine.dialect.name == "postgresql":
        return func.date_part("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def reference_report(
    org: Organization,
    *,
    start: date,
    end: date,
    now: datetime,
    cohort: Cohort | None = None,
    program: Program | None = None,
) -> Report:
    """The report for ``org`` (optionally one cohort and/or one program) over the days ``start``..``end``.

    Read only. Raises ValueError when the period is empty or reversed (callers check dates first).
    """
    if end < start:
        raise ValueError("the period ends before it starts")
    period_start, period_end = _moment(start), _moment(end + timedelta(days=1))
    as_of = min(period_end, now)
    cutoff = as_of - timedelta(days=EXIT_AFTER_DAYS)

    def at(moment: datetime):
        return literal(moment, UTCDateTime())

    # ---- who: consenting members who have not left (and of one cohort, if asked)
    members = (
        select(CohortMember.cohort_id, CohortMember.user_id)
        .join(Cohort, Cohort.id == CohortMember.cohort_id)
        .where(Cohort.organization_id == org.id, CohortMember.left_at.is_(None))
    )
    if cohort is not None:
        members = members.where(CohortMember.cohort_id == cohort.id)
    members = members.subquery()
    people = select(members.c.user_id).distinct()

    scope = Enrollment.user_id.in_(people)
    if program is not None:
        scope = and_(
            scope,
            Enrollment.course_id.in_(select(ProgramCourse.course_id).where(ProgramCourse.program_id == program.id)),
        )

    # ---- per enrollment: stated minutes, measured seconds, skill gains, credentials in the period
    lessons = (
        select(
            LessonProgress.enrollment_id.label("enrollment_id"),
            func.sum(Lesson.minutes).label("minutes"),
            func.sum(func.coalesce(LessonProgress.active_seconds, 0)).label("seconds"),
        )
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .join(Enrollment, Enrollment.id == LessonProgress.enrollment_id)
        .where(scope, LessonProgress.completed_at >= period_start, LessonProgress.completed_at < period_end)
        .group_by(LessonProgress.enrollment_id)
        .subquery()
    )
    first_passes = (
        select(
            QuizAttempt.enrollment_id.label("enrollment_id"),
            func.min(QuizAttempt.submitted_at).label("first_pass"),
        )
        .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
        .where(scope, QuizAttempt.passed.is_(True))
        .group_by(QuizAttempt.enrollment_id, QuizAttempt.quiz_id)
        .subquery()
    )
    gains = (
        select(first_passes.c.enrollment_id, func.count().label("passed"))
        .where(first_passes.c.first_pass >= period_start, first_passes.c.first_pass < period_end)
        .group_by(first_passes.c.enrollment_id)
        .subquery()
    )
    lesson_totals = (
        select(Module.course_id.label("course_id"), func.sum(Lesson.minutes).label("minutes"))
        .join(Lesson, Lesson.module_id == Module.id)
        .group_by(Module.course_id)
        .subquery()
    )
    quiz_counts = (
        select(Module.course_id.label("course_id"), func.count(Quiz.id).label("quizzes"))
        .join(Quiz, Quiz.module_id == Module.id)
        .group_by(Module.course_id)
        .subquery()
    )
    uncovered = Course.estimated_minutes - func.coalesce(lesson_totals.c.minutes, 0)
    quiz_minutes = (
        select(
            Course.id.label("course_id"),
            case(
                (and_(quiz_counts.c.quizzes > 0, uncovered > 0), uncovered * 1.0 / quiz_counts.c.quizzes), else_=0.0
            ).label("minutes"),
        )
        .outerjoin(lesson_totals, lesson_totals.c.course_id == Course.id)
        .outerjoin(quiz_counts, quiz_counts.c.course_id == Course.id)
        .subquery()
    )
    # measured active time: lessons carry theirs (recorded when marked complete); a quiz attempt's is its duration
    attempt_seconds = _seconds(QuizAttempt.submitted_at, QuizAttempt.started_at)
    measured = (
        select(
            QuizAttempt.enrollment_id.label("enrollment_id"),
            func.sum(
                case(
                    (and_(attempt_seconds >= 0, attempt_seconds <= ACTIVE_GAP_SECONDS), func.round(attempt_seconds)),
                    else_=0,
                )
            ).label("seconds"),
        )
        .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
        .where(scope, QuizAttempt.submitted_at >= period_start, QuizAttempt.submitted_at < period_end)
        .group_by(QuizAttempt.enrollment_id)
        .subquery()
    )
    course_certificate = (
        select(Certificate.user_id, Certificate.course_id, Certificate.awarded_at, Certificate.revoked_at)
        .where(Certificate.course_id.is_not(None))
        .subquery()
    )
    valid_certificate = course_certificate.c.revoked_at.is_(None)
    facts = (
        select(
            Enrollment.id.label("enrollment_id"),
            Enrollment.user_id.label("user_id"),
            Enrollment.course_id.label("course_id"),
            Enrollment.enrolled_at.label("enrolled_at"),
            case((Enrollment.completed_at < period_end, Enrollment.completed_at)).label("completed_at"),
            Enrollment.last_activity_at.label("last_activity_at"),
            case((Enrollment.enrolled_at >= period_start, 1), else_=0).label("new_enrollment"),
            (
                func.coalesce(lessons.c.minutes, 0)
                + func.coalesce(gains.c.passed, 0) * func.coalesce(quiz_minutes.c.minutes, 0)
            ).label("stated_minutes"),
            (func.coalesce(lessons.c.seconds, 0) + func.coalesce(measured.c.seconds, 0)).label("measured_seconds"),
            func.coalesce(gains.c.passed, 0).label("skill_gains"),
            case(
                (
                    and_(
                        valid_certificate,
                        course_certificate.c.awarded_at >= period_start,
                        course_certificate.c.awarded_at < period_end,
                    ),
                    1,
                ),
                else_=0,
            ).label("credential_in_period"),
            case((and_(valid_certificate, course_certificate.c.awarded_at < period_end), 1), else_=0).label(
                "credential_held"
            ),
        )
        .outerjoin(lessons, lessons.c.enrollment_id == Enrollment.id)
        .outerjoin(gains, gains.c.enrollment_id == Enrollment.id)
        .outerjoin(measured, measured.c.enrollment_id == Enrollment.id)
        .outerjoin(quiz_minutes, quiz_minutes.c.course_id == Enrollment.course_id)
        .outerjoin(
            course_certificate,
            and_(
                course_certificate.c.user_id == Enrollment.user_id,
                course_certificate.c.course_id == Enrollment.course_id,
            ),
        )
        .where(scope, Enrollment.enrolled_at < period_end)
        # one CTE read by every breakdown: PostgreSQL computes it once for the whole statement
        .cte("facts")
    )

    def breakdown(kind: str):
        f = facts
        extra = []
        normal_seconds = None
        credential_in_period = func.sum(f.c.credential_in_period)
        credential_held = func.max(f.c.credential_held)
        if kind == "course":
            key, source = f.c.course_id, f
            required = func.count()
        elif kind == "occupation":
            key = course_occupations.c.occupation_code
            source = f.join(course_occupations, course_occupations.c.course_id == f.c.course_id)
            required = func.count()
        elif kind == "cohort":
            key = members.c.cohort_id
            source = f.join(members, members.c.user_id == f.c.user_id)
            required = func.count()
        elif kind == "total":
            key, source = literal_column("'all'"), f
            required = func.count()
        else:  # program: all of the program's courses; its credential is the program certificate
            sizes = (
                select(ProgramCourse.program_id.label("program_id"), func.count().label("size"))
                .group_by(ProgramCourse.program_id)
                .subquery()
            )
            program_certificate = (
                select(Certificate.user_id, Certificate.program_id, Certificate.awarded_at, Certificate.revoked_at)
                .where(Certificate.program_id.is_not(None))
                .subquery()
            )
            key = ProgramCourse.program_id
            source = (
                f.join(ProgramCourse, ProgramCourse.course_id == f.c.course_id)
                .join(sizes, sizes.c.program_id == ProgramCourse.program_id)
                .join(Program, Program.id == ProgramCourse.program_id)
                .outerjoin(
                    program_certificate,
                    and_(
                        program_certificate.c.user_id == f.c.user_id,
                        program_certificate.c.program_id == ProgramCourse.program_id,
                    ),
                )
            )
            required = func.max(sizes.c.size)
            normal_seconds = func.max(Program.normal_weeks) * 7 * 86400
            valid = program_certificate.c.revoked_at.is_(None)
            credential_in_period = func.max(
                case(
                    (
                        and_(
                            valid,
                            program_certificate.c.awarded_at >= period_start,
                            program_certificate.c.awarded_at < period_end,
                        ),
                        1,
                    ),
                    else_=0,
                )
            )
            credential_held = func.max(case((and_(valid, program_certificate.c.awarded_at < period_end), 1), else_=0))
            if program is not None:
                extra.append(ProgramCourse.program_id == program.id)
        if kind in ("total", "cohort") and program is not None:
            # within one program, completing means completing the program, for everyone and for each cohort
            required = cast(literal(len(program.steps)), Integer)
            normal_seconds = cast(literal(program.normal_weeks * 7 * 86400), Integer)
        learner = (
            select(
                key.label("key"),
                f.c.user_id,
                func.min(f.c.enrolled_at).label("start"),
                func.max(f.c.last_activity_at).label("last"),
                func.count().label("enrolled"),
                func.count(f.c.completed_at).label("done"),
                required.label("required"),
                func.max(f.c.completed_at).label("finish"),
                func.sum(f.c.new_enrollment).label("new_enrollments"),
                func.sum(f.c.stated_minutes).label("stated_minutes"),
                func.sum(f.c.measured_seconds).label("measured_seconds"),
                func.sum(f.c.skill_gains).label("skill_gains"),
                credential_in_period.label("credentials"),
                credential_held.label("credential_held"),
                (normal_seconds if normal_seconds is not None else cast(null(), Integer)).label("normal_seconds"),
            )
            .select_from(source)
            .where(*extra)
            # a constant is not grouped by (PostgreSQL refuses GROUP BY 'all'): the total is one group anyway
            .group_by(*([] if kind == "total" else [key]), f.c.user_id)
            .subquery()
        )
        completed = learner.c.done >= learner.c.required
        exit_at = case((completed, learner.c.finish), (learner.c.last < at(cutoff), learner.c.last))
        person = select(
            learner,
            exit_at.label("exit_at"),
            case((completed, 1), else_=0).label("exit_completed"),
            _seconds(learner.c.finish, learner.c.start).label("duration"),
        ).subquery()
        p = person.c
        exited = and_(p.exit_at.is_not(None), p.exit_at >= at(period_start))
        completed_exit = and_(exited, p.exit_completed == 1)

        def count_if(condition):
            return func.sum(case((condition, 1), else_=0))

        totals = select(
            literal(kind).label("kind"),
            cast(p.key, String) if kind != "total" else literal_column("'all'"),
            count_if(or_(p.exit_at.is_(None), p.exit_at >= at(period_start))),
            count_if(p.start >= at(period_start)),
            func.sum(p.new_enrollments),
            count_if(exited),
            count_if(completed_exit),
            count_if(and_(exited, p.exit_completed == 0)),
            count_if(and_(completed_exit, p.duration <= p.normal_seconds)),
            count_if(and_(completed_exit, p.duration <= p.normal_seconds * 1.5)),
            func.sum(p.credentials),
            count_if(and_(exited, p.credential_held == 1)),
            func.sum(p.skill_gains),
            count_if(p.skill_gains > 0),
            func.sum(p.stated_minutes),
            func.sum(p.measured_seconds),
            func.max(p.normal_seconds),
        )
        if kind != "total":
            totals = totals.group_by(p.key)
        return totals

    report = Report(
        organization=org.name,
        cohort=cohort.name if cohort else None,
        program=program.title if program else None,
        start=start,
        end=end,
        as_of=as_of,
    )
    names = _names(org, program)
    found: dict[str, list] = {kind: [] for kind in BREAKDOWNS}
    for kind, *values in db.session.execute(union_all(*(breakdown(kind) for kind in BREAKDOWNS))):
        found[kind].append(values)
    for kind in BREAKDOWNS:
        rows = []
        for values in found[kind]:
            key = str(values[0])
            normal = values[15] or (program.normal_weeks * 604800 if kind in ("total", "cohort") and program else None)
            row = Row(
                breakdown=kind,
                key=key,
                name=names[kind].get(key, key) if kind != "total" else report.organization,
                normal_weeks=round(normal / 604800) if normal else None,
                participants_served=int(values[1] or 0),
                new_participants=int(values[2] or 0),
                enrollments_started=int(values[3] or 0),
                participants_exited=int(values[4] or 0),
                exited_completed=int(values[5] or 0),
                exited_inactive=int(values[6] or 0),
                completed_within_normal_time=int(values[7] or 0) if normal else None,
                completed_within_150pct=int(values[8] or 0) if normal else None,
                credentials_attained=int(values[9] or 0),
                exiters_with_credential=int(values[10] or 0),
                skill_gains=int(values[11] or 0),
                participants_with_skill_gain=int(values[12] or 0),
                stated_minutes=float(values[13] or 0),
                measured_seconds=float(values[14] or 0),
            )
            rows.append(row)
        report.rows[kind] = sorted(rows, key=lambda r: r.name.lower())
    return report
