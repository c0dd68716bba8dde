"""The learner journey: catalog queries, enrollment, progress, quizzes, completion. Flush only."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from blinker import Namespace
from flask_babel import gettext, ngettext
from sqlalchemy import bindparam, case, exists, func, insert, literal_column, null, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from accounts.models import User
from core.contentcache import peek, remember
from core.errors import DomainError
from core.extensions import db
from courses.models import (
    AttemptAnswer,
    Course,
    CourseStatus,
    Enrollment,
    Lesson,
    LessonProgress,
    Module,
    Question,
    QuestionKind,
    Quiz,
    QuizAttempt,
    course_goals,
    course_occupations,
    course_skills,
)
from skills.models import Occupation, Skill

signals = Namespace()
# sent inside the completing transaction, exactly once per completion: receivers flush, never commit
enrollment_completed = signals.signal("enrollment-completed")
enrolled = signals.signal("enrolled")
lesson_completed = signals.signal("lesson-completed")
quiz_graded = signals.signal("quiz-graded")
# sent when a study step moved an enrollment's last_activity_at by a Core UPDATE (``touch``), which the ORM's mapper
# events do not see (the insights report cache counts activity)
activity_recorded = signals.signal("activity-recorded")
# sent before a renewal starts; a receiver refuses it (DomainError) outside the certificate's renewal window
renewal_requested = signals.signal("renewal-requested")


class QuizRuleError(DomainError):
    """A quiz rule (attempt limit, cooldown, tampered answers) refused the request."""


# ---- catalog -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogFilter:
    q: str | None = None
    goal: str | None = None
    skill: str | None = None
    occupation: str | None = None
    audience: str | None = None  # an occupation group, see skills.models.OCCUPATION_GROUPS
    language: str | None = None  # only courses written in this language (a code of courses.catalog.LANGUAGES)


def catalog_statement(f: CatalogFilter, reader_language: str | None = None):
    """Published courses matching the filter, with their tags eager-loaded: courses in the reader's language
    first (a Spanish reader sees the Spanish courses at the top, an English reader the English ones), then by title.
    """
    first = [case((Course.language == reader_language, 0), else_=1)] if reader_language else []
    stmt = (
        select(Course)
        .where(Course.status == CourseStatus.PUBLISHED)
        .options(selectinload(Course.skills), selectinload(Course.goals), selectinload(Course.occupations))
        .order_by(*first, Course.title)
    )
    if f.language:
        stmt = stmt.where(Course.language == f.language)
    if f.q:
        for word in f.q.lower().split()[:8]:

            def like(column, word=word):  # % _ and \ in a search are text, not wildcards
                return func.lower(column).contains(word, autoescape=True)

            stmt = stmt.where(
                or_(
                    like(Course.title),
                    like(Course.summary),
                    like(Course.audience),
                    exists().where(
                        course_skills.c.course_id == Course.id,
                        course_skills.c.skill_id == Skill.id,
                        like(Skill.name),
                    ),
                    exists().where(
                        course_occupations.c.course_id == Course.id,
                        course_occupations.c.occupation_code == Occupation.code,
                        like(Occupation.title),
                    ),
                )
            )
    if f.goal:
        stmt = stmt.where(exists().where(course_goals.c.course_id == Course.id, course_goals.c.goal_id == f.goal))
    if f.skill:
        stmt = stmt.where(exists().where(course_skills.c.course_id == Course.id, course_skills.c.skill_id == f.skill))
    if f.occupation:
        stmt = stmt.where(
            exists().where(
                course_occupations.c.course_id == Course.id, course_occupations.c.occupation_code == f.occupation
            )
        )
    if f.audience:
        stmt = stmt.where(
            exists().where(
                course_occupations.c.course_id == Course.id,
                course_occupations.c.occupation_code == Occupation.code,
                Occupation.group == f.audience,
            )
        )
    return stmt


def lesson_counts(course_ids: Iterable[int]) -> dict[int, int]:
    """{course id: number of lessons}, in one aggregate query."""
    ids = list(course_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Module.course_id, func.count(Lesson.id))
        .join(Lesson, Lesson.module_id == Module.id)
        .where(Module.course_id.in_(ids))
        .group_by(Module.course_id)
    )
    return dict(rows.all())


def step_counts(course_ids: Iterable[int]) -> dict[int, int]:
    """{course id: steps}, counted as on a course page: every lesson plus one per module quiz. Two aggregate
    queries whatever the number of courses; a course without lessons or quizzes is left out (0 to the caller)."""
    ids = list(course_ids)
    if not ids:
        return {}
    steps = lesson_counts(ids)
    quizzes = db.session.execute(
        select(Module.course_id, func.count(Quiz.id))
        .join(Quiz, Quiz.module_id == Module.id)
        .where(Module.course_id.in_(ids))
        .group_by(Module.course_id)
    )
    for course_id, count in quizzes:
        steps[course_id] = steps.get(course_id, 0) + count
    return steps


def related_courses(course: Course, user: User | None, *, limit: int = 3) -> list[Course]:
    """Published courses that share occupations or skills with ``course``, most shared first, leaving out
    ``course`` itself and any course ``user`` is already enrolled in. Two queries whatever the catalog size."""
    shared = (
        select(course_occupations.c.course_id.label("course_id"))
        .where(
            course_occupations.c.occupation_code.in_(
                select(course_occupations.c.occupation_code).where(course_occupations.c.course_id == course.id)
            )
        )
        .union_all(
            select(course_skills.c.course_id.label("course_id")).where(
                course_skills.c.skill_id.in_(
                    select(course_skills.c.skill_id).where(course_skills.c.course_id == course.id)
                )
            )
        )
        .subquery()
    )
    overlap = func.count().label("overlap")
    stmt = (
        select(Course, overlap)
        .join(shared, shared.c.course_id == Course.id)
        .where(Course.status == CourseStatus.PUBLISHED, Course.id != course.id)
        .group_by(Course.id)
        .order_by(overlap.desc(), Course.title)
        .limit(limit)
        .options(selectinload(Course.skills))
    )
    if user is not None and user.is_authenticated:
        stmt = stmt.where(~exists().where(Enrollment.course_id == Course.id, Enrollment.user_id == user.id))
    return [row[0] for row in db.session.execute(stmt)]


# an outline needs titles, not the lesson bodies (tens of kB each); a lesson page loads its own body
OUTLINE_COLUMNS = (Lesson.id, Lesson.module_id, Lesson.position, Lesson.slug, Lesson.title, Lesson.minutes)


def load_course(slug: str, *, include_unpublished: bool = False) -> Course | None:
    """A course with its whole outline (modules, lessons, quizzes, tags) in a fixed number of queries."""
    stmt = (
        select(Course)
        .where(Course.slug == slug)
        .options(
            selectinload(Course.modules).selectinload(Module.lessons).load_only(*OUTLINE_COLUMNS),
            selectinload(Course.modules).selectinload(Module.quiz),
            selectinload(Course.modules).selectinload(Module.skills),
            selectinload(Course.skills).selectinload(Skill.goals),
            selectinload(Course.goals),
            selectinload(Course.occupations),
        )
    )
    if not include_unpublished:
        stmt = stmt.where(Course.status != CourseStatus.DRAFT)
    return db.session.scalar(stmt)


def _outline_statement():
    return select(Course).options(
        selectinload(Course.modules).selectinload(Module.lessons),
        selectinload(Course.modules).selectinload(Module.quiz),
        selectinload(Course.modules).selectinload(Module.skills),
        selectinload(Course.skills).selectinload(Skill.goals),
        selectinload(Course.goals),
        selectinload(Course.occupations),
    )


def detached(stmt) -> list:
    """Courses loaded in a session of their own that is closed at once: objects no later commit can expire,
    shared read-only by the requests of this process (lesson bodies included, rendered once when saved)."""
    with Session(bind=db.session.connection()) as private:
        return list(private.scalars(stmt))


def _linked(course: Course) -> Course:
    """Set the back-references a detached outline cannot lazy-load (lesson.module, module.course, quiz.module),
    so code given a lesson or quiz of the outline (the learning-event receivers) can walk up to its course."""
    for module in course.modules:
        set_committed_value(module, "course", course)
        for lesson in module.lessons:
            set_committed_value(lesson, "module", module)
        if module.quiz is not None:
            set_committed_value(module.quiz, "module", module)
    # an outline never changes (a new content version loads a new one): its path is worked out once
    course.__dict__["_outline_steps"] = course_steps(course)
    return course


def outline(slug: str) -> Course | None:
    """A visible (published or archived) course with its whole outline and lesson bodies, from the content cache.

    Read-only: never add it (or anything holding it) to a session, and write rows by its ids only
    (``LessonProgress(lesson_id=lesson.id)``), as the study views do; ``load_course`` gives attached objects.
    Raises nothing; None when there is no such course or it is a draft.
    """

    def build() -> Course | None:
        found = detached(_outline_statement().where(Course.slug == slug, Course.status != CourseStatus.DRAFT))
        if not found:
            return None
        course = _linked(found[0])
        remember(("course-slug", course.id), lambda: slug)  # for code that has only the id: ``cached_outline``
        return course

    return remember(("course-outline", slug), build)


def cached_outline(course_id: int) -> Course | None:
    """The course's outline (as ``outline`` gives it) when this process already holds it for the current content
    version, else None: for code that can load what it needs itself but need not when a request of the course
    (a lesson completed, a quiz submitted) has just read it. Read-only. Raises nothing."""
    slug = peek(("course-slug", course_id))
    return peek(("course-outline", slug)) if slug is not None else None


def outlines(course_ids: Iterable[int]) -> dict[int, Course]:
    """{id: course with its outline} for these courses (any status), from the content cache; the ones not
    cached yet are loaded together, so the number of queries does not grow with the number of courses."""
    wanted = list(dict.fromkeys(course_ids))
    found: dict[int, Course] = {}
    missing = []
    for cid in wanted:
        cached = peek(("course-outline-id", cid))
        if cached is None:
            missing.append(cid)
        else:
            found[cid] = cached
    if missing:
        for course in detached(_outline_statement().where(Course.id.in_(missing))):
            found[course.id] = remember(("course-outline-id", course.id), lambda course=course: _linked(course))
    return found


def can_view_course(course: Course, enrollment: Enrollment | None) -> bool:
    """Published courses are open to all; archived ones only to learners already enrolled."""
    if course.status is CourseStatus.PUBLISHED:
        return True
    return course.status is CourseStatus.ARCHIVED and enrollment is not None


# ---- enrollment and progress -----------------------------------------------------------


def get_enrollment(user: User, course: Course, *, lock: bool = False) -> Enrollment | None:
    """``user``'s enrollment in ``course`` (None: none, or not logged in). ``lock``: read it with the row lock
    ``lock_enrollment`` takes (a request that writes progress), so that one statement does both."""
    if not getattr(user, "is_authenticated", False):
        return None
    params = {"user": user.id, "course": course.id}
    if not lock:
        return db.session.scalar(_ENROLLMENT, params)
    enrollment = db.session.scalar(_ENROLLMENT_LOCKED, params)
    if enrollment is not None:
        # read under the lock: its last activity is the row's until this transaction moves it (``touch``)
        _locked_enrollments()[enrollment.id] = enrollment.last_activity_at
    return enrollment


# built once (every study request reads its enrollment: building the statement cost more CPU than its cache hit)
_ENROLLMENT = select(Enrollment).where(
    Enrollment.user_id == bindparam("user"), Enrollment.course_id == bindparam("course")
)
_ENROLLMENT_LOCKED = _ENROLLMENT.with_for_update().execution_options(populate_existing=True)


def enroll(user: User, course: Course, *, now: datetime) -> tuple[Enrollment, bool]:
    """Enroll once (a unique constraint makes double clicks and races safe). Returns (enrollment, created)."""
    if course.status is not CourseStatus.PUBLISHED:
        raise DomainError(gettext("This course is not open for enrollment."))
    values = {"user_id": user.id, "course_id": course.id, "enrolled_at": now, "last_activity_at": now}
    connection = db.session.connection()
    enrollment_id = connection.execute(_INSERT_ENROLLMENT[connection.dialect.name], values).scalar()
    if enrollment_id is None:  # enrolled already (a double click, a race: the unique constraint decided)
        return get_enrollment(user, course), False
    enrollment = _persistent(Enrollment(id=enrollment_id, completed_at=None, renewal_started_at=None, **values))
    # receivers learn of the row from the signal (a Core INSERT: no mapper event)
    enrolled.send(enrollment, course=course, now=now)
    return enrollment, True


@dataclass
class Progress:
    completed_lessons: set[int]
    passed_quizzes: set[int]
    total_steps: int
    done_steps: int

    @property
    def percent(self) -> int:
        return round(100 * self.done_steps / self.total_steps) if self.total_steps else 0


def course_steps(course: Course) -> list[tuple[str, Module, Lesson | None]]:
    """The learner's path in order: each lesson, then the module's quiz (worked out once per shared outline)."""
    known = course.__dict__.get("_outline_steps")
    if known is not None:
        return known
    steps: list[tuple[str, Module, Lesson | None]] = []
    for module in course.modules:
        steps.extend(("lesson", module, lesson) for lesson in module.lessons)
        if module.quiz is not None:
            steps.append(("quiz", module, None))
    return steps


def progress_for(enrollment: Enrollment | None, course: Course) -> Progress:
    """Which steps are done, in two queries."""
    steps = course_steps(course)
    if enrollment is None:
        return Progress(set(), set(), len(steps), 0)
    completed = set(
        db.session.scalars(select(LessonProgress.lesson_id).where(LessonProgress.enrollment_id == enrollment.id))
    )
    passed = set(db.session.scalars(select(QuizAttempt.quiz_id).where(passed_in_cycle(enrollment))))
    done = sum(
        1
        for kind, module, lesson in steps
        if (kind == "lesson" and lesson.id in completed) or (kind == "quiz" and module.quiz.id in passed)
    )
    return Progress(completed, passed, len(steps), done)


@dataclass(frozen=True)
class EnrollmentView:
    """The columns of an enrollment the learner's pages read (``learner_state``, ``dashboard``): read-only, no
    session."""

    id: int
    user_id: int
    course_id: int
    completed_at: datetime | None
    renewal_started_at: datetime | None
    last_activity_at: datetime | None = None
    enrolled_at: datetime | None = None


def _progress_statement(*, one_course: bool):
    """One statement for a learner's enrollments (in one course, or all), their completed lessons and their quizzes
    passed in the current cycle, as rows (kind e / l / q, enrollment id, course / lesson / quiz id, four times),
    built once: on a page it replaces three ORM reads and their building."""
    e, lp, qa = Enrollment.__table__, LessonProgress.__table__, QuizAttempt.__table__
    mine = e.c.user_id == bindparam("user_id")
    if one_course:
        mine = mine & (e.c.course_id == bindparam("course_id"))
    no_time = null().cast(e.c.completed_at.type)
    return union_all(
        select(
            literal_column("'e'").label("kind"),
            e.c.id.label("enrollment_id"),
            e.c.course_id.label("ref"),
            e.c.completed_at.label("done_at"),
            e.c.renewal_started_at.label("renewed_at"),
            e.c.last_activity_at.label("active_at"),
            e.c.enrolled_at.label("enrolled_at"),
        ).where(mine),
        select(literal_column("'l'"), lp.c.enrollment_id, lp.c.lesson_id, no_time, no_time, no_time, no_time)
        .select_from(lp.join(e, e.c.id == lp.c.enrollment_id))
        .where(mine),
        select(literal_column("'q'"), qa.c.enrollment_id, qa.c.quiz_id, no_time, no_time, no_time, no_time)
        .select_from(qa.join(e, e.c.id == qa.c.enrollment_id))
        .where(
            mine,
            qa.c.passed.is_(True),
            or_(e.c.renewal_started_at.is_(None), qa.c.submitted_at >= e.c.renewal_started_at),
        ),
    )


_PROGRESS_STATEMENTS: dict[bool, object] = {}


def _progress_rows(user: User, course: Course | None = None):
    """(enrollment views by id, {enrollment id: completed lesson ids}, {enrollment id: passed quiz ids})."""
    one_course = course is not None
    statement = _PROGRESS_STATEMENTS.get(one_course)
    if statement is None:
        statement = _PROGRESS_STATEMENTS[one_course] = _progress_statement(one_course=one_course)
    params = {"user_id": user.id, "course_id": course.id} if one_course else {"user_id": user.id}
    enrollments: dict[int, EnrollmentView] = {}
    completed: dict[int, set[int]] = {}
    passed: dict[int, set[int]] = {}
    # on the request's connection, not through the ORM session: for pages that only read (no autoflush needed)
    for kind, enrollment_id, ref, done_at, renewed_at, active_at, enrolled_at in (
        db.session.connection().execute(statement, params).all()
    ):
        if kind == "e":
            enrollments[enrollment_id] = EnrollmentView(
                enrollment_id, user.id, ref, done_at, renewed_at, active_at, enrolled_at
            )
        elif kind == "l":
            completed.setdefault(enrollment_id, set()).add(ref)
        else:
            passed.setdefault(enrollment_id, set()).add(ref)
    return enrollments, completed, passed


def _progress(course: Course, completed: set[int], passed: set[int]) -> Progress:
    steps = course_steps(course)
    done = sum(
        1
        for kind, module, lesson in steps
        if (kind == "lesson" and lesson.id in completed) or (kind == "quiz" and module.quiz.id in passed)
    )
    return Progress(completed, passed, len(steps), done)


def learner_state(user: User, course: Course) -> tuple[EnrollmentView | None, Progress]:
    """``user``'s enrollment in ``course`` (None: not enrolled, or not logged in) and their progress, in one
    statement; the same answers as ``get_enrollment`` + ``progress_for``. For pages that only read them."""
    if not getattr(user, "is_authenticated", False):
        return None, _progress(course, set(), set())
    enrollments, completed, passed = _progress_rows(user, course)
    if not enrollments:
        return None, _progress(course, set(), set())
    (enrollment,) = enrollments.values()
    return enrollment, _progress(course, completed.get(enrollment.id, set()), passed.get(enrollment.id, set()))


def next_step(course: Course, progress: Progress) -> tuple[str, Module, Lesson | None] | None:
    """The first unfinished step, or None when every step is done."""
    for kind, module, lesson in course_steps(course):
        if kind == "lesson" and lesson.id not in progress.completed_lessons:
            return kind, module, lesson
        if kind == "quiz" and module.quiz.id not in progress.passed_quizzes:
            return kind, module, lesson
    return None


ACTIVE_GAP_SECONDS = 30 * 60  # a longer pause between two steps of a course starts a new session


def active_seconds(since: datetime | None, now: datetime) -> int:
    """Measured active time of a step: the seconds since the learner's previous activity in the course, or 0 when
    that was longer ago than ACTIVE_GAP_SECONDS (the learner was away; the time is not counted)."""
    if since is None:
        return 0
    gap = (now - since).total_seconds()
    return int(gap) if 0 <= gap <= ACTIVE_GAP_SECONDS else 0


def _record_lesson(enrollment: Enrollment, lesson: Lesson, now: datetime) -> None:
    lock_enrollment(enrollment)
    connection = db.session.connection()
    written = connection.execute(
        _INSERT_PROGRESS[connection.dialect.name],
        {
            "enrollment_id": enrollment.id,
            "lesson_id": lesson.id,
            "completed_at": now,
            "active_seconds": active_seconds(enrollment.last_activity_at, now),
        },
    ).first()
    if written is not None:
        lesson_completed.send(enrollment, lesson=lesson, now=now)
    # else: already complete (a double click or a retry)
    touch(enrollment, now)


def complete_lesson(enrollment: Enrollment, lesson: Lesson, *, now: datetime) -> bool:
    """Record the lesson as complete once (idempotent under races), with its measured active time. Returns True if
    the course just completed.

    The row is written by one INSERT that skips an existing row (no savepoint, no ORM flush); receivers of
    ``lesson_completed`` (the xAPI event, the learning-day rollup, the report cache) learn of it from the signal,
    sent only when the row is new."""
    _record_lesson(enrollment, lesson, now)
    return check_completion(enrollment, now=now)


def complete_lesson_and_next(
    enrollment: Enrollment, course: Course, lesson: Lesson, *, now: datetime
) -> tuple[bool, tuple[str, Module, Lesson | None] | None]:
    """``complete_lesson`` for a learner's request, which also wants the next step (``course`` from ``outline``):
    (course just completed, the first unfinished step or None). Caller commits.

    The completion rule and the next step are read in one statement: the enrollment's completed lessons and passed
    quizzes with the ids of the course's lessons and quizzes as the database has them (the rule does not trust the
    cached outline, which only orders the steps), instead of the rule's EXISTS queries and then the progress."""
    _record_lesson(enrollment, lesson, now)
    db.session.flush()  # anything the receivers left pending counts (as in check_completion)
    found: dict[str, set[int]] = {"l": set(), "q": set(), "L": set(), "Q": set()}
    params = {"enrollment": enrollment.id, "course": enrollment.course_id}
    for kind, ref in db.session.connection().execute(_DONE_AND_CONTENT, params):
        found[kind].add(ref)
    finished = False
    if enrollment.completed_at is None and found["L"] <= found["l"] and found["Q"] <= found["q"]:
        finished = _mark_completed(enrollment, now)
    progress = _progress(course, found["l"], found["q"])
    return finished, None if finished else next_step(course, progress)


