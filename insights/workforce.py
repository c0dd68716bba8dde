"""The workforce report an organization owes (ETA-9171-style program performance), from aggregate SQL.

Who is counted: learners who joined a cohort of the organization, agreed to what it sees, and have not left
(``cohort_members.left_at IS NULL``); a cohort report counts that cohort's members only. What is counted: their
enrollments in the program's courses (``--program``) or in any course, started before the period ends.

Per learner and group of courses (a course, a program, an occupation's courses, a cohort, everything):

- start date: the earliest enrollment in the group;
- completed: every course of the group done (for a program: all of its courses; otherwise every course of the
  group the learner enrolled in), completion date = the last course completed before the period ended;
- exit date: the completion date, or else the last recorded activity once 90 days have passed since it (as of the
  period's end, or today if that is earlier) — the exit type says which;
- served in the period: started before the period ended and not exited before it began.

Hours of instruction, both shown:

- stated: the stated minutes of the steps completed in the period — each lesson's ``minutes``, and for each module
  quiz first passed in the period the course's stated minutes not covered by its lessons
  (``estimated_minutes`` − Σ lesson minutes) divided by its number of quizzes (5 minutes for every starter course);
- measured: the learner's active time in the period, recorded as it happens — for each lesson marked complete, the
  time since the learner's previous activity in that course (enrolling, a lesson, a quiz submitted) when at most 30
  minutes (a longer pause starts a new session and is not counted, so the first lesson of a session is not measured);
  for each quiz attempt submitted, its duration from start to submission when at most 30 minutes. Lessons completed
  before this was recorded (migration 0015) count no measured time.

Measurable skill gains: module quizzes passed for the first time in the period (documented progress toward the
course credential). Credentials: course certificates awarded in the period and not revoked (program rows: program
certificates). Completion within the program's normal time and within 150% of it is counted for programs only (a
course has no normal time of its own).

The report is a fixed number of queries whatever the data size: one statement whose branches (UNION ALL) are the
breakdowns, each a two-level aggregate (per learner and group inside, per group outside) over one shared CTE of
per-enrollment facts, plus one query each for the row names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Integer, String, and_, case, cast, func, literal, literal_column, null, or_, select, union_all

from core.csv import csv_text
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
from insights.models import LearningDay
from orgs.models import Cohort, CohortMember, Organization
from skills.models import Occupation

EXIT_AFTER_DAYS = 90
BREAKDOWNS = ("total", "program", "course", "occupation", "cohort")  # occupation after course: it copies rows


@dataclass
class Row:
    breakdown: str
    key: str
    name: str
    normal_weeks: int | None = None
    participants_served: int = 0
    new_participants: int = 0
    enrollments_started: int = 0
    participants_exited: int = 0
    exited_completed: int = 0
    exited_inactive: int = 0
    completed_within_normal_time: int | None = None
    completed_within_150pct: int | None = None
    credentials_attained: int = 0
    exiters_with_credential: int = 0
    skill_gains: int = 0
    participants_with_skill_gain: int = 0
    stated_minutes: float = 0
    measured_seconds: float = 0

    @property
    def stated_hours(self) -> float:
        return _tenths(self.stated_minutes / 60)

    @property
    def measured_hours(self) -> float:
        return _tenths(self.measured_seconds / 3600)

    @property
    def credential_rate(self) -> float | None:
        return _rate(self.exiters_with_credential, self.participants_exited)

    @property
    def skill_gain_rate(self) -> float | None:
        return _rate(self.participants_with_skill_gain, self.participants_served)

    @property
    def completion_rate_normal(self) -> float | None:
        return (
            None
            if self.completed_within_normal_time is None
            else _rate(self.completed_within_normal_time, self.participants_exited)
        )

    @property
    def completion_rate_150pct(self) -> float | None:
        return (
            None
            if self.completed_within_150pct is None
            else _rate(self.completed_within_150pct, self.participants_exited)
        )


def _tenths(value: float) -> float:
    """Rounded to one decimal, halves up (1.75 h → 1.8 h), as a person rounding a report would."""
    return float(Decimal(str(round(value, 6))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _rate(part: int, whole: int) -> float | None:
    return _tenths(100 * part / whole) if whole else None


@dataclass
class Report:
    organization: str
    cohort: str | None
    program: str | None
    start: date
    end: date
    as_of: datetime
    rows: dict[str, list[Row]] = field(default_factory=dict)

    @property
    def total(self) -> Row:
        return self.rows["total"][0]


def _seconds(later, earlier):
    """Seconds from ``earlier`` to ``later`` as SQL, on both databases."""
    if db.engine.dialect.name == "postgresql":
        return func.date_part("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _day_sums(scope, start: date, end: date, period_start, period_end):
    """Per enrollment in scope: lesson minutes, measured seconds and first quiz passes of the period's days."""
    return (
        select(
            LearningDay.enrollment_id.label("enrollment_id"),
            func.sum(LearningDay.lesson_minutes).label("lesson_minutes"),
            func.sum(LearningDay.active_seconds).label("seconds"),
            func.sum(LearningDay.first_passes).label("passed"),
        )
        .where(
            LearningDay.enrollment_id.in_(select(Enrollment.id).where(scope)),
            LearningDay.day >= start,
            LearningDay.day <= end,
        )
        .group_by(LearningDay.enrollment_id)
        .subquery()
    )


