"""Keep ``learning_days`` (insights.models.LearningDay) equal to what lesson_progress and quiz_attempts say.

A day row is never patched with a delta: whenever an enrollment's progress or attempts change, all of that
enrollment's day rows are recomputed from its own rows (a few dozen at most), in the same transaction. So a retry,
a double click or a rolled-back request cannot leave the rollup off by one. What triggers a refresh:

- any ORM insert, update or delete of a LessonProgress or QuizAttempt (checked after every flush);
- a completed lesson (``lesson_completed``: the row is a Core INSERT) and a graded quiz (``quiz_graded``: grading
  is a conditional UPDATE), which the ORM does not see;
- a lesson whose stated minutes change, or a lesson or quiz deleted (a course re-import): every enrollment in
  that course, since the rollup holds the lessons' minutes and the database cascades the deleted rows.

Bulk SQL that bypasses the ORM (the benchmark generator, migrations) calls ``rebuild()`` afterwards.
"""

from __future__ import annotations

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.extensions import db
from courses.models import Enrollment, Lesson, LessonProgress, Module, Quiz, QuizAttempt
from courses.services import ACTIVE_GAP_SECONDS, lesson_completed, quiz_graded
from insights.models import LearningDay


def _day(moment, dialect: str):
    """The UTC calendar day of a timestamp column, as SQL."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", moment))
    return func.date(moment)  # SQLite stores naive UTC


def _seconds(later, earlier, dialect: str):
    if dialect == "postgresql":
        return func.date_part("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _statements(dialect: str, where_enrollment):
    """The statements that recompute the day rows of the enrollments selected by ``where_enrollment(column)``:
    delete them, then insert them again from the enrollments' own rows (on PostgreSQL both in one statement)."""
    lessons = (
        select(
            LessonProgress.enrollment_id.label("enrollment_id"),
            _day(LessonProgress.completed_at, dialect).label("day"),
            Lesson.minutes.label("minutes"),
            func.coalesce(LessonProgress.active_seconds, 0).label("seconds"),
            literal(0).label("passes"),
        )
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .where(where_enrollment(LessonProgress.enrollment_id))
    )
    duration = _seconds(QuizAttempt.submitted_at, QuizAttempt.started_at, dialect)
    attempts = select(
        QuizAttempt.enrollment_id,
        _day(QuizAttempt.submitted_at, dialect),
        literal(0),
        # the same rule the report always used: start to submit, when at most ACTIVE_GAP_SECONDS
        case((and_(duration >= 0, duration <= ACTIVE_GAP_SECONDS), func.round(duration)), else_=0),
        literal(0),
    ).where(where_enrollment(QuizAttempt.enrollment_id), QuizAttempt.submitted_at.is_not(None))
    first_pass = (
        select(
            QuizAttempt.enrollment_id.label("enrollment_id"),
            func.min(QuizAttempt.submitted_at).label("at"),
        )
        .where(
            where_enrollment(QuizAttempt.enrollment_id),
            QuizAttempt.passed.is_(True),
            QuizAttempt.submitted_at.is_not(None),
        )
        .group_by(QuizAttempt.enrollment_id, QuizAttempt.quiz_id)
        .subquery()
    )
    passes = select(first_pass.c.enrollment_id, _day(first_pass.c.at, dialect), literal(0), literal(0), literal(1))
    steps = union_all(lessons, attempts, passes).subquery()
    rows = select(
        steps.c.enrollment_id,
        steps.c.day,
        func.sum(steps.c.minutes),
        func.sum(steps.c.seconds),
        func.sum(steps.c.passes),
    ).group_by(steps.c.enrollment_id, steps.c.day)
    if dialect == "postgresql":
        return (_replace_in_one(rows, where_enrollment),)
    return (
        delete(LearningDay).where(where_enrollment(LearningDay.enrollment_id)),
        insert(LearningDay).from_select(
            ["enrollment_id", "day", "lesson_minutes", "active_seconds", "first_passes"], rows
        ),
    )


def _replace_in_one(rows, where_enrollment):
    """PostgreSQL: the DELETE and INSERT of ``_statements`` as one statement. The recomputed rows are upserted (a
    row whose numbers did not change is not written again) and the enrollments' other day rows deleted, in a
    data-modifying CTE: the two touch different rows (a day is either recomputed or gone), so they cannot meet.
    A lesson completion or a graded quiz sends one statement for the rollup instead of two."""
    table = LearningDay.__table__
    fresh = rows.cte("fresh")
    gone = (
        delete(table)
        .where(
            where_enrollment(table.c.enrollment_id),
            # NOT EXISTS, an anti-join: a NOT IN over a subquery is hashed only while the subquery fits in
            # work_mem, and above that PostgreSQL re-reads it for every row (rebuild() at 1.5M rows never ended)
            ~exists().where(fresh.c.enrollment_id == table.c.enrollment_id, fresh.c.day == table.c.day),
        )
        .cte("gone")
    )
    numbers = ["lesson_minutes", "active_seconds", "first_passes"]
    upsert = postgresql.insert(table).from_select(["enrollment_id", "day", *numbers], select(*fresh.c))
    changed = tuple_(*(table.c[name] for name in numbers)).is_distinct_from(
        tuple_(*(upsert.excluded[name] for name in numbers))
    )
    return upsert.on_conflict_do_update(
        index_elements=["enrollment_id", "day"], set_={name: upsert.excluded[name] for name in numbers}, where=changed
    ).add_cte(gone)