def _done_and_content_statement():
    """Rows (kind, id): ``l`` a lesson this enrollment completed, ``q`` a quiz it passed in its current cycle (since
    a renewal started, if any), ``L`` / ``Q`` every lesson / quiz of the course. Built once."""
    lesson, module, quiz = Lesson.__table__, Module.__table__, Quiz.__table__
    progress, attempt, enrollments = LessonProgress.__table__, QuizAttempt.__table__, Enrollment.__table__
    enrollment, course = bindparam("enrollment"), bindparam("course")
    return union_all(
        select(literal_column("'l'").label("kind"), progress.c.lesson_id.label("ref")).where(
            progress.c.enrollment_id == enrollment
        ),
        select(literal_column("'q'"), attempt.c.quiz_id)
        .select_from(attempt.join(enrollments, enrollments.c.id == attempt.c.enrollment_id))
        .where(
            attempt.c.enrollment_id == enrollment,
            attempt.c.passed.is_(True),
            or_(enrollments.c.renewal_started_at.is_(None), attempt.c.submitted_at >= enrollments.c.renewal_started_at),
        ),
        select(literal_column("'L'"), lesson.c.id)
        .select_from(lesson.join(module, module.c.id == lesson.c.module_id))
        .where(module.c.course_id == course),
        select(literal_column("'Q'"), quiz.c.id)
        .select_from(quiz.join(module, module.c.id == quiz.c.module_id))
        .where(module.c.course_id == course),
    )