def _event_sums(scope, start: date, end: date, period_start, period_end):
    """The same sums from every lesson completed and quiz attempt submitted (what the rollup must equal)."""
    lessons = (
        select(
            LessonProgress.enrollment_id.label("enrollment_id"),
            func.sum(Lesson.minutes).label("lesson_minutes"),
            func.sum(func.coalesce(LessonProgress.active_seconds, 0)).label("seconds"),
            literal(0).label("passed"),
        )
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .join(Enrollment, Enrollment.id == LessonProgress.enrollment_id)
        .where(scope, LessonProgress.completed_at >= period_start, LessonProgress.completed_at < period_end)
        .group_by(LessonProgress.enrollment_id)
    )
    attempt_seconds = _seconds(QuizAttempt.submitted_at, QuizAttempt.started_at)
    measured = (
        select(
            QuizAttempt.enrollment_id,
            literal(0),
            func.sum(
                case(
                    (and_(attempt_seconds >= 0, attempt_seconds <= ACTIVE_GAP_SECONDS), func.round(attempt_seconds)),
                    else_=0,
                )
            ),
            literal(0),
        )
        .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
        .where(scope, QuizAttempt.submitted_at >= period_start, QuizAttempt.submitted_at < period_end)
        .group_by(QuizAttempt.enrollment_id)
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
        select(first_passes.c.enrollment_id, literal(0), literal(0), func.count())
        .where(first_passes.c.first_pass >= period_start, first_passes.c.first_pass < period_end)
        .group_by(first_passes.c.enrollment_id)
    )
    parts = union_all(lessons, measured, gains).subquery()
    return (
        select(
            parts.c.enrollment_id,
            func.sum(parts.c.lesson_minutes).label("lesson_minutes"),
            func.sum(parts.c.seconds).label("seconds"),
            func.sum(parts.c.passed).label("passed"),
        )
        .group_by(parts.c.enrollment_id)
        .subquery()
    )


def _quiz_minutes():
    """Per course: the stated minutes each module quiz carries (the course's minutes its lessons do not cover,
    shared by its quizzes)."""
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
    return (
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


def _learner_columns(f, required, normal_seconds, credential_in_period, credential_held):
    """One learner's row over a group of their enrollments (``f``: the facts CTE, grouped by the caller)."""
    return [
        f.c.user_id,
        func.min(f.c.enrolled_at).label("start"),
        func.max(f.c.last_activity_at).label("last"),
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
    ]


@dataclass
class _Learners:
    """The shared parts of the report's one statement: who is counted, per-enrollment facts, per-learner rows."""

    members: object
    facts: object
    learner_total: object
    period_start: datetime
    period_end: datetime
    as_of: datetime
    cutoff: datetime

    @staticmethod
    def at(moment: datetime):
        return literal(moment, UTCDateTime())


def _learners(
    org: Organization,
    *,
    start: date,
    end: date,
    now: datetime,
    cohort: Cohort | None,
    program: Program | None,
    from_events: bool = False,
) -> _Learners:
    if end < start:
        raise ValueError("the period ends before it starts")
    period_start, period_end = _moment(start), _moment(end + timedelta(days=1))
    as_of = min(period_end, now)
    cutoff = as_of - timedelta(days=EXIT_AFTER_DAYS)

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

    # ---- per enrollment: stated minutes, measured seconds, skill gains in the period
    sums = (_event_sums if from_events else _day_sums)(scope, start, end, period_start, period_end)
    quiz_minutes = _quiz_minutes()
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
                func.coalesce(sums.c.lesson_minutes, 0)
                + func.coalesce(sums.c.passed, 0) * func.coalesce(quiz_minutes.c.minutes, 0)
            ).label("stated_minutes"),
            func.coalesce(sums.c.seconds, 0).label("measured_seconds"),
            func.coalesce(sums.c.passed, 0).label("skill_gains"),
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
        .outerjoin(sums, sums.c.enrollment_id == Enrollment.id)
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

    # the same learner row serves the total and every cohort the learner is in: aggregate it once
    whole_program = program is not None

    if whole_program:
        # within one program, completing means completing the program, for everyone and for each cohort
        person_required = cast(literal(len(program.steps)), Integer)
        person_normal = cast(literal(program.normal_weeks * 7 * 86400), Integer)
    else:
        person_required, person_normal = func.count(), None
    learner_total = (
        select(
            *_learner_columns(
                facts,
                person_required,
                person_normal,
                func.sum(facts.c.credential_in_period),
                func.max(facts.c.credential_held),
            )
        )
        .group_by(facts.c.user_id)
        .cte("learner_total")
    )

    return _Learners(members, facts, learner_total, period_start, period_end, as_of, cutoff)


