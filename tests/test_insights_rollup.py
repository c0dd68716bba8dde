"""The insights dashboard's per-day rollups equal a direct recomputation, after every kind of change.

Two oracles: the rollup tables against the same counts recomputed from enrollments and certificates
(insights.rollups.expected_rows), and the whole dashboard built from the rollups against the dashboard built from
the source rows (reports.build(direct=True)), for several periods, credential windows and moments.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text, update

from accounts.models import User
from core.database import utcnow
from core.extensions import db
from courses.models import Enrollment
from credentials.models import Certificate, RevocationReason
from insights import people, reports, rollups
from insights.models import PeopleDay, PeopleDirty
from tests.factories import complete_course, enroll, load_test_framework, make_course, make_user
from tests.test_insights import known_data  # noqa: F401  (the hand-built data set with known answers)

DAY = timedelta(days=1)
KINDS = (
    "enroll",
    "enroll",
    "complete",
    "complete",
    "uncomplete",
    "move",
    "activity",
    "activity",
    "revoke",
    "reinstate",
    "expiry",
    "delete",
)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _numbers(report: reports.Report) -> dict:
    return {"overall": (report.overall.activity(), report.overall.attainment()), **report.tables()}


def people_rows() -> tuple[Counter, Counter]:
    """(insights_people_days' nonzero rows, the same recomputed from every user's enrollments and certificates)."""
    p = PeopleDay
    stored = Counter(
        {
            (m, d.isoformat(), c, later, lo, hi): n
            for m, d, c, later, lo, hi, n in db.session.execute(
                select(p.measure, p.day, p.course_id, p.later, p.w_lo, p.w_hi, p.n).where(p.n != 0)
            )
        }
    )
    expected: Counter = Counter()
    for state in people._inputs(list(db.session.scalars(select(User.id)))).values():
        expected.update(people.rows_for(state))
    return stored, expected


def assert_rollups_exact(now: datetime, periods=None) -> None:
    """Tables equal their recomputation, and the dashboard from them equals the direct one, for each period."""
    db.session.commit()  # a session settles the people it changed before it commits
    stored, expected = rollups.stored_rows(), rollups.expected_rows()
    assert stored == expected
    assert db.session.scalar(select(func.count()).select_from(PeopleDirty)) == 0
    stored_people, expected_people = people_rows()
    assert stored_people == expected_people
    today = _midnight(now) + DAY
    periods = periods or [(today - 90 * DAY, today, 180), (today - 400 * DAY, today + 30 * DAY, 3), (today, today, 1)]
    for start, end, window in periods:
        fast = reports.build(start, end, window_days=window, now=now)
        direct = reports.build(start, end, window_days=window, now=now, direct=True)
        assert _numbers(fast) == _numbers(direct), (start, end, window)


def test_the_hand_built_data_set_gives_the_same_numbers_from_the_rollups(known_data):  # noqa: F811
    now = known_data
    today = _midnight(now) + DAY
    fast = reports.build(today - 31 * DAY, today, window_days=30, now=now)
    assert (fast.overall.enrolled, fast.overall.completed, fast.overall.median_days_to_complete) == (5, 3, 2.0)
    assert (fast.overall.certificates_issued, fast.overall.certificates_revoked) == (3, 1)
    assert _numbers(fast) == _numbers(reports.build(today - 31 * DAY, today, window_days=30, now=now, direct=True))
    assert_rollups_exact(
        now, [(today - d * DAY, today + e * DAY, w) for d in (1, 5, 11, 401) for e in (0, 3) for w in (1, 3, 30)]
    )


def test_a_period_inside_a_day_is_answered_from_the_source_rows(known_data):  # noqa: F811
    now = known_data
    # the view only asks for whole days; any other caller still gets the exact numbers
    odd = reports.build(now - 30 * DAY, now + DAY, window_days=30, now=now)
    assert (odd.overall.enrolled, odd.overall.completed) == (5, 3)
    assert reports._whole_days(_midnight(now), _midnight(now) + DAY)
    assert not reports._whole_days(now - 30 * DAY, now + DAY)


def test_every_kind_of_change_keeps_the_rollups_exact(ctx):
    from accounts.models import Role
    from courses.services import start_renewal
    from credentials import services as credentials

    load_test_framework()
    a = make_course("course-a", title="Course A")
    b = make_course("course-b", title="Course B", skills=("INF-01",), occupations=("47-2111.00",))
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    learner, other = make_user(email="l@example.org"), make_user(email="o@example.org")
    now = utcnow()
    assert_rollups_exact(now)

    enrollment = enroll(learner, a)  # enroll
    assert rollups.stored_rows()[0] == {(a.id, str(now.date()), False, 0): 1}
    assert_rollups_exact(now)
    enroll(learner, a)  # enrolling twice changes nothing
    assert sum(rollups.stored_rows()[0].values()) == 1

    enrollment.enrolled_at = now - 3 * DAY  # an enrollment moved in time (fixtures and imports do this)
    db.session.commit()
    assert_rollups_exact(now)

    complete_course(learner, a, now=now - DAY)  # complete (a conditional UPDATE) and certificate issued
    certificate = db.session.scalar(select(Certificate).where(Certificate.user_id == learner.id))
    assert rollups.stored_rows()[0] == {(a.id, str((now - 3 * DAY).date()), True, 20): 1}
    assert rollups.stored_rows()[1][(a.id, "issued", str((now - DAY).date()))] == 1
    assert_rollups_exact(now)

    certificate.expires_at = now + 10 * DAY  # expiring soon: counted from the rollup's whole days and from now
    db.session.commit()
    assert reports.build(_midnight(now), _midnight(now) + DAY, window_days=1, now=now).overall.expiring_60d == 1
    assert_rollups_exact(now)
    for hours in (1, 30, 24 * 59 + 23, 24 * 60 + 5):  # the boundary days at either end of the 60 days
        certificate.expires_at = now + timedelta(hours=hours)
        db.session.commit()
        assert_rollups_exact(now)

    credentials.revoke(admin, certificate, reason=RevocationReason.OTHER, note="test", now=now)  # revoked
    db.session.commit()
    assert rollups.stored_rows()[1].get((a.id, "revoked", str(now.date()))) == 1
    assert_rollups_exact(now)
    credentials.reinstate(admin, certificate, now=now)  # reinstated
    db.session.commit()
    assert rollups.stored_rows()[1].get((a.id, "revoked", str(now.date()))) is None
    assert_rollups_exact(now)

    certificate.expires_at = now + 3 * DAY  # inside the renewal window
    db.session.commit()
    start_renewal(enrollment, now=now)  # renewal: not completed again until the quizzes are passed
    db.session.commit()
    assert rollups.stored_rows()[0] == {(a.id, str((now - 3 * DAY).date()), False, 0): 1}
    assert_rollups_exact(now)

    enroll(other, b)
    db.session.execute(update(Certificate).values(revoked_at=now))  # a bulk revocation, as orgs/ does
    db.session.commit()
    assert_rollups_exact(now)

    db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": other.id})  # cascaded delete
    db.session.commit()
    assert all(key[0] != b.id for key in rollups.stored_rows()[0])
    db.session.delete(db.session.get(Enrollment, enrollment.id))  # an enrollment removed by the ORM
    db.session.commit()
    assert rollups.stored_rows()[0] == {}
    assert_rollups_exact(now)


def test_random_changes_keep_the_rollups_exact(ctx):
    """Seeded random enrollments, completions, certificates, revocations, expiries and deletions, with times that
    land on day boundaries, checked against the direct recomputation after every change."""
    from credentials.services import issue_for_enrollment

    rng = random.Random(20261207)
    load_test_framework()
    courses = [
        make_course("course-a", title="Course A"),
        make_course("course-b", title="Course B", skills=("INF-01",), occupations=("47-2111.00",)),
        make_course("course-c", title="Course C", skills=("INF-01", "AIL-01"), occupations=("47-2111.00",)),
    ]
    people = [make_user(email=f"r{i}@example.org") for i in range(12)]
    now = datetime(2026, 12, 7, 4, 30, 15, 123456, tzinfo=UTC)
    today = _midnight(now)

    def moment():
        # whole days, exact midnights and the microsecond either side, so day rounding is exercised
        base = today - rng.randint(-5, 120) * DAY
        return base + rng.choice(
            [
                timedelta(0),
                timedelta(microseconds=-1),
                timedelta(microseconds=1),
                timedelta(hours=rng.randint(0, 23), minutes=rng.randint(0, 59)),
            ]
        )

    periods = [
        (today - rng.randint(0, 130) * DAY, today + rng.randint(1, 10) * DAY, rng.choice([1, 2, 7, 30, 180, 3650]))
        for _ in range(4)
    ]
    for step in range(40):
        enrollments = list(db.session.scalars(select(Enrollment).order_by(Enrollment.id)))
        certificates = list(db.session.scalars(select(Certificate).order_by(Certificate.id)))
        kind = rng.choice(
            [
                "enroll",
                "enroll",
                "complete",
                "complete",
                "uncomplete",
                "move",
                "revoke",
                "reinstate",
                "expiry",
                "delete",
            ]
        )
        if kind == "enroll":
            person, course = rng.choice(people), rng.choice(courses)
            enrollment = enroll(person, course)
            enrollment.enrolled_at = moment()
        elif kind == "complete" and enrollments:
            e = rng.choice(enrollments)
            done = e.enrolled_at + timedelta(hours=rng.randint(0, 24 * 40), seconds=rng.choice([0, 1, 59]))
            # the conditional UPDATE of the completion rule, which the ORM does not see
            db.session.execute(update(Enrollment).where(Enrollment.id == e.id).values(completed_at=done))
            if rng.random() < 0.7:
                issue_for_enrollment(e, now=done, issuer="Test")
        elif kind == "uncomplete" and enrollments:
            rng.choice(enrollments).completed_at = None
        elif kind == "move" and enrollments:
            rng.choice(enrollments).enrolled_at = moment()
        elif kind == "activity" and enrollments:
            # around the start of "active in the last 30 days" (a moment inside a day), and anywhere
            since = now - 30 * DAY
            rng.choice(enrollments).last_activity_at = rng.choice(
                [
                    since + timedelta(microseconds=rng.choice([-1, 0, 1])),
                    since + timedelta(hours=rng.randint(-30, 30)),
                    moment(),
                    now,
                ]
            )
        elif kind == "revoke" and certificates:
            c = rng.choice(certificates)
            c.revoked_at, c.revocation_reason = moment(), RevocationReason.OTHER
        elif kind == "reinstate" and certificates:
            c = rng.choice(certificates)
            c.revoked_at = c.revocation_reason = None
        elif kind == "expiry" and certificates:
            c = rng.choice(certificates)
            c.expires_at = rng.choice([None, now + timedelta(hours=rng.randint(-30, 24 * 62)), c.issued_at + 400 * DAY])
            if c.expires_at is not None and c.expires_at <= c.issued_at:
                c.expires_at = c.issued_at + DAY
        elif kind == "delete" and enrollments:
            e = rng.choice(enrollments)
            db.session.execute(update(Certificate).where(Certificate.enrollment_id == e.id).values(enrollment_id=None))
            db.session.execute(delete(Enrollment).where(Enrollment.id == e.id))
        db.session.commit()
        assert_rollups_exact(now, [periods[step % len(periods)]])
    assert_rollups_exact(now, periods)
    assert db.session.scalar(select(Certificate.id).limit(1)) is not None  # the walk did issue certificates


def test_rebuild_refills_the_rollups(app, known_data):  # noqa: F811
    expected = rollups.expected_rows()
    expected_people = people_rows()[1]
    db.session.execute(text("DELETE FROM insights_enrollment_days"))
    db.session.execute(text("UPDATE insights_certificate_days SET n = n + 5"))
    db.session.execute(text("DELETE FROM insights_people_days WHERE measure = 'active'"))
    db.session.execute(text("DELETE FROM insights_people_states"))
    db.session.commit()
    assert rollups.stored_rows() != expected and people_rows()[0] != expected_people
    result = app.test_cli_runner().invoke(args=["insights", "rebuild-rollups"])
    assert result.exit_code == 0, result.output
    assert f"Rebuilt {len(expected[0])} enrollment day rows, {len(expected[1])} certificate day rows" in result.output
    db.session.rollback()
    assert rollups.stored_rows() == expected
    assert people_rows() == (expected_people, expected_people)


def test_the_dashboard_page_serves_the_direct_numbers(client, known_data):  # noqa: F811
    """Through the view (whole days, rollups and the split people queries): every CSV table equals the direct one."""
    import csv
    import io

    from accounts.models import Role
    from tests.factories import login

    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")
    now = utcnow()
    end = _midnight(now) + DAY
    start = end - 20 * DAY
    direct = reports.build(start, end, window_days=3, now=now, direct=True).tables()
    query = f"from={start:%Y-%m-%d}&to={end:%Y-%m-%d}&window=3"
    for table, rows in direct.items():
        response = client.get(f"/admin/insights?{query}&table={table}&format=csv")
        assert response.status_code == 200
        served = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert served == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows], table
    assert any(row["enrolled"] for row in direct["course"])  # the period does hold enrollments


def test_bulk_writes_and_concurrent_writers_keep_the_day_rollups_exact(ctx):
    """One statement rewriting many enrollments onto the same day rows, and (PostgreSQL) a second writer enrolling in
    the same course on the same day while the first has not committed: it does not wait for the first, since the
    triggers only append changes and each transaction folds its own just before it commits (migration 0030b)."""
    from sqlalchemy.orm import Session

    from courses.services import enroll as enroll_now
    from insights.models import certificate_day_changes, enrollment_day_changes

    load_test_framework()
    course = make_course("course-a", title="Course A")
    learners = [make_user(email=f"b{i}@example.org") for i in range(40)]
    now = utcnow()
    for learner in learners:
        enroll_now(learner, course, now=now)
    db.session.commit()
    day = _midnight(now) - 3 * DAY
    db.session.execute(
        update(Enrollment).values(enrolled_at=day + timedelta(hours=1), completed_at=day + timedelta(hours=30))
    )
    db.session.commit()
    assert rollups.stored_rows()[0] == {(course.id, str(day.date()), True, 12): 40}
    assert_rollups_exact(now)

    first, second = make_user(email="first@example.org"), make_user(email="second@example.org")
    other = Session(db.engine)  # another request, in its own transaction
    try:
        other.add(Enrollment(user_id=first.id, course_id=course.id, enrolled_at=now, last_activity_at=now))
        other.flush()  # its triggers have run; it has not committed
        if db.engine.dialect.name == "postgresql":
            # the day row (course, today, not completed) is shared with the other transaction's enrollment
            db.session.execute(text("SET LOCAL lock_timeout = '5s'"))
            enroll_now(second, course, now=now)
            db.session.commit()  # would time out if the other transaction held the day row
            assert rollups.stored_rows()[0][(course.id, str(now.date()), False, 0)] == 1
        other.commit()
    finally:
        other.close()
    if db.engine.dialect.name == "sqlite":  # one writer at a time: the second enrolls after the first commits
        enroll_now(second, course, now=now)
        db.session.commit()
    assert rollups.stored_rows()[0][(course.id, str(now.date()), False, 0)] == 2
    for changes in (enrollment_day_changes, certificate_day_changes):  # every change was folded in
        assert db.session.scalar(select(func.count()).select_from(changes)) == 0
    assert_rollups_exact(now)


def test_every_rollup_trigger_is_in_place_after_the_migrations(ctx):
    """A later migration that rebuilds enrollments or certificates (SQLite's batch mode copies the table) would drop
    the triggers silently, and the rollups would drift: the schema at head still has every one of them."""
    if db.engine.dialect.name == "postgresql":
        rows = db.session.execute(
            text(
                "SELECT tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE tgname LIKE 'insights%' AND NOT tgisinternal"
            )
        )
        events = ("write", "update")
    else:
        rows = db.session.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"))
        events = ("insert", "delete", "update")
    found = {tuple(row) for row in rows}
    expected = {
        (f"insights_{kind}_{event}", table)
        for table in ("enrollments", "certificates")
        for kind in (f"{table}_rollup", f"people_{table}")
        for event in events
    }
    assert expected <= found, expected - found