_DONE_AND_CONTENT = _done_and_content_statement()


def touch(enrollment: Enrollment, now: datetime) -> None:
    """Move the enrollment's last activity to ``now`` (one UPDATE, sent at once; the caller commits).

    A Core UPDATE rather than an ORM flush of the changed attribute: the unit of work around this one column cost
    more CPU than the statement on every lesson completion and submission. The object is given the value as
    loaded, and ``activity_recorded`` tells whoever the ORM's mapper events would have told.

    When this transaction read the row under its lock, the UPDATE carries the execution option ``activity_moved``
    = (the last activity before, ``now``): both exact, so a listener that watches writes to enrollments (the
    insights people rollup, whose triggers mark a user only when a day boundary is crossed) can tell that this one
    changes nothing it counts."""
    locked = _locked_enrollments()
    before = locked.get(enrollment.id)
    db.session.connection().execute(
        _TOUCH,
        {"enrollment": enrollment.id, "now": now},
        execution_options={"activity_moved": (before, now)} if before is not None else _NO_OPTIONS,
    )
    if enrollment.id in locked:
        locked[enrollment.id] = now  # the row holds it now, and the lock is still held
    set_committed_value(enrollment, "last_activity_at", now)
    activity_recorded.send(enrollment, now=now)


_NO_OPTIONS: dict = {}


