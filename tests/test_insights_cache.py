"""The insights dashboard's per-process cache (insights/dashboard_cache.py) serves exactly the direct numbers.

An entry is served only while no write changed the data (the ``insights`` counter, bumped by ``people.settle`` when
triggers marked a user) and only up to the moment time alone would change a number (its horizon). The oracle is
``reports.build(direct=True)`` at the same moment. A hit is recognised by identity: the same Report object as the
entry stored before.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from courses.models import Enrollment
from credentials.models import Certificate, RevocationReason
from insights import dashboard_cache, reports
from insights.models import PeopleDirty, ReportVersion
from tests.factories import complete_course, enroll, load_test_framework, make_course, make_user, sign_in
from tests.test_insights import known_data  # noqa: F401  (the hand-built data set with known answers)

DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def _midnight(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _numbers(report) -> dict:
    return {"overall": (report.overall.activity(), report.overall.attainment()), **report.tables()}


def _counter() -> int:
    return db.session.scalar(select(ReportVersion.version).where(ReportVersion.scope == "insights")) or 0


def _rows() -> tuple:
    """What the dashboard's numbers are computed from, in one cheap statement: the enrollments' and certificates'
    rows (count, sum of ids, the latest completion, activity and revocation) and the report counter."""
    enrollments = select(
        func.count(),
        func.coalesce(func.sum(Enrollment.id), 0),
        func.max(Enrollment.completed_at),
        func.max(Enrollment.last_activity_at),
    ).select_from(Enrollment)
    certificates = select(
        func.count(), func.coalesce(func.sum(Certificate.id), 0), func.max(Certificate.revoked_at)
    ).select_from(Certificate)
    return (*db.session.execute(enrollments).one(), *db.session.execute(certificates).one(), _counter())


class Dashboard:
    """Asks the cache as the view does (one transaction per request) and compares with the oracle each time."""

    def __init__(self) -> None:
        self.last: dict = {}
        self.oracle: dict = {}  # (start, end, window) -> (now, the direct numbers) of the last check
        self.hits = self.misses = 0

    def check(self, start, end, window, now, *, again: bool = False) -> bool:
        """``again``: the same question as the last check of these arguments, with no write in between, so the
        oracle's numbers are those computed then (the direct build reads the same rows at the same moment): the
        rows the numbers come from are checked unchanged (_rows), so an ask that wrote them still fails."""
        served = dashboard_cache.report(start, end, window_days=window, now=now)
        if again:
            asked, rows, expected = self.oracle[(start, end, window)]
            assert asked == now
            assert _rows() == rows, "an ask changed the rows the numbers come from"
        else:
            expected = _numbers(reports.build(start, end, window_days=window, now=now, direct=True))
            self.oracle[(start, end, window)] = (now, _rows(), expected)
        db.session.rollback()  # a GET: whatever it settled is not kept
        assert _numbers(served) == expected, (start, end, window, now)
        hit = self.last.get((start, end, window)) is served
        self.last[(start, end, window)] = served
        self.hits += hit
        self.misses += not hit
        return hit


def test_time_alone_ends_an_entry_exactly_when_a_number_would_change(ctx):
    load_test_framework()
    course = make_course("course-a", title="Course A")
    now = utcnow()
    start, end = _midnight(now) - 90 * DAY, _midnight(now) + DAY
    learner, other, third = (make_user(email=f"{n}@example.org") for n in ("l", "o", "t"))
    enrollment = enroll(learner, course)
    enrollment.last_activity_at = now - 30 * DAY + timedelta(hours=1)  # leaves the 30 days at now + 1 h
    complete_course(other, course, now=now - DAY)
    complete_course(third, course, now=now - DAY)
    soon, later = (
        db.session.scalar(select(Certificate).where(Certificate.user_id == person.id)) for person in (other, third)
    )
    soon.expires_at = now + timedelta(hours=2)  # expiring now, expired at now + 2 h
    later.expires_at = now + 60 * DAY + timedelta(hours=3)  # not yet within 60 days; it is from now + 3 h
    for person in (other, third):  # their activity long ago: only the first learner is near the 30 days' edge
        db.session.execute(
            update(Enrollment).where(Enrollment.user_id == person.id).values(last_activity_at=now - 90 * DAY)
        )
    db.session.commit()
    assert dashboard_cache.horizon(now) == now + timedelta(hours=1) + US

    dashboard = Dashboard()
    seen = []
    for moment, hit in (
        (now, False),
        (now + timedelta(minutes=59), True),
        (now + timedelta(hours=1), True),  # the last moment the first learner counts as active
        (now + timedelta(hours=1) + US, False),
        (now + timedelta(hours=2) - US, True),
        (now + timedelta(hours=2), False),  # the first certificate has expired
        (now + timedelta(hours=3) - US, True),
        (now + timedelta(hours=3), False),  # the second one expires within 60 days
        (now + timedelta(hours=5), True),
    ):
        assert dashboard.check(start, end, 180, moment) is hit, moment
        overall = reports.build(start, end, window_days=180, now=moment).overall
        seen.append((overall.people["active"], overall.expiring_60d))
    # the numbers did move with time alone, so a cache that ignored time would have failed above
    assert seen[2] == (1, 1) and seen[3] == (0, 1) and seen[5] == (0, 0) and seen[7] == (0, 1)
    # asked for a moment before the entry was computed (now + 3 h): computed again (never served backwards)
    assert dashboard.check(start, end, 180, now + timedelta(hours=2, minutes=30)) is False


def test_random_changes_and_moments_serve_the_direct_numbers(ctx):
    """Seeded random writes through every path (services, the ORM, bulk SQL) and moments moving forward across the
    30-day and 60-day edges; after each, the cache equals the oracle for several periods and windows."""
    from credentials.services import issue_for_enrollment

    rng = random.Random(20261207)
    load_test_framework()
    courses = [
        make_course("course-a", title="Course A"),
        make_course("course-b", title="Course B", skills=("INF-01",), occupations=("47-2111.00",)),
        make_course("course-c", title="Course C", skills=("INF-01", "AIL-01"), occupations=("47-2111.00",)),
    ]
    learners = [make_user(email=f"r{i}@example.org") for i in range(10)]
    base = utcnow()
    now = base
    today = _midnight(now)
    periods = [(today - 90 * DAY, today + DAY, 180), (today - 400 * DAY, today + DAY, 3), (today, today + DAY, 30)]
    dashboard = Dashboard()

    def near(edge):
        return edge + rng.choice([-US, timedelta(0), US, timedelta(minutes=rng.randint(-90, 90))])

    for _step in range(45):
        enrollments = list(db.session.scalars(select(Enrollment).order_by(Enrollment.id)))
        certificates = list(db.session.scalars(select(Certificate).order_by(Certificate.id)))
        kind = rng.choice(
            ["enroll", "complete", "lesson", "activity", "revoke", "reinstate", "expiry", "move", "delete", "wait"]
        )
        if kind == "enroll":
            enroll(rng.choice(learners), rng.choice(courses)).enrolled_at = today - rng.randint(0, 120) * DAY
        elif kind == "complete" and enrollments:
            e = rng.choice(enrollments)
            done = e.enrolled_at + timedelta(hours=rng.randint(0, 24 * 40))
            db.session.execute(update(Enrollment).where(Enrollment.id == e.id).values(completed_at=done))
            if rng.random() < 0.8:
                issue_for_enrollment(e, now=done, issuer="Test")
        elif kind == "lesson" and enrollments:
            # an ordinary lesson completion: activity moves forward to now (marks nothing when it was recent)
            rng.choice(enrollments).last_activity_at = utcnow()
        elif kind == "activity" and enrollments:
            rng.choice(enrollments).last_activity_at = near(now - 30 * DAY + timedelta(hours=rng.randint(0, 30)))
        elif kind == "revoke" and certificates:
            c = rng.choice(certificates)
            c.revoked_at, c.revocation_reason = now - DAY, RevocationReason.OTHER
        elif kind == "reinstate" and certificates:
            c = rng.choice(certificates)
            c.revoked_at = c.revocation_reason = None
        elif kind == "expiry" and certificates:
            rng.choice(certificates).expires_at = rng.choice(
                [None, near(now + timedelta(hours=rng.randint(0, 30))), near(now + 60 * DAY + timedelta(hours=2))]
            )
        elif kind == "move" and enrollments:
            rng.choice(enrollments).enrolled_at = today - rng.randint(0, 120) * DAY
        elif kind == "delete" and enrollments:
            e = rng.choice(enrollments)
            db.session.execute(update(Certificate).where(Certificate.enrollment_id == e.id).values(enrollment_id=None))
            db.session.execute(delete(Enrollment).where(Enrollment.id == e.id))
        elif kind == "wait":
            # time alone: to just before or at the next moment a number could change (within the day)
            upcoming = dashboard_cache.horizon(now)
            if upcoming is not None and upcoming < base + 20 * 3600 * timedelta(seconds=1):
                now = rng.choice([upcoming - US, upcoming])
        db.session.commit()
        for start, end, window in periods:
            dashboard.check(start, end, window, now)
            # asked again with nothing changed: served from the entry (the oracle's numbers are those just computed)
            assert dashboard.check(start, end, window, now, again=True)
    assert dashboard.hits >= 60 and dashboard.misses >= 40, (dashboard.hits, dashboard.misses)


def test_which_writes_mark_and_bump(ctx):
    """Recent activity moving forward (a lesson completion) marks no one and leaves the counter alone; every write
    that can change a number marks the user and, once settled at commit, bumps the counter."""
    from accounts.models import User

    load_test_framework()
    course = make_course("course-a", title="Course A")
    learner = make_user(email="l@example.org")
    enrollment = enroll(learner, course)
    complete_course(learner, course, now=utcnow())
    certificate = db.session.scalar(select(Certificate))
    now = utcnow()

    def marked_and_bumped(change) -> tuple[bool, bool]:
        before = _counter()
        change()
        db.session.flush()
        marked = db.session.scalar(select(func.count()).select_from(PeopleDirty)) > 0
        db.session.commit()
        return marked, _counter() > before

    def at(moment):
        def change():
            db.session.get(Enrollment, enrollment.id).last_activity_at = moment

        return change

    assert marked_and_bumped(at(now - timedelta(hours=1))) == (True, True)  # moved back
    assert marked_and_bumped(at(now - 40 * DAY)) == (True, True)  # a new day
    assert marked_and_bumped(at(now - 40 * DAY + timedelta(minutes=1))) == (True, True)  # from 40 days ago
    assert marked_and_bumped(at(now)) == (True, True)
    assert marked_and_bumped(at(now + US)) == (False, False)  # forward within the day, from a recent moment

    def revoke():
        certificate.revoked_at, certificate.revocation_reason = now, RevocationReason.OTHER

    def expire():
        certificate.expires_at = now + 5 * DAY

    def reinstate():
        certificate.revoked_at = certificate.revocation_reason = None

    assert marked_and_bumped(revoke) == (True, True)
    assert marked_and_bumped(reinstate) == (True, True)
    assert marked_and_bumped(expire) == (True, True)
    assert marked_and_bumped(lambda: setattr(db.session.get(User, learner.id), "name", "Renamed")) == (False, False)
    assert db.session.get(Enrollment, enrollment.id).completed_at is not None


def test_the_dashboard_is_served_from_the_cache_until_a_write_changes_it(client, known_data, count_queries):  # noqa: F811
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    course = "/admin/insights?table=course&format=csv"

    def enrolled() -> dict:
        rows = csv.DictReader(io.StringIO(client.get(course).get_data(as_text=True)))
        return {row["id"]: int(row["enrolled"]) for row in rows}

    first = count_queries(lambda: client.get("/admin/insights"))
    hit = count_queries(lambda: client.get("/admin/insights"))
    miss = first - 3  # later misses read the catalog, its tags and the quiz list from the content cache
    chart = count_queries(lambda: client.get("/admin/insights/charts/course.svg"))
    # a hit: the signed-in user (with the content version) and the counters; a miss reads every part it must
    # compute, with their horizons, in one more statement
    assert hit == 2 and miss == hit + 1 and chart <= hit  # the charts ask for the same report
    assert enrolled()["course-a"] == 3
    # the body is made once per language: each language still gets its own
    english, spanish = (client.get(f"/admin/insights?lang={lang}").get_data(as_text=True) for lang in ("en", "es"))
    assert "By course" in english and "Por curso" not in english
    assert "Por curso" in spanish and "Inscripciones iniciadas" in spanish and "By course" not in spanish

    # a lesson completion today by someone active today: no number moves, the entry stays
    busy = db.session.scalar(select(Enrollment).where(Enrollment.completed_at.is_(None)).limit(1))
    busy.last_activity_at = utcnow()
    db.session.commit()
    assert count_queries(lambda: client.get("/admin/insights")) == hit

    from courses.models import Course

    a = db.session.scalar(select(Course).where(Course.slug == "course-a"))
    enroll(make_user(email="new@example.org"), a)
    # the enrollment's commit bumped its counters: computed again, but for the parts it did not change (on
    # PostgreSQL the certificates; test_a_write_recomputes_only_the_parts_it_changes)
    assert hit < count_queries(lambda: client.get("/admin/insights")) <= miss
    assert enrolled()["course-a"] == 4

    a.title = "Course A, renamed"  # content: a new content version
    db.session.commit()
    assert "Course A, renamed" in client.get("/admin/insights").get_data(as_text=True)


@pytest.mark.nodb
def test_a_group_median_over_its_courses_equals_the_median_of_their_durations_merged():
    """Groups of courses find the lower middle across their courses' durations without merging them; the oracle
    shares this code, so it is checked here against merging, on random durations (and empty and one-value parts)."""
    from collections import Counter

    rng = random.Random(7)
    for _ in range(300):
        parts = []
        for _course in range(rng.randint(0, 6)):
            course = reports.Group("c", "C")
            for _value in range(rng.choice([0, 1, 2, rng.randint(1, 40)])):
                course.durations[rng.randint(0, rng.choice([3, 50, 6000]))] += rng.randint(1, 5)
            parts.append(course)
        merged = reports.Group("m", "Merged", durations=sum((p.durations for p in parts), Counter()))
        group = reports.Group("g", "Group", parts=parts)
        assert group.median_days_to_complete == merged.median_days_to_complete, [dict(p.durations) for p in parts]
        assert all(
            p.median_days_to_complete == reports.Group("x", "X", durations=p.durations).median_days_to_complete
            for p in parts
        )


def test_a_write_recomputes_only_the_parts_it_changes(app, ctx):
    """Each part of the report is kept until a write changes what it reads: a learner's first activity of the day
    recomputes only "active in the last 30 days", a revocation only the certificates (and active: the revoked
    learner was settled), an enrollment everything but the certificates; a content change everything. After
    each, the served numbers equal the oracle's. On SQLite the day rollups change in place with no count of what
    changed, so there every settled write recomputes the enrollment and certificate parts too."""
    load_test_framework()
    course = make_course("course-a", title="Course A", skills=("INF-01",))
    other = make_course("course-b", title="Course B")
    now = utcnow()
    start, end = _midnight(now) - 90 * DAY, _midnight(now) + DAY
    learners = [make_user(email=f"p{i}@example.org") for i in range(3)]
    for learner in learners:
        enroll(learner, course)
    complete_course(learners[0], course, now=now - 2 * DAY)
    db.session.execute(update(Enrollment).values(last_activity_at=now - 3 * DAY))
    db.session.commit()
    sqlite = db.engine.dialect.name == "sqlite"
    stored: dict = {}

    def recomputed() -> set[str]:
        served = dashboard_cache.report(start, end, window_days=180, now=now)
        direct = reports.build(start, end, window_days=180, now=now, direct=True)
        db.session.rollback()
        assert _numbers(served) == _numbers(direct)
        parts = app.extensions["insights_dashboard_parts"]
        # the parts themselves (kept alive here, so a new one can never reuse an old one's identity)
        now_stored = {name: dict(store.entries) for name, store in parts.items()}

        def same(old: dict | None, new: dict) -> bool:
            return old is not None and old.keys() == new.keys() and all(old[k][0] is new[k][0] for k in new)

        changed = {name for name, entries in now_stored.items() if not same(stored.get(name), entries)}
        stored.clear()
        stored.update(now_stored)
        return changed

    assert recomputed() == {"started", "certificates", "period", "active"}
    assert recomputed() == set()  # nothing written

    def expect(parts: set[str]) -> set[str]:
        return parts | {"started", "certificates"} if sqlite else parts

    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == learners[1].id))
    enrollment.last_activity_at = now - timedelta(minutes=5)  # first activity of the day
    db.session.commit()
    assert recomputed() == expect({"active"})
    enrollment.last_activity_at = now - timedelta(minutes=1)  # again the same day: nothing
    db.session.commit()
    assert recomputed() == set()

    certificate = db.session.scalar(select(Certificate))
    certificate.revoked_at, certificate.revocation_reason = now - timedelta(minutes=2), RevocationReason.OTHER
    db.session.commit()
    assert recomputed() == expect({"certificates", "active"})

    enroll(learners[2], other).enrolled_at = now - timedelta(minutes=3)
    db.session.commit()
    assert recomputed() == expect({"started", "period", "active"})

    other.title = "Course B, renamed"  # content: everything
    db.session.commit()
    assert recomputed() == {"started", "certificates", "period", "active"}
    assert dashboard_cache.report(start, end, window_days=180, now=now).courses[1].name == "Course B, renamed"


def test_a_chart_is_drawn_again_only_when_its_numbers_change(client, known_data):  # noqa: F811
    """pygal's SVG carries a random id per drawing, so the same bytes mean the same drawing."""
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    chart = "/admin/insights/charts/course.svg"
    first = client.get(chart).get_data()
    # a first activity of the day: active people change, the course chart's numbers (enrolled, completed,
    # certificates issued) do not
    busy = db.session.scalar(select(Enrollment).order_by(Enrollment.id).limit(1))
    busy.last_activity_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert client.get(chart).get_data() == first
    assert client.get(chart + "?lang=es").get_data() != first  # its own language

    from courses.models import Course

    enroll(make_user(email="another@example.org"), db.session.scalar(select(Course).where(Course.slug == "course-a")))
    again = client.get(chart).get_data()
    assert again != first and b"<svg" in again
    rows = csv.DictReader(io.StringIO(client.get("/admin/insights?table=course&format=csv").get_data(as_text=True)))
    assert {row["id"]: int(row["enrolled"]) for row in rows}["course-a"] == 4