def _refresh(connection, where_enrollment) -> None:
    """Recompute the day rows of the enrollments selected by ``where_enrollment(column)`` (one statement on
    PostgreSQL, two on SQLite)."""
    for statement in _statements(connection.dialect.name, where_enrollment):
        connection.execute(statement)


# One enrollment's refresh (every progress write of a learner: the hot path) as statements built once per
# dialect with the id bound: building these expressions cost more CPU than running them
_ONE_ENROLLMENT: dict[str, tuple] = {}


def _refresh_one(connection, enrollment_id: int) -> None:
    dialect = connection.dialect.name
    statements = _ONE_ENROLLMENT.get(dialect)
    if statements is None:
        statements = _ONE_ENROLLMENT[dialect] = _statements(dialect, lambda column: column == bindparam("enrollment"))
    for statement in statements:
        connection.execute(statement, {"enrollment": enrollment_id})


def refresh_enrollments(connection, enrollment_ids) -> None:
    ids = sorted(set(enrollment_ids))
    if len(ids) == 1:
        _refresh_one(connection, ids[0])
    elif ids:
        _refresh(connection, lambda column: column.in_(ids))


def refresh_courses(connection, course_ids) -> None:
    ids = sorted(set(course_ids))
    if ids:
        in_courses = select(Enrollment.id).where(Enrollment.course_id.in_(ids))
        _refresh(connection, lambda column: column.in_(in_courses))


def rebuild(connection=None) -> int:
    """Recompute every day row from lesson_progress and quiz_attempts (flushes; the caller commits).

    Returns the number of day rows."""
    connection = connection or db.session.connection()
    _refresh(connection, lambda column: column.is_not(None))
    return connection.execute(select(func.count()).select_from(LearningDay)).scalar_one()


def _original(obj, attribute: str):
    """The attribute's value as loaded (a deleted orphan may have had it cleared in memory)."""
    history = inspect(obj).attrs[attribute].history
    return (history.deleted or history.unchanged or history.added or [None])[0]


def _pending(connection) -> dict:
    # kept on the flushing connection; a leftover after a failed flush only causes a harmless extra recompute
    return connection.info.setdefault("learning_days", {"enrollments": set(), "courses": set()})


# Mapper events fire for every row the unit of work writes, cascades and orphans included (a flush's
# session.deleted does not list orphans). They only note what changed; after_flush recomputes once.
@event.listens_for(LessonProgress, "after_insert")
@event.listens_for(LessonProgress, "after_update")
@event.listens_for(LessonProgress, "after_delete")
def _step_written(_mapper, connection, target) -> None:
    _pending(connection)["enrollments"].add(target.enrollment_id)


@event.listens_for(QuizAttempt, "after_insert")
@event.listens_for(QuizAttempt, "after_update")
@event.listens_for(QuizAttempt, "after_delete")
def _attempt_written(_mapper, connection, target) -> None:
    # the rollup counts submitted attempts only: opening an attempt (or dropping an unsubmitted one) changes no day
    if target.submitted_at is None and not inspect(target).attrs.submitted_at.history.deleted:
        return
    _pending(connection)["enrollments"].add(target.enrollment_id)


@event.listens_for(Lesson, "after_update")
def _lesson_updated(mapper, connection, target) -> None:
    if inspect(target).attrs.minutes.history.has_changes():  # a new title or text changes no number
        _course_content_deleted(mapper, connection, target)


@event.listens_for(Lesson, "after_delete")
@event.listens_for(Quiz, "after_delete")
def _course_content_deleted(_mapper, connection, target) -> None:
    # the module row is still there: children are deleted before their parent
    course_id = connection.execute(select(Module.course_id).where(Module.id == target.module_id)).scalar()
    if course_id is not None:
        _pending(connection)["courses"].add(course_id)


@event.listens_for(Module, "after_delete")
def _module_deleted(_mapper, connection, target) -> None:
    course = _original(target, "course")  # removed from course.modules, it no longer points at its course
    course_id = course.id if course is not None else _original(target, "course_id")
    if course_id is not None:
        _pending(connection)["courses"].add(course_id)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context) -> None:
    connection = session.connection()
    pending = connection.info.pop("learning_days", None)
    if not pending:
        return
    refresh_courses(connection, pending["courses"])
    refresh_enrollments(connection, pending["enrollments"] - {None})


@lesson_completed.connect
@quiz_graded.connect
def _on_step_recorded(enrollment, **_):
    # a completion and a grading are Core statements the ORM does not see
    refresh_enrollments(db.session.connection(), [enrollment.id])
