"""Workforce reports cached per organization, filters and day, and dropped the moment their data changes.

Why a cache and not another rollup: the report's cost at 10,000 learners is the per-learner aggregation itself
(~110,000 enrollment facts folded into learner rows for every breakdown), and every one of those learner rows
depends on the period asked for (served, exited, completed *before the period ends*, hours *within* it). A rollup
that made them period-free would have to hold one row per learner, group and day, no smaller than what the report
reads now. A report of the same organization, filters and day, on the other hand, is asked for again and again (the
page, its CSV, its charts, the next manager), and changes only when its data does. So:

- The key is the organization, cohort, program, first and last day, and the moment the report is judged at: the
  start of the current UTC day (inactivity exits are counted in whole days; a report asked for twice in a day gives
  the same numbers).
- Two counters say when the data changed (insights.models.ReportVersion): ``org:<id>`` for one organization's data,
  ``all`` for what every report reads. A cached report is used only while both are the ones it was computed at.
  Counters rather than deleting cache rows: a report computed from a snapshot taken before a write commits would
  otherwise be stored after that write's delete and served stale. Read the counters first, then compute: whatever
  commits after the read has bumped them.
- The counters are bumped in the writer's transaction, just before it commits (one sorted pass, so two writers
  cannot deadlock and the row locks are held only while committing): a rolled-back write invalidates nothing and a
  committed one is never missed. What bumps them is noted by mapper events (every row the unit of work writes,
  cascades included) and by the signals of the two Core updates that bypass the ORM (course completion, grading):

  - a learner's lesson progress, quiz attempts, enrollments, certificates, cohort memberships → every organization
    the learner is (or was) in a cohort of;
  - a cohort (name, courses, program, archiving) or an organization (its name) → that organization;
  - courses, modules, lessons, quizzes, programs, their course lists, occupations → ``all``;
  - an ORM-enabled UPDATE or DELETE of cohort members run as one statement (a learner leaving) → ``all``, since the
    rows are not known;
  - ``flask reports rebuild-learning-days`` (after bulk SQL) → ``all``.

Bulk SQL that bypasses the ORM must call ``bump_all()`` (the rebuild command does).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time

from sqlalchemy import bindparam, delete, event, or_, select, union
from sqlalchemy.orm import Session, object_session

from accounts.models import User
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
)
from courses.services import activity_recorded, enrolled, enrollment_completed, lesson_completed, quiz_graded
from credentials.models import Certificate
from credentials.services import certificate_issued
from insights.models import CachedReport, ReportVersion
from insights.workforce import Report, Row, workforce_report
from orgs.models import Cohort, CohortMember, Organization
from skills.models import Occupation

ALL = "all"


def org_scope(org_id: int) -> str:
    return f"org:{org_id}"


def judged_at(now: datetime) -> datetime:
    """The moment a cached report is judged at: the start of ``now``'s UTC day."""
    return datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)


def _key(org: Organization, cohort, program, start: date, end: date, moment: datetime) -> str:
    parts = [org.id, cohort.id if cohort else "", program.id if program else "", start, end, moment.isoformat()]
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _versions(org_id: int) -> tuple[int, int]:
    found = dict(
        db.session.execute(
            select(ReportVersion.scope, ReportVersion.version).where(ReportVersion.scope.in_([org_scope(org_id), ALL]))
        ).all()
    )
    return found.get(org_scope(org_id), 0), found.get(ALL, 0)


def cached_workforce_report(
    org: Organization,
    *,
    start: date,
    end: date,
    now: datetime,
    cohort: Cohort | None = None,
    program: Program | None = None,
) -> Report:
    """The workforce report judged at the start of ``now``'s UTC day, from the cache when its data has not changed
    since, else computed and stored.

    Two statements on a hit; the report's own on a miss, plus one upsert and one delete of this organization's
    outdated entries. Writes only the cache: the caller commits (a GET view does, so the next request hits).
    Raises ValueError like ``workforce_report`` for a reversed period.
    """
    moment = judged_at(now)
    key = _key(org, cohort, program, start, end, moment)
    org_version, all_version = _versions(org.id)
    payload = db.session.scalar(
        select(CachedReport.payload).where(
            CachedReport.key == key,
            CachedReport.org_version == org_version,
            CachedReport.all_version == all_version,
        )
    )
    if payload is not None:
        return from_payload(payload)
    report = workforce_report(org, start=start, end=end, now=moment, cohort=cohort, program=program)
    _store(org.id, key, org_version, all_version, to_payload(report), now)
    return report