def test_a_write_outside_any_session_is_counted_at_once_and_never_kept(ctx):
    """SQL outside a session (a bulk fix-up) marks users and, on PostgreSQL, appends day changes that no commit
    folds. The request's one read of the counters also says whether any are left: then the report is computed
    after folding and settling them in the request's own transaction (rolled back), and nothing is served from
    or kept in the cache until a writer's commit settles them for good."""
    load_test_framework()
    course = make_course("course-a", title="Course A")
    other = make_course("course-b", title="Course B")
    now = utcnow()
    start, end = _midnight(now) - 90 * DAY, _midnight(now) + DAY
    learners = [make_user(email=f"o{i}@example.org") for i in range(3)]
    for learner in learners[:2]:
        enroll(learner, course)
    dashboard = Dashboard()
    assert dashboard.check(start, end, 180, now) is False
    assert dashboard.check(start, end, 180, now) is True

    moved = db.session.scalar(select(Enrollment.id).where(Enrollment.user_id == learners[0].id))
    with db.engine.begin() as connection:  # not through the session: nothing settles or bumps a counter
        connection.execute(update(Enrollment).where(Enrollment.id == moved).values(enrolled_at=now - 200 * DAY))
    assert db.session.scalar(select(func.count()).select_from(PeopleDirty)) == 1
    served = dashboard_cache.report(start, end, window_days=180, now=now)
    db.session.rollback()
    assert served.overall.enrolled == 1  # the moved enrollment left the period at once
    for _ in range(2):  # still unsettled after the GET rolled back: computed each time, never kept
        assert dashboard.check(start, end, 180, now) is False

    enroll(learners[2], other)  # a writer's commit settles every marked user (and folds every change)
    assert db.session.scalar(select(func.count()).select_from(PeopleDirty)) == 0
    assert dashboard.check(start, end, 180, now) is False
    assert dashboard.check(start, end, 180, now) is True
    assert dashboard_cache.report(start, end, window_days=180, now=now).overall.enrolled == 2
