"""Cached workforce reports (insights/report_cache.py): the same numbers as the straightforward report
(tests/workforce_reference.py), served from the cache while nothing changed, recomputed after every kind of change
that moves a number (learning, grading, completion, revocation, leaving, cohorts, course content), untouched by
changes elsewhere or rolled back, and a constant two statements on a hit. Both databases.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from core.extensions import db
from courses.catalog import apply_spec
from courses.models import CourseStatus, Enrollment, Lesson, LessonProgress
from courses.services import complete_lesson, start_attempt, submit_attempt
from credentials.models import Certificate, RevocationReason
from credentials.services import revoke
from insights.models import CachedReport, ReportVersion
from insights.report_cache import cached_workforce_report, judged_at
from orgs.models import CohortMember
from orgs.services import leave
from tests.factories import course_spec, join_cohort, login, make_cohort, make_org, make_user
from tests.test_workforce_fast import NOW, comparable, random_world
from tests.workforce_reference import reference_report

ARGS = {"start": date(2025, 10, 1), "end": date(2026, 8, 31), "now": NOW}


def versions() -> dict[str, int]:
    return dict(db.session.execute(select(ReportVersion.scope, ReportVersion.version)).all())


def check(world, *, expect_hit: bool, count_queries, app, unchanged: dict | None = None, **kwargs):
    """The cached report equals the reference; ``expect_hit``: it came from the cache (a few statements).

    ``unchanged``: a dict shared by checks with nothing written between them: the first check of each filter keeps
    the reference report there, the next ones compare with it instead of computing the same numbers again."""
    args = {**ARGS, **kwargs}
    org_id = world["org"].id
    found = {}

    def run():
        with app.app_context():
            from orgs.models import Organization

            found["report"] = cached_workforce_report(db.session.get(Organization, org_id), **args)
            db.session.commit()

    statements = count_queries(run)
    org = world["org"]
    db.session.expire_all()
    filters = tuple(sorted((name, getattr(value, "id", value)) for name, value in args.items()))
    expected = (unchanged or {}).get(filters)
    if expected is None:
        expected = comparable(reference_report(org, **args))
        if unchanged is not None:
            unchanged[filters] = expected
    assert comparable(found["report"]) == expected
    if expect_hit:
        # the organization, the two counters, the cached payload (PostgreSQL may add one when it opens a new pooled
        # connection); a miss runs the report's own statements and stores it
        assert statements <= 4, statements
    else:
        assert statements > 6
    return found["report"]


def test_cached_report_equals_the_reference_and_follows_every_change(app, ctx, count_queries):
    world = random_world(random.Random(11))
    org = world["org"]
    c1 = world["courses"][1]
    program = world["programs"][0]
    cohort = world["cohorts"][0]
    unchanged = {}  # nothing is written until the first lesson below
    for kwargs in ({}, {"program": program}, {"cohort": cohort}):
        check(world, expect_hit=False, count_queries=count_queries, app=app, unchanged=unchanged, **kwargs)
        check(world, expect_hit=True, count_queries=count_queries, app=app, unchanged=unchanged, **kwargs)
    first = check(world, expect_hit=True, count_queries=count_queries, app=app, unchanged=unchanged)

    # a member completes a lesson and passes a quiz through the services (grading is a Core UPDATE)
    learner = next(
        u
        for u in world["learners"]
        if db.session.scalar(
            select(CohortMember.id).where(CohortMember.user_id == u.id, CohortMember.left_at.is_(None))
        )
    )
    enrollment = db.session.scalar(
        select(Enrollment).where(Enrollment.user_id == learner.id, Enrollment.course_id == c1.id)
    )
    if enrollment is None:
        enrollment = Enrollment(user_id=learner.id, course_id=c1.id, enrolled_at=NOW, last_activity_at=NOW)
        db.session.add(enrollment)
        db.session.commit()
    module = c1.modules[-1]
    for row in db.session.scalars(select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id)):
        db.session.delete(row)
    db.session.commit()
    moment = datetime(2026, 8, 30, 12, 0, tzinfo=UTC)
    before = versions()
    complete_lesson(enrollment, module.lessons[0], now=moment)
    db.session.commit()
    assert versions()[f"org:{org.id}"] > before[f"org:{org.id}"]
    unchanged = {}
    second = check(world, expect_hit=False, count_queries=count_queries, app=app, unchanged=unchanged)
    assert second.total.stated_minutes != first.total.stated_minutes or second.total != first.total
    check(world, expect_hit=True, count_queries=count_queries, app=app, unchanged=unchanged)
    attempt = start_attempt(enrollment, module.quiz, now=moment + timedelta(minutes=1), rng=random.Random(1))
    right = {q.id: [next(c.id for c in q.choices if c.correct)] for q in module.quiz.questions}
    submit_attempt(enrollment, attempt, module.quiz, right, now=moment + timedelta(minutes=3))
    db.session.commit()
    check(world, expect_hit=False, count_queries=count_queries, app=app)

    # a certificate revoked
    certificate = db.session.scalar(
        select(Certificate)
        .join(CohortMember, CohortMember.user_id == Certificate.user_id)
        .where(Certificate.revoked_at.is_(None), Certificate.course_id.is_not(None), CohortMember.left_at.is_(None))
        .limit(1)
    )
    admin = make_user(email="admin-cache@example.org")
    revoke(admin, certificate, reason=RevocationReason.ISSUED_IN_ERROR, note="Test.", now=NOW)
    db.session.commit()
    unchanged = {}
    check(world, expect_hit=False, count_queries=count_queries, app=app, unchanged=unchanged)

    # a learner leaves the organization (one UPDATE statement for all their cohorts)
    served = check(world, expect_hit=True, count_queries=count_queries, app=app, unchanged=unchanged)
    served = served.total.participants_served
    leave(learner, org, now=NOW)
    db.session.commit()
    assert check(world, expect_hit=False, count_queries=count_queries, app=app).total.participants_served < served

    # a cohort renamed: its row's name
    cohort.name = "Renamed cohort"
    db.session.commit()
    report = check(world, expect_hit=False, count_queries=count_queries, app=app)
    assert "Renamed cohort" in {row.name for row in report.rows["cohort"]}

    # course content: a lesson's stated length re-imported changes every organization's hours
    spec = course_spec("c1", title="C1", occupations=("43-4051.00", "47-2111.00"), modules=3)
    spec.modules[0].lessons[0].minutes = 17
    apply_spec(spec, now=NOW, status=CourseStatus.PUBLISHED)
    db.session.commit()
    unchanged = {}
    check(world, expect_hit=False, count_queries=count_queries, app=app, unchanged=unchanged)

    # learning elsewhere (a learner of another organization only) and a rolled-back write change nothing here
    check(world, expect_hit=True, count_queries=count_queries, app=app, unchanged=unchanged)
    stranger = make_user(email="stranger@example.org")
    join_cohort(make_cohort(make_org(make_user(), name="Third Board"), [c1], name="Theirs"), stranger, now=NOW)
    theirs = Enrollment(user_id=stranger.id, course_id=c1.id, enrolled_at=NOW, last_activity_at=NOW)
    db.session.add(theirs)
    db.session.commit()
    complete_lesson(theirs, c1.modules[0].lessons[0], now=NOW)
    db.session.commit()
    enrollment = db.session.get(Enrollment, enrollment.id)
    unchanged = versions()
    enrollment.last_activity_at = moment + timedelta(hours=1)
    db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=module.lessons[-1].id, completed_at=moment))
    db.session.flush()
    db.session.rollback()
    assert versions() == unchanged
    check(world, expect_hit=True, count_queries=count_queries, app=app)


def test_the_cache_judges_a_report_at_the_start_of_the_day(ctx):
    world = random_world(random.Random(3))
    later = NOW + timedelta(hours=15, minutes=7)
    assert judged_at(later) == NOW
    report = cached_workforce_report(world["org"], start=date(2026, 5, 1), end=date(2026, 12, 31), now=later)
    db.session.commit()
    assert report.as_of == NOW
    args = {"start": date(2026, 5, 1), "end": date(2026, 12, 31), "now": NOW}
    assert comparable(report) == comparable(reference_report(world["org"], **args))
    # one entry per organization, filters and day; a new day is a new entry and the old one goes with the write
    cached_workforce_report(world["org"], start=date(2026, 5, 1), end=date(2026, 12, 31), now=later)
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(CachedReport)) == 1
    cached_workforce_report(world["org"], start=date(2026, 5, 1), end=date(2026, 12, 31), now=later + timedelta(days=1))
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(CachedReport)) == 1


def test_the_report_page_is_served_from_the_cache_until_a_member_learns(app, client, count_queries):
    with app.app_context():
        world = random_world(random.Random(21))
        owner_email = world["org"].memberships[0].user.email
        slug = world["org"].slug
        learner_id = next(
            m.user_id
            for m in db.session.scalars(select(CohortMember).where(CohortMember.left_at.is_(None)))
            if m.cohort.organization_id == world["org"].id
        )
    login(client, owner_email)
    url = f"/organizations/{slug}/reports/workforce?from=2025-10-01&to=2026-08-31"
    cold = count_queries(lambda: client.get(url + "&format=csv"))
    warm = count_queries(lambda: client.get(url + "&format=csv"))
    assert warm < cold
    first_html = client.get(url).get_data(as_text=True)  # the page reads the same cached report as its CSV
    assert client.get(url + "&format=csv").get_data(as_text=True) == client.get(url + "&format=csv").get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(CachedReport)) == 1
        enrollment = db.session.scalar(
            select(Enrollment).where(Enrollment.user_id == learner_id).order_by(Enrollment.id).limit(1)
        )
        course = enrollment.course
        done = set(
            db.session.scalars(select(LessonProgress.lesson_id).where(LessonProgress.enrollment_id == enrollment.id))
        )
        todo = next((lesson for m in course.modules for lesson in m.lessons if lesson.id not in done), None)
        if todo is None:
            row = db.session.scalar(select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id))
            todo = db.session.get(Lesson, row.lesson_id)  # progress rows carry the id, not the lesson
            db.session.delete(row)
            db.session.commit()
        complete_lesson(enrollment, todo, now=datetime(2026, 8, 31, 9, 0, tzinfo=UTC))
        db.session.commit()
    assert count_queries(lambda: client.get(url + "&format=csv")) > warm
    assert client.get(url).get_data(as_text=True) != first_html