def workforce_report(
    org: Organization,
    *,
    start: date,
    end: date,
    now: datetime,
    cohort: Cohort | None = None,
    program: Program | None = None,
    from_events: bool = False,
) -> Report:
    """The report for ``org`` (optionally one cohort and/or one program) over the days ``start``..``end``.

    Read only. Raises ValueError when the period is empty or reversed (callers check dates first).
    ``from_events=True`` sums every lesson and quiz attempt instead of the day rollup (the straightforward and
    slow way, kept so tests can hold the rollup to it).
    """
    shared = _learners(org, start=start, end=end, now=now, cohort=cohort, program=program, from_events=from_events)
    members, facts, learner_total = shared.members, shared.facts, shared.learner_total
    period_start, period_end, as_of, cutoff, at = (
        shared.period_start,
        shared.period_end,
        shared.as_of,
        shared.cutoff,
        shared.at,
    )

    def breakdown(kind: str):
        f = facts
        if kind == "total":
            learner = select(literal_column("'all'").label("key"), learner_total).subquery()
        elif kind == "cohort":
            learner = (
                select(members.c.cohort_id.label("key"), learner_total)
                .join(members, members.c.user_id == learner_total.c.user_id)
                .subquery()
            )
        elif kind == "course":
            # one enrollment per learner and course: the enrollment is the learner's row
            learner = select(
                f.c.course_id.label("key"),
                f.c.user_id,
                f.c.enrolled_at.label("start"),
                f.c.last_activity_at.label("last"),
                case((f.c.completed_at.is_not(None), 1), else_=0).label("done"),
                literal(1).label("required"),
                f.c.completed_at.label("finish"),
                f.c.new_enrollment.label("new_enrollments"),
                f.c.stated_minutes,
                f.c.measured_seconds,
                f.c.skill_gains,
                f.c.credential_in_period.label("credentials"),
                f.c.credential_held,
                cast(null(), Integer).label("normal_seconds"),
            ).subquery()
        elif kind == "occupation":
            # an occupation of a single course has that course's row (copied after the query); only occupations
            # spanning several courses need their own learner rows
            shared = (
                select(course_occupations.c.occupation_code)
                .group_by(course_occupations.c.occupation_code)
                .having(func.count() > 1)
            )
            key = course_occupations.c.occupation_code
            learner = (
                select(
                    key.label("key"),
                    *_learner_columns(
                        f, func.count(), None, func.sum(f.c.credential_in_period), func.max(f.c.credential_held)
                    ),
                )
                .select_from(f.join(course_occupations, course_occupations.c.course_id == f.c.course_id))
                .where(key.in_(shared))
                .group_by(key, f.c.user_id)
                .subquery()
            )
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
            extra = [ProgramCourse.program_id == program.id] if program is not None else []
            learner = (
                select(
                    key.label("key"),
                    *_learner_columns(
                        f,
                        func.max(sizes.c.size),
                        func.max(Program.normal_weeks) * 7 * 86400,
                        credential_in_period,
                        credential_held,
                    ),
                )
                .select_from(source)
                .where(*extra)
                .group_by(key, f.c.user_id)
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
        if kind == "occupation":
            rows += _single_course_occupations(report.rows["course"], names["occupation"])
        report.rows[kind] = sorted(rows, key=lambda r: r.name.lower())
    return report


def _single_course_occupations(course_rows: list[Row], occupation_names: dict[str, str]) -> list[Row]:
    """Rows of the occupations that belong to one course only: the same learners and enrollments as that
    course's row, so the same numbers (one small query)."""
    by_course = {row.key: row for row in course_rows}
    courses_of: dict[str, list[str]] = {}
    for code, course_id in db.session.execute(
        select(course_occupations.c.occupation_code, course_occupations.c.course_id)
    ):
        courses_of.setdefault(code, []).append(str(course_id))
    rows = []
    for code, course_ids in courses_of.items():
        if len(course_ids) == 1 and course_ids[0] in by_course:
            rows.append(
                replace(
                    by_course[course_ids[0]],
                    breakdown="occupation",
                    key=code,
                    name=occupation_names.get(code, code),
                )
            )
    return rows


def _names(org: Organization, program: Program | None) -> dict[str, dict[str, str]]:
    """Row names for each breakdown (four small queries)."""
    return {
        "total": {},
        "course": {str(i): t for i, t in db.session.execute(select(Course.id, Course.title))},
        "program": {str(i): t for i, t in db.session.execute(select(Program.id, Program.title))},
        "occupation": {c: f"{t} ({c})" for c, t in db.session.execute(select(Occupation.code, Occupation.title))},
        "cohort": {
            str(i): n
            for i, n in db.session.execute(select(Cohort.id, Cohort.name).where(Cohort.organization_id == org.id))
        },
    }


# ---- output ---------------------------------------------------------------------------------------------

# (CSV column, Row attribute). Column names follow the ETA-9171 (WIOA Eligible Training Provider performance
# report) and ETA-9169 performance items they fill; the README says which, how, and what we cannot fill.
COLUMNS = [
    ("Breakdown", "breakdown"),
    ("Group ID", "key"),
    ("Group Name", "name"),
    ("Program Length: Normal Time (weeks)", "normal_weeks"),
    ("Total Number of Participants Served", "participants_served"),
    ("New Participants (Date of Program Entry in Period)", "new_participants"),
    ("Enrollments Started", "enrollments_started"),
    ("Total Number of Participants Exited", "participants_exited"),
    ("Exited: Completed Program", "exited_completed"),
    ("Exited: 90 Days Without Activity", "exited_inactive"),
    ("Program Completion Within Normal Time", "completed_within_normal_time"),
    ("Program Completion Within 150% of Normal Time", "completed_within_150pct"),
    ("Program Completion Rate Within Normal Time (%)", "completion_rate_normal"),
    ("Program Completion Rate Within 150% of Normal Time (%)", "completion_rate_150pct"),
    ("Credentials Attained", "credentials_attained"),
    ("Exiters Who Attained a Credential", "exiters_with_credential"),
    ("Credential Attainment Rate (%)", "credential_rate"),
    ("Measurable Skill Gains", "skill_gains"),
    ("Participants With a Measurable Skill Gain", "participants_with_skill_gain"),
    ("Measurable Skill Gains Rate (%)", "skill_gain_rate"),
    ("Hours of Instruction: Stated", "stated_hours"),
    ("Hours of Instruction: Measured Active Time", "measured_hours"),
]


def _value(row: Row, attribute: str):
    value = getattr(row, attribute)
    return "" if value is None else value


def to_csv(report: Report) -> str:
    """The report's rows as formula-safe CSV text (header included). Raises nothing."""
    return csv_text(
        [name for name, _ in COLUMNS],
        ([_value(row, attribute) for _, attribute in COLUMNS] for kind in BREAKDOWNS for row in report.rows[kind]),
    )


def to_json(report: Report) -> dict:
    def row_dict(row: Row) -> dict:
        data = asdict(row)
        data.update(
            stated_hours=row.stated_hours,
            measured_hours=row.measured_hours,
            credential_rate=row.credential_rate,
            skill_gain_rate=row.skill_gain_rate,
            completion_rate_normal=row.completion_rate_normal,
            completion_rate_150pct=row.completion_rate_150pct,
        )
        return data

    return {
        "organization": report.organization,
        "cohort": report.cohort,
        "program": report.program,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "as_of": report.as_of.isoformat(),
        "rows": {kind: [row_dict(r) for r in report.rows[kind]] for kind in BREAKDOWNS},
    }