_TOUCH = (
    update(Enrollment.__table__)
    .where(Enrollment.__table__.c.id == bindparam("enrollment"))
    .values(last_activity_at=bindparam("now", type_=Enrollment.__table__.c.last_activity_at.type))
)


# built once per dialect: a completion of a lesson already complete inserts nothing (the unique constraint on
# enrollment and lesson decides races), where a savepoint around an ORM insert cost two more round trips. Whether a
# row was written is read from RETURNING: psycopg reports rowcount -1 for this INSERT, which counted a double click
# as a new completion on PostgreSQL (a second xAPI "completed", rollup and report-cache work)
_INSERT_PROGRESS = {
    name: dialect_insert(LessonProgress.__table__)
    .on_conflict_do_nothing(index_elements=["enrollment_id", "lesson_id"])
    .returning(LessonProgress.__table__.c.id)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def _steps_left_statements():
    """``(steps left, steps left in a renewal)``: the completion rule's EXISTS (a lesson not completed or a quiz not
    passed), built once with the enrollment, course and renewal start bound (building them per call cost more CPU
    than running them). Core tables, run on the session's connection: no ORM entity to hydrate."""
    lesson, module, quiz = Lesson.__table__, Module.__table__, Quiz.__table__
    progress, attempt = LessonProgress.__table__, QuizAttempt.__table__
    in_course = module.c.course_id == bindparam("course")
    lessons_left = (
        select(lesson.c.id)
        .select_from(lesson.join(module, module.c.id == lesson.c.module_id))
        .where(
            in_course,
            ~exists().where(progress.c.enrollment_id == bindparam("enrollment"), progress.c.lesson_id == lesson.c.id),
        )
    )

    def quizzes_left(*in_cycle):
        passed = exists().where(
            attempt.c.enrollment_id == bindparam("enrollment"),
            attempt.c.passed.is_(True),
            attempt.c.quiz_id == quiz.c.id,
            *in_cycle,
        )
        return exists(
            select(quiz.c.id).select_from(quiz.join(module, module.c.id == quiz.c.module_id)).where(in_course, ~passed)
        )

    # one statement whatever is left: the submission of a course's last quiz asked twice (lessons, then quizzes)
    renewal = bindparam("renewal", type_=attempt.c.submitted_at.type)
    return (
        select(or_(exists(lessons_left), quizzes_left())),
        select(or_(exists(lessons_left), quizzes_left(attempt.c.submitted_at >= renewal))),
    )


_STEPS_LEFT = _steps_left_statements()


def _touch_and_complete_statements():
    """``touch`` and ``check_completion`` in one UPDATE, for a passed submission (``(no renewal, renewal)``, built
    once): the last activity moves to ``now``, and ``completed_at`` becomes ``now`` when nothing is left (the rule's
    EXISTS as a subquery); RETURNING says what it holds. The enrollment's row lock is held (``lock_enrollment``)."""
    table = Enrollment.__table__
    now = bindparam("now", type_=table.c.completed_at.type)
    return tuple(
        update(table)
        .where(table.c.id == bindparam("enrollment"))
        .values(
            last_activity_at=now,
            completed_at=case(
                (table.c.completed_at.is_(None) & ~left.scalar_subquery(), now), else_=table.c.completed_at
            ),
        )
        .returning(table.c.completed_at)
        for left in _STEPS_LEFT
    )


_TOUCH_AND_COMPLETE = _touch_and_complete_statements()


def check_completion(enrollment: Enrollment, *, now: datetime) -> bool:
    """Completion rule: all lessons complete and all quizzes passed → completed_at set exactly once.

    Returns True only for the call that completed it (a conditional UPDATE decides races).
    """
    if enrollment.completed_at is not None:
        return False
    db.session.flush()  # what autoflush did for the ORM queries these were: the steps just written count
    connection = db.session.connection()
    steps_left, steps_left_in_renewal = _STEPS_LEFT
    params = {"course": enrollment.course_id, "enrollment": enrollment.id, "renewal": enrollment.renewal_started_at}
    if connection.scalar(steps_left if enrollment.renewal_started_at is None else steps_left_in_renewal, params):
        return False
    return _mark_completed(enrollment, now)


def _mark_completed(enrollment: Enrollment, now: datetime) -> bool:
    """Every step is done: set completed_at once. True only for the call that set it (a conditional UPDATE decides
    races); it sends ``enrollment_completed``."""
    done = db.session.execute(
        update(Enrollment)
        .where(Enrollment.id == enrollment.id, Enrollment.completed_at.is_(None))
        .values(completed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done == 1:
        set_committed_value(enrollment, "completed_at", now)  # what the UPDATE wrote: no read-back
        enrollment_completed.send(enrollment, now=now)
    else:
        db.session.refresh(enrollment, ["completed_at"])  # another request completed it first
    return done == 1


# ---- quizzes -------------------------------------------------------------------------------


def load_quiz(quiz_id: int) -> Quiz | None:
    return db.session.scalar(
        select(Quiz).where(Quiz.id == quiz_id).options(selectinload(Quiz.questions).selectinload(Question.choices))
    )


def quiz_outline(module: Module) -> Quiz | None:
    """The module's quiz with its questions and choices, from the content cache (``module`` from ``outline``).

    Read-only and shared like the outline: attempts are written by ids (``quiz_id``, ``question_id``). The
    quiz's module is the given outline's. Raises nothing; None when the module has no quiz.
    """
    if module.quiz is None:
        return None
    quiz_id = module.quiz.id

    def build() -> Quiz | None:
        found = detached(
            select(Quiz).where(Quiz.id == quiz_id).options(selectinload(Quiz.questions).selectinload(Question.choices))
        )
        if not found:
            return None
        quiz = found[0]
        set_committed_value(quiz, "module", module)
        for question in quiz.questions:
            set_committed_value(question, "quiz", quiz)
            for choice in question.choices:
                set_committed_value(choice, "question", question)
        return quiz

    return remember(("quiz-outline", quiz_id), build)


def passed_in_cycle(enrollment: Enrollment):
    """SQL condition: a passed attempt of this enrollment that counts now (after any renewal started)."""
    condition = (QuizAttempt.enrollment_id == enrollment.id) & QuizAttempt.passed.is_(True)
    if enrollment.renewal_started_at is not None:
        condition = condition & (QuizAttempt.submitted_at >= enrollment.renewal_started_at)
    return condition


def start_renewal(enrollment: Enrollment, *, now: datetime) -> None:
    """Renew a completed course: the quizzes must be passed again; completing again renews the certificate.

    Lessons stay complete. Raises DomainError when the course is not completed yet, or (from a
    ``renewal_requested`` receiver) when the certificate is not yet inside its renewal window. Caller commits.
    """
    lock_enrollment(enrollment)
    db.session.refresh(enrollment)
    if enrollment.completed_at is None:
        raise DomainError(gettext("Renewal is already under way: pass the quizzes again to renew your certificate."))
    renewal_requested.send(enrollment, now=now)
    enrollment.completed_at = None
    enrollment.renewal_started_at = now
    enrollment.last_activity_at = now
    db.session.flush()


def attempts_for(enrollment: Enrollment, quiz: Quiz) -> list[QuizAttempt]:
    """This enrollment's attempts at the quiz in the current cycle (since a renewal started, if any)."""
    renewal = enrollment.renewal_started_at
    if renewal is None:
        return list(db.session.scalars(_ATTEMPTS, {"enrollment": enrollment.id, "quiz": quiz.id}))
    return list(db.session.scalars(_ATTEMPTS_SINCE, {"enrollment": enrollment.id, "quiz": quiz.id, "renewal": renewal}))


def quiz_attempts(enrollment, quiz: Quiz) -> list[QuizAttempt]:
    """Every attempt of this enrollment at the quiz, of every cycle, by number (``in_cycle`` picks this cycle's)."""
    return list(db.session.scalars(_ATTEMPTS, {"enrollment": enrollment.id, "quiz": quiz.id}))


# built once: quiz start, the quiz, attempt and result pages read them (building one cost more CPU than its cache hit)
_ATTEMPTS = (
    select(QuizAttempt)
    .where(QuizAttempt.enrollment_id == bindparam("enrollment"), QuizAttempt.quiz_id == bindparam("quiz"))
    .order_by(QuizAttempt.attempt_no)
)
_ATTEMPTS_SINCE = _ATTEMPTS.where(
    QuizAttempt.started_at >= bindparam("renewal", type_=QuizAttempt.__table__.c.started_at.type)
)


_ATTEMPT_ROWS = (
    select(*QuizAttempt.__table__.c)
    .where(
        QuizAttempt.__table__.c.enrollment_id == bindparam("enrollment"),
        QuizAttempt.__table__.c.quiz_id == bindparam("quiz"),
    )
    .order_by(QuizAttempt.__table__.c.attempt_no)
)


def attempt_rows(enrollment, quiz: Quiz) -> list:
    """``quiz_attempts`` as read-only rows (the same attribute names, no ORM objects: a page that only shows
    them need not build those), on the request's connection. Raises nothing."""
    return db.session.connection().execute(_ATTEMPT_ROWS, {"enrollment": enrollment.id, "quiz": quiz.id}).all()


def in_cycle(enrollment, attempts: list[QuizAttempt]) -> list[QuizAttempt]:
    """Those of ``attempts`` in the enrollment's current cycle (since a renewal started, if any): what
    ``attempts_for`` reads."""
    renewal = enrollment.renewal_started_at
    return attempts if renewal is None else [a for a in attempts if a.started_at >= renewal]


def attempts_used_up(quiz: Quiz, attempts: list[QuizAttempt]) -> bool:
    """Whether ``attempts`` (this cycle's) have used every attempt the quiz allows: no new one, whenever."""
    return quiz.max_attempts is not None and sum(a.submitted_at is not None for a in attempts) >= quiz.max_attempts


def attempt_block_reason(quiz: Quiz, attempts: list[QuizAttempt], *, now: datetime, ngettext=ngettext) -> str | None:
    """Why a new attempt cannot start now (limit or cooldown), or None. ``ngettext``: flask_babel's by default;
    the signed-in lane (courses/lane.py) passes the request's translations' own, outside a request."""
    submitted = [a for a in attempts if a.submitted_at is not None]
    if attempts_used_up(quiz, attempts):
        return ngettext(
            "You have used your %(num)d attempt for this quiz.",
            "You have used all %(num)d attempts for this quiz.",
            quiz.max_attempts,
        )
    wait_minutes = quiz.cooldown_minutes if submitted else 0
    if len(submitted) >= 2 and not any(a.passed for a in submitted[-2:]):
        # two failures in a row: slow down answer-guessing (authors set or disable it per quiz)
        wait_minutes = max(wait_minutes, quiz.failure_cooldown_minutes)
    if wait_minutes:
        ready = submitted[-1].submitted_at + timedelta(minutes=wait_minutes)
        if now < ready:
            wait = max(1, int((ready - now).total_seconds() // 60) + 1)
            return ngettext(
                "Please wait %(num)d more minute before trying again.",
                "Please wait %(num)d more minutes before trying again.",
                wait,
            )
    return None


def is_stale(attempt: QuizAttempt, quiz: Quiz) -> bool:
    """True when the attempt's questions or choices no longer match the quiz."""
    current = {q.id: {c.id for c in q.choices} for q in quiz.questions}
    return {qid: set(cids) for qid, cids in attempt.layout} != current


def lock_enrollment(enrollment: Enrollment) -> None:
    """Serialize progress writes of one enrollment (PostgreSQL row lock; SQLite serializes writers anyway).

    Without it, a lesson completed in one tab and a quiz passed in another could each miss the
    other's uncommitted row and neither would complete the course.
    """
    locked = _locked_enrollments()
    if enrollment.id not in locked:
        db.session.connection().execute(_LOCK_ENROLLMENT, {"enrollment": enrollment.id})
        locked[enrollment.id] = None  # locked, but its last activity not read under the lock


def _locked_enrollments() -> dict[int, datetime | None]:
    """The enrollments whose row lock the session's current transaction holds (its commit or rollback releases
    them: what was kept for an earlier transaction is dropped): id → the row's last activity as read under the lock
    (or as this transaction moved it), None when not read under it."""
    session = db.session()
    transaction = session.get_transaction()
    held = session.info.get("locked_enrollments")
    if held is None or held[0] is not transaction:
        held = session.info["locked_enrollments"] = (transaction, {})
    return held[1]


# built once: a progress write takes this lock first
_LOCK_ENROLLMENT = (
    select(Enrollment.__table__.c.id).where(Enrollment.__table__.c.id == bindparam("enrollment")).with_for_update()
)


def _next_attempt_no(enrollment: Enrollment, quiz: Quiz) -> int:
    # numbers run on across renewals, so earlier attempts keep their addresses
    latest = db.session.scalar(
        select(func.max(QuizAttempt.attempt_no)).where(
            QuizAttempt.enrollment_id == enrollment.id, QuizAttempt.quiz_id == quiz.id
        )
    )
    return (latest or 0) + 1


def start_attempt(
    enrollment: Enrollment, quiz: Quiz, *, now: datetime, rng: random.Random | None = None
) -> QuizAttempt:
    """Open an attempt with its own question and choice order, or return the open one. Raises QuizRuleError."""
    attempts = attempts_for(enrollment, quiz)
    open_attempt = next((a for a in attempts if a.submitted_at is None), None)
    if open_attempt is not None:
        if not is_stale(open_attempt, quiz):
            return open_attempt
        # the quiz changed under an unsubmitted attempt (a re-import): drop it, it holds no answers
        db.session.delete(open_attempt)
        db.session.flush()
        attempts.remove(open_attempt)
    reason = attempt_block_reason(quiz, attempts, now=now)
    if reason:
        raise QuizRuleError(reason)
    rng = rng or random.SystemRandom()
    questions = list(quiz.questions)
    rng.shuffle(questions)
    layout = []
    for question in questions:
        choice_ids = [c.id for c in question.choices]
        if question.kind is not QuestionKind.TRUE_FALSE:  # True stays before False
            rng.shuffle(choice_ids)
        layout.append([question.id, choice_ids])
    values = {
        "enrollment_id": enrollment.id,
        "quiz_id": quiz.id,
        # without a renewal the attempts read above are all of them: no second query for the highest number
        "attempt_no": max((a.attempt_no for a in attempts), default=0) + 1
        if enrollment.renewal_started_at is None
        else _next_attempt_no(enrollment, quiz),
        "layout": layout,
        "tokens": new_choice_tokens(layout),
        "started_at": now,
    }
    connection = db.session.connection()
    attempt_id = connection.execute(_INSERT_ATTEMPT[connection.dialect.name], values).scalar()
    if attempt_id is None:
        # another request opened it at the same moment (the unique attempt number decided): use that one
        return next(a for a in attempts_for(enrollment, quiz) if a.submitted_at is None)
    return _persistent(QuizAttempt(id=attempt_id, answers=None, score=None, passed=None, submitted_at=None, **values))


def _persistent(obj):
    """A row just written by a Core INSERT, as the session's object for it without reading it back (every column
    given). Opening an attempt or enrolling by one INSERT … ON CONFLICT DO NOTHING replaced a savepoint around an
    ORM insert (three statements and a unit of work for one row)."""
    make_transient_to_detached(obj)
    db.session.add(obj)
    return obj


def _insert_skipping(model, *columns):
    """{dialect: INSERT INTO model … ON CONFLICT (columns) DO NOTHING RETURNING id}, built once."""
    table = model.__table__
    return {
        name: dialect_insert(table).on_conflict_do_nothing(index_elements=list(columns)).returning(table.c.id)
        for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
    }


_INSERT_ATTEMPT = _insert_skipping(QuizAttempt, "enrollment_id", "quiz_id", "attempt_no")
_INSERT_ENROLLMENT = _insert_skipping(Enrollment, "user_id", "course_id")


def new_choice_tokens(layout: list) -> dict[str, list[int]]:
    """A fresh random token (128 bits) for every choice of an attempt: token -> [question id, choice id]."""
    return {secrets.token_urlsafe(16): [qid, cid] for qid, cids in layout for cid in cids}


def ensure_tokens(attempt: QuizAttempt) -> None:
    """Give an attempt opened before choice tokens existed its tokens (flush; caller commits)."""
    if attempt.tokens is None and attempt.submitted_at is None:
        attempt.tokens = new_choice_tokens(attempt.layout)
        db.session.flush()


def token_of(attempt: QuizAttempt) -> dict[tuple[int, int], str]:
    """(question id, choice id) -> this attempt's token, for the form."""
    return {(qid, cid): token for token, (qid, cid) in (attempt.tokens or {}).items()}


def answers_from_form(attempt: QuizAttempt, quiz: Quiz, raw: dict[int, list[str]]) -> dict[int, list[int]]:
    """Map ``{question position (1-based): [choice tokens]}`` to ``{question id: [choice ids]}``.

    Only this attempt's tokens, each under its own question, are accepted. Raises QuizRuleError.
    """
    if attempt.submitted_at is None and is_stale(attempt, quiz):
        raise QuizRuleError("This quiz changed after you started. Please start a new attempt.")
    tokens = attempt.tokens or {}
    answers: dict[int, list[int]] = {}
    for position, chosen in raw.items():
        if not 1 <= position <= len(attempt.layout):
            raise QuizRuleError("Your answers do not match this quiz's questions.")
        qid = attempt.layout[position - 1][0]
        ids = []
        for token in chosen:
            pair = tokens.get(token)
            if pair is None or pair[0] != qid:
                raise QuizRuleError("Your answers do not match this quiz's choices. Please reload the quiz.")
            ids.append(pair[1])
        answers[qid] = ids
    return answers


@dataclass
class Graded:
    score: int
    passed: bool
    correct: dict[int, bool]


def grade_attempt(attempt: QuizAttempt, quiz: Quiz, answers: dict[int, list[int]], *, now: datetime) -> Graded:
    """Check the answers against the attempt's own layout and grade on the server.

    Raises QuizRuleError for tampered posts (unknown question or choice ids, missing answers,
    several answers to a single-choice question, an already submitted attempt). Caller commits.
    """
    if attempt.submitted_at is not None:
        raise QuizRuleError("This attempt was already submitted.")
    renewal = attempt.enrollment.renewal_started_at
    if renewal is not None and attempt.started_at < renewal:
        # opened before the renewal: it belongs to the finished cycle and must not count as an extra attempt
        raise QuizRuleError("This attempt was opened before you started renewing. Please start a new attempt.")
    if is_stale(attempt, quiz):
        raise QuizRuleError("This quiz changed after you started. Please start a new attempt.")
    layout = {qid: set(cids) for qid, cids in attempt.layout}
    questions = {q.id: q for q in quiz.questions}
    if set(layout) - set(questions):
        raise QuizRuleError("This quiz changed after you started. Please start a new attempt.")
    if set(answers) != set(layout):
        if set(answers) - set(layout):
            raise QuizRuleError("Your answers do not match this quiz's questions.")
        raise QuizRuleError("Please answer every question before submitting.")
    correct: dict[int, bool] = {}
    for qid, chosen in answers.items():
        chosen_set = set(chosen)
        if len(chosen_set) != len(chosen) or not chosen_set or not chosen_set <= layout[qid]:
            raise QuizRuleError("Your answers do not match this quiz's choices.")
        question = questions[qid]
        if question.kind is not QuestionKind.MULTIPLE and len(chosen_set) != 1:
            raise QuizRuleError("Choose one answer for each single-choice question.")
        correct[qid] = chosen_set == {c.id for c in question.choices if c.correct}
    score = round(100 * sum(correct.values()) / len(correct))
    passed = score >= quiz.pass_mark
    # the conditional update makes a double submit harmless: only one write wins
    values = {"answers": {str(k): sorted(v) for k, v in answers.items()}, "score": score, "passed": passed}
    values["submitted_at"] = now
    connection = db.session.connection()
    # Core statements built once (the ORM-enabled UPDATE and bulk INSERT built and ran through the ORM per call)
    if connection.execute(_GRADE, {"attempt": attempt.id, **values}).rowcount != 1:
        raise QuizRuleError("This attempt was already submitted.")
    # one executemany: the rows need no ORM objects, and SQLite would otherwise send one INSERT per answer
    connection.execute(
        _INSERT_ANSWERS,
        [
            {"attempt_id": attempt.id, "question_id": qid, "choice_id": cid, "question_correct": correct[qid]}
            for qid, chosen in answers.items()
            for cid in chosen
        ],
    )
    # the row now holds exactly these values: set them as loaded instead of reading the row back
    for key, value in values.items():
        set_committed_value(attempt, key, value)
    return Graded(score=score, passed=passed, correct=correct)


_GRADE = (
    update(QuizAttempt.__table__)
    .where(QuizAttempt.__table__.c.id == bindparam("attempt"), QuizAttempt.__table__.c.submitted_at.is_(None))
    .values(
        {
            name: bindparam(name, type_=QuizAttempt.__table__.c[name].type)
            for name in ("answers", "score", "passed", "submitted_at")
        }
    )
)
_INSERT_ANSWERS = insert(AttemptAnswer.__table__)


def submit_attempt(
    enrollment: Enrollment, attempt: QuizAttempt, quiz: Quiz, answers: dict[int, list[int]], *, now: datetime
) -> tuple[Graded, bool]:
    """Grade an attempt and apply the completion rule. Returns (graded, course_just_completed). Raises
    QuizRuleError (grade_attempt's). Caller commits."""
    lock_enrollment(enrollment)
    graded = grade_attempt(attempt, quiz, answers, now=now)
    quiz_graded.send(enrollment, attempt=attempt, quiz=quiz, graded=graded, now=now)
    if not graded.passed or enrollment.completed_at is not None:
        touch(enrollment, now)
        return graded, False
    # the last activity and the completion rule in one UPDATE, where touch and check_completion sent a statement
    # each (and the rule's UPDATE a third when it completed the course)
    db.session.flush()  # anything the receivers left pending counts, as in check_completion
    locked = _locked_enrollments()
    before = locked.get(enrollment.id)
    completed_at = (
        db.session.connection()
        .execute(
            _TOUCH_AND_COMPLETE[enrollment.renewal_started_at is not None],
            {
                "enrollment": enrollment.id,
                "course": enrollment.course_id,
                "renewal": enrollment.renewal_started_at,
                "now": now,
            },
            # as touch's (the completion it may write is told by enrollment_completed below)
            execution_options={"activity_moved": (before, now)} if before is not None else _NO_OPTIONS,
        )
        .scalar_one()
    )
    set_committed_value(enrollment, "last_activity_at", now)
    if enrollment.id in locked:
        locked[enrollment.id] = now
    activity_recorded.send(enrollment, now=now)
    if completed_at is None:
        return graded, False
    set_committed_value(enrollment, "completed_at", now)  # what the UPDATE wrote: no read-back
    enrollment_completed.send(enrollment, now=now)  # the row lock held: only this request can have completed it
    return graded, True


def best_attempt(attempts: list[QuizAttempt]) -> QuizAttempt | None:
    scored = [a for a in attempts if a.score is not None]
    return max(scored, key=lambda a: (a.score, -a.attempt_no)) if scored else None


# ---- dashboard -------------------------------------------------------------------------------


@dataclass
class DashboardRow:
    enrollment: EnrollmentView
    course: Course
    percent: int
    next_title: str | None


def dashboard(user: User) -> list[DashboardRow]:
    """The user's enrollments with progress, most recently active first, in one statement whatever their count
    (the outlines come from the content cache). Raises nothing."""
    enrollments, completed, passed = _progress_rows(user)
    ordered = sorted(enrollments.values(), key=lambda e: (e.last_activity_at, e.id), reverse=True)
    # the outlines change only on publish: shared from the content cache (read-only)
    courses = outlines(e.course_id for e in ordered)
    rows = []
    for e in ordered:
        course = courses[e.course_id]
        progress = _progress(course, completed.get(e.id, set()), passed.get(e.id, set()))
        step = next_step(course, progress)
        title = None if step is None else (step[2].title if step[0] == "lesson" else step[1].quiz.title)
        rows.append(DashboardRow(e, course, progress.percent, title))
    return rows
