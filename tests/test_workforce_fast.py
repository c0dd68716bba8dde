"""The fast workforce report (the learning_days rollup, learner rows shared between breakdowns) gives exactly the
numbers of the straightforward one (tests/workforce_reference.py: every lesson and attempt, every breakdown its own
two-level aggregate) on random data, for every breakdown, period, cohort and program; and the rollup stays equal to
a rebuild from the raw rows whatever happens to them (services, ORM writes, lesson lengths re-imported, attempts
and enrollments deleted). Both databases.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from accounts.models import Role
from core.extensions import db
from courses.catalog import apply_spec
from courses.models import (
    CourseStatus,
    Enrollment,
    LessonProgress,
    ProgramEnrollment,
    QuizAttempt,
)
from courses.programs import ProgramSpec, apply_program
from courses.services import active_seconds, complete_lesson, start_attempt, submit_attempt
from credentials.models import Certificate, RevocationReason
from credentials.services import issue_for_enrollment, revoke
from insights import learning_days
from insights.models import LearningDay
from insights.workforce import BREAKDOWNS, workforce_report
from tests.factories import (
    FRAMEWORK_YAML,
    course_spec,
    join_cohort,
    load_test_framework,
    make_cohort,
    make_course,
    make_org,
    make_user,
)
from tests.workforce_reference import reference_report

NOW = datetime(2026, 9, 1, tzinfo=UTC)
EXTRA_OCCUPATION = '  - {code: "15-1211.00", title: Computer Systems Analysts, group: ai-adoption}\n'


def rollup() -> list[tuple]:
    rows = db.session.execute(
        select(
            LearningDay.enrollment_id,
            LearningDay.day,
            LearningDay.lesson_minutes,
            LearningDay.active_seconds,
            LearningDay.first_passes,
        ).order_by(LearningDay.enrollment_id, LearningDay.day)
    )
    return [tuple(r) for r in rows]


def assert_rollup_matches_a_rebuild():
    kept = rollup()
    learning_days.rebuild()
    assert kept == rollup()
    assert kept, "the random data produced no learning at all"


def comparable(report) -> dict:
    out = {}
    for kind in BREAKDOWNS:
        for row in report.rows[kind]:
            data = asdict(row)
            # sums of fractional quiz minutes may be added in another order: equal to the last bit is not promised
            data["stated_minutes"] = pytest.approx(data["stated_minutes"], abs=1e-6)
            data["stated_hours"] = row.stated_hours
            data["measured_hours"] = row.measured_hours
            out[(kind, row.key)] = data
    return out


def random_world(rng: random.Random):
    load_test_framework(FRAMEWORK_YAML.rstrip("\n") + "\n" + EXTRA_OCCUPATION)
    # occupations: 15-1211 belongs to one course only; the other two span several courses
    courses = [
        make_course("c0", title="C0", occupations=("43-4051.00", "15-1211.00")),
        make_course("c1", title="C1", occupations=("43-4051.00", "47-2111.00"), modules=3),
        make_course("c2", title="C2", occupations=("47-2111.00",), lessons=3),
        make_course("c3", title="C3", occupations=("47-2111.00",), modules=1),
    ]
    p1, _ = apply_program(
        ProgramSpec("p-one", "P one", "P.", "A.", 2, [], ["c0", "c1"]),
        now=NOW,
        status=CourseStatus.PUBLISHED,
    )
    p2, _ = apply_program(
        ProgramSpec("p-two", "P two", "P.", "A.", 1, [], ["c1", "c2", "c3"]),
        now=NOW,
        status=CourseStatus.PUBLISHED,
    )
    db.session.commit()
    org = make_org(make_user(), name="Random Board")
    other = make_org(make_user(), name="Other Board")
    cohorts = [make_cohort(org, courses, name=f"Cohort {i}") for i in range(3)]
    elsewhere = make_cohort(other, courses, name="Elsewhere")
    admin = make_user(role=Role.ADMIN)
    base = datetime(2025, 10, 1, tzinfo=UTC)
    learners = []
    for n in range(24):
        user = make_user(email=f"learner{n}@example.org")
        joined = rng.sample(cohorts, rng.choice([1, 1, 2]))
        for cohort in joined:
            join_cohort(cohort, user, now=base, left=rng.random() < 0.1)
        if rng.random() < 0.15:
            join_cohort(elsewhere, user, now=base)
        learners.append(user)
        for program in (p1, p2):
            if rng.random() < 0.4:
                db.session.add(ProgramEnrollment(user_id=user.id, program_id=program.id, enrolled_at=base))
        db.session.commit()
        for course in rng.sample(courses, rng.randint(0, 4)):
            # enrolled somewhere in 11 months; steps at random gaps (seconds to weeks), often across midnight
            moment = base + timedelta(days=rng.randint(0, 330), minutes=rng.randint(0, 1439))
            enrollment = Enrollment(user_id=user.id, course_id=course.id, enrolled_at=moment, last_activity_at=moment)
            db.session.add(enrollment)
            db.session.flush()
            previous, finished = moment, True
            steps = [(m, lesson) for m in course.modules for lesson in m.lessons] + [(m, None) for m in course.modules]
            steps.sort(key=lambda s: (s[0].position, s[1] is None, s[1].position if s[1] else 0))
            for module, lesson in steps:
                if rng.random() < 0.12:
                    finished = False
                    break
                moment = previous + timedelta(seconds=rng.choice([30, 200, 900, 1700, 2000, 40000, 700000]))
                if lesson is not None:
                    db.session.add(
                        LessonProgress(
                            enrollment_id=enrollment.id,
                            lesson_id=lesson.id,
                            completed_at=moment,
                            active_seconds=active_seconds(previous, moment) if rng.random() < 0.9 else None,
                        )
                    )
                else:
                    passed = False
                    for attempt_no in range(1, 4):
                        started = moment
                        moment = started + timedelta(seconds=rng.choice([45, 600, 1799, 1801, 5000]))
                        passed = rng.random() < 0.6
                        db.session.add(
                            QuizAttempt(
                                enrollment_id=enrollment.id,
                                quiz_id=module.quiz.id,
                                attempt_no=attempt_no,
                                layout=[],
                                answers={},
                                score=90 if passed else 10,
                                passed=passed,
                                started_at=started,
                                submitted_at=moment,
                            )
                        )
                        if passed:
                            break
                    if not passed:
                        finished = False
                        break
                previous = moment
            enrollment.last_activity_at = previous
            if finished and rng.random() < 0.9:
                enrollment.completed_at = previous
                db.session.flush()
                issue_for_enrollment(enrollment, now=previous, issuer="AI Workforce Academy")
            db.session.commit()
    for certificate in db.session.scalars(select(Certificate).order_by(Certificate.id)):
        if rng.random() < 0.15 and certificate.revoked_at is None and certificate.course_id is not None:
            revoke(admin, certificate, reason=RevocationReason.ISSUED_IN_ERROR, note="Test.", now=NOW)
    db.session.commit()
    return {"org": org, "cohorts": cohorts, "programs": [p1, p2], "courses": courses, "learners": learners}


PERIODS = [
    (date(2025, 10, 1), date(2026, 8, 31)),
    (date(2026, 1, 1), date(2026, 6, 30)),
    (date(2026, 3, 15), date(2026, 3, 15)),  # one day
    (date(2026, 5, 1), date(2026, 12, 31)),  # judged as of NOW, before the period ends
]


def assert_fast_equals_reference(world):
    org = world["org"]
    checked = 0
    for start, end in PERIODS:
        for cohort in [None, world["cohorts"][0]]:
            for program in [None, *world["programs"]]:
                kwargs = {"start": start, "end": end, "now": NOW, "cohort": cohort, "program": program}
                fast = comparable(workforce_report(org, **kwargs))
                assert fast == comparable(reference_report(org, **kwargs)), kwargs
                checked += len(fast)
    # the random data is rich enough to mean something: many rows, some multi-course occupations
    assert checked > 200


@pytest.mark.parametrize("seed", [7, 2026])
def test_fast_report_equals_the_straightforward_one_on_random_data(ctx, seed):
    world = random_world(random.Random(seed))
    assert_rollup_matches_a_rebuild()
    full = workforce_report(world["org"], start=date(2025, 10, 1), end=date(2026, 8, 31), now=NOW)
    occupations = {row.key for row in full.rows["occupation"]}
    assert {"15-1211.00", "43-4051.00", "47-2111.00"} <= occupations
    assert full.total.skill_gains > 0 and full.total.measured_seconds > 0 and full.total.credentials_attained > 0
    assert_fast_equals_reference(world)


def test_the_rollup_follows_every_change_to_progress_and_attempts(ctx):
    rng = random.Random(99)
    world = random_world(rng)
    c1 = world["courses"][1]
    learner = world["learners"][0]
    enrollment = db.session.scalar(
        select(Enrollment).where(Enrollment.user_id == learner.id, Enrollment.course_id == c1.id)
    )
    if enrollment is None:
        enrollment = Enrollment(user_id=learner.id, course_id=c1.id, enrolled_at=NOW, last_activity_at=NOW)
        db.session.add(enrollment)
        db.session.flush()
    before = {r[1]: r for r in rollup() if r[0] == enrollment.id}

    # the services: a lesson completed and a quiz graded (a conditional UPDATE the ORM does not see)
    moment = datetime(2026, 8, 20, 23, 59, tzinfo=UTC)
    db.session.execute(delete(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id))
    db.session.execute(delete(QuizAttempt).where(QuizAttempt.enrollment_id == enrollment.id))
    learning_days.refresh_enrollments(db.session.connection(), [enrollment.id])
    enrollment.completed_at = None
    enrollment.last_activity_at = moment - timedelta(minutes=4)
    db.session.commit()
    module = c1.modules[0]
    complete_lesson(enrollment, module.lessons[0], now=moment)
    attempt = start_attempt(enrollment, module.quiz, now=moment + timedelta(minutes=1), rng=random.Random(1))
    right = {q.id: [next(c.id for c in q.choices if c.correct)] for q in module.quiz.questions}
    graded, _ = submit_attempt(enrollment, attempt, module.quiz, right, now=moment + timedelta(minutes=3))
    assert graded.passed
    db.session.commit()
    days = {r[1]: r[2:] for r in rollup() if r[0] == enrollment.id}
    # the lesson on the 20th (5 minutes, 4 minutes active); the quiz on the 21st (2 minutes, its first pass)
    assert days == {date(2026, 8, 20): (5, 240, 0), date(2026, 8, 21): (0, 120, 1)}, before
    assert_rollup_matches_a_rebuild()

    # a re-import that changes a lesson's stated length changes every day row holding that lesson
    spec = course_spec("c1", title="C1", occupations=("43-4051.00", "47-2111.00"), modules=3)
    spec.modules[0].lessons[0].minutes = 12
    apply_spec(spec, now=NOW, status=CourseStatus.PUBLISHED)
    db.session.commit()
    assert {r[1]: r[2:] for r in rollup() if r[0] == enrollment.id}[date(2026, 8, 20)] == (12, 240, 0)
    assert_rollup_matches_a_rebuild()

    # a re-import without a module: its lessons, quiz and their progress go (the database cascades them)
    spec.modules = spec.modules[:2]
    apply_spec(spec, now=NOW, status=CourseStatus.PUBLISHED)
    db.session.commit()
    assert_rollup_matches_a_rebuild()

    # ORM deletes of attempts and of a whole enrollment
    for attempt in db.session.scalars(select(QuizAttempt).limit(5)):
        db.session.delete(attempt)
    db.session.commit()
    assert_rollup_matches_a_rebuild()
    gone = db.session.scalar(select(Enrollment).where(Enrollment.id != enrollment.id).limit(1))
    db.session.delete(gone)
    db.session.commit()
    assert not [r for r in rollup() if r[0] == gone.id]
    assert_rollup_matches_a_rebuild()
    assert_fast_equals_reference(world)


def test_rebuild_command_restores_the_rollup_after_bulk_sql(app, ctx):
    world = random_world(random.Random(5))
    kept = rollup()
    args = {"start": date(2025, 10, 1), "end": date(2026, 8, 31), "now": NOW}
    before = comparable(workforce_report(world["org"], **args))
    # bulk SQL (as the benchmark generator writes) bypasses the ORM: the report then misses that learning
    db.session.execute(delete(LearningDay))
    db.session.commit()
    assert workforce_report(world["org"], **args).total.skill_gains == 0
    result = app.test_cli_runner().invoke(args=["reports", "rebuild-learning-days"])
    assert result.exit_code == 0, result.output
    assert f"{len(kept)} day rows" in result.output
    db.session.expire_all()
    assert rollup() == kept
    assert comparable(workforce_report(world["org"], **args)) == before