def _upsert(model, values: dict, key_columns: list[str], update_values: dict):
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(model).values(**values)
    return statement.on_conflict_do_update(index_elements=key_columns, set_=update_values)


def _store(org_id: int, key: str, org_version: int, all_version: int, payload: dict, now: datetime) -> None:
    # entries built at older versions can never be served again: drop them with this write
    db.session.execute(
        delete(CachedReport).where(
            CachedReport.organization_id == org_id,
            CachedReport.key != key,
            or_(
                CachedReport.org_version != org_version,
                CachedReport.all_version != all_version,
                CachedReport.computed_at < judged_at(now),
            ),
        )
    )
    values = {
        "organization_id": org_id,
        "key": key,
        "org_version": org_version,
        "all_version": all_version,
        "computed_at": now,
        "payload": payload,
    }
    # two requests missing together both store: the later one wins, with the same numbers or newer ones
    db.session.execute(
        _upsert(CachedReport, values, ["key"], {k: v for k, v in values.items() if k != "key"}),
        execution_options={"synchronize_session": False},
    )


# ---- the report as JSON and back -----------------------------------------------------------------------------

_ROW_FIELDS = [name for name in Row.__dataclass_fields__]


def to_payload(report: Report) -> dict:
    return {
        "organization": report.organization,
        "cohort": report.cohort,
        "program": report.program,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "as_of": report.as_of.isoformat(),
        "rows": {kind: [[getattr(row, f) for f in _ROW_FIELDS] for row in rows] for kind, rows in report.rows.items()},
    }


def from_payload(payload: dict) -> Report:
    report = Report(
        organization=payload["organization"],
        cohort=payload["cohort"],
        program=payload["program"],
        start=date.fromisoformat(payload["start"]),
        end=date.fromisoformat(payload["end"]),
        as_of=datetime.fromisoformat(payload["as_of"]),
    )
    report.rows = {
        kind: [Row(**dict(zip(_ROW_FIELDS, values, strict=True))) for values in rows]
        for kind, rows in payload["rows"].items()
    }
    return report


# ---- invalidation ---------------------------------------------------------------------------------------------


def bump(connection, scopes) -> None:
    """Add one to each scope's counter (creating it at 1), in sorted order so two writers cannot deadlock."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for scope in sorted(set(scopes)):
        statement = insert(ReportVersion).values(scope=scope, version=1)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["scope"], set_={"version": ReportVersion.__table__.c.version + 1}
            )
        )


def bump_all(connection=None) -> None:
    """Every organization's cached reports are outdated (after bulk SQL). Flushes nothing; the caller commits."""
    bump(connection or db.session.connection(), [ALL])


def _learners_orgs_statements():
    """{(users given, enrollments given): the statement}, built once: every progress write of a learner runs one at
    commit (building it cost more than running it). Only the lists given are in it: an empty expanding IN rendered
    as ``IN (NULL) AND (1 != 1)``, a condition for nothing, re-rendered on every call."""
    member, cohort, enrollment = CohortMember.__table__, Cohort.__table__, Enrollment.__table__
    by_user = member.c.user_id.in_(bindparam("users", expanding=True))
    by_enrollment = member.c.user_id.in_(
        select(enrollment.c.user_id).where(enrollment.c.id.in_(bindparam("enrollments", expanding=True)))
    )
    orgs = select(cohort.c.organization_id).select_from(cohort.join(member, member.c.cohort_id == cohort.c.id))
    return {
        (True, False): orgs.where(by_user),
        (False, True): orgs.where(by_enrollment),
        (True, True): orgs.where(or_(by_user, by_enrollment)),
    }


_LEARNERS_ORGS = _learners_orgs_statements()


def _affected_orgs(connection, pending: dict) -> set[int]:
    """The organizations whose reports the noted writes change (one query)."""
    users = sorted(pending["users"] - {None})
    enrollments = sorted(pending["enrollments"] - {None})
    cohorts = sorted(pending["cohorts"] - {None})
    if not cohorts:
        if not users and not enrollments:
            return set(pending["orgs"])
        # a learner's own writes: the usual case
        found = connection.execute(
            _LEARNERS_ORGS[bool(users), bool(enrollments)], {"users": users, "enrollments": enrollments}
        ).scalars()
        return set(pending["orgs"]) | set(found)
    learners = []
    if users:
        learners.append(CohortMember.user_id.in_(users))
    if enrollments:
        learners.append(CohortMember.user_id.in_(select(Enrollment.user_id).where(Enrollment.id.in_(enrollments))))
    parts = []
    if learners:
        parts.append(
            select(Cohort.organization_id).join(CohortMember, CohortMember.cohort_id == Cohort.id).where(or_(*learners))
        )
    parts.append(select(Cohort.organization_id).where(Cohort.id.in_(cohorts)))
    return set(pending["orgs"]) | set(connection.execute(union(*parts)).scalars())


def _pending(session) -> dict:
    # kept on the session until it commits: counters are bumped once, at commit, in one sorted pass
    return session.info.setdefault(
        "report_cache", {"users": set(), "enrollments": set(), "orgs": set(), "cohorts": set(), "all": False}
    )


def _noted(target) -> dict:
    return _pending(object_session(target))


_CONTENT = (Course, Module, Lesson, Quiz, Program, ProgramCourse, Occupation)
_EVENTS = ("after_insert", "after_update", "after_delete")


def _content_written(_mapper, _connection, target) -> None:
    _noted(target)["all"] = True


def _step_written(_mapper, _connection, target) -> None:
    _noted(target)["enrollments"].add(target.enrollment_id)


def _user_row_written(_mapper, _connection, target) -> None:
    _noted(target)["users"].add(target.user_id)


def _member_written(_mapper, _connection, target) -> None:
    pending = _noted(target)
    pending["users"].add(target.user_id)
    pending["cohorts"].add(target.cohort_id)


def _cohort_written(_mapper, _connection, target) -> None:
    _noted(target)["orgs"].add(target.organization_id)


def _organization_written(_mapper, _connection, target) -> None:
    _noted(target)["orgs"].add(target.id)


for _event in _EVENTS:
    for _model in _CONTENT:
        event.listen(_model, _event, _content_written)
    for _model in (LessonProgress, QuizAttempt):
        event.listen(_model, _event, _step_written)
    for _model in (Enrollment, Certificate):
        event.listen(_model, _event, _user_row_written)
    event.listen(CohortMember, _event, _member_written)
    event.listen(Cohort, _event, _cohort_written)
event.listen(Organization, "after_update", _organization_written)
# a deleted account takes its cohort memberships with it in the database (ON DELETE CASCADE), unseen here
event.listen(User, "after_delete", _content_written)


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state) -> None:
    # one UPDATE/DELETE statement for many cohort members (leaving an organization): which rows is not known here
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ in (CohortMember, Cohort):
        _pending(state.session)["all"] = True


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: what it wrote stays noted, and the transaction around it bumps once, at its commit
    session.flush()  # commit would flush next: its writes' mapper events must be noted first
    pending = session.info.pop("report_cache", None)
    if not pending:
        return
    connection = session.connection()
    scopes = {ALL} if pending["all"] else set()
    scopes |= {org_scope(org_id) for org_id in _affected_orgs(connection, pending) - {None}}
    if scopes:
        bump(connection, scopes)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("report_cache", None)


@enrollment_completed.connect
def _on_completed(enrollment, **_):
    # completion is a conditional Core UPDATE: the ORM does not see it
    _pending(db.session())["users"].add(enrollment.user_id)


@certificate_issued.connect
def _on_issued(certificate, **_):
    # a new course certificate is a Core INSERT too (credentials.services.issue_for_enrollment)
    _pending(db.session())["users"].add(certificate.user_id)


@enrolled.connect
@lesson_completed.connect
@quiz_graded.connect
@activity_recorded.connect
def _on_step_recorded(enrollment, **_):
    # so are an enrollment and a lesson's completion (Core INSERTs), grading and the learner's last activity (Core
    # UPDATEs)
    _pending(db.session())["users"].add(enrollment.user_id)
