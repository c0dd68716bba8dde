"""Plain factory functions: each writes and commits real rows."""

from __future__ import annotations

import copy
import itertools
import time

from accounts.models import Role, User
from accounts.passwords import hash_password
from core.database import utcnow
from core.extensions import db

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_hash_cache: dict[str, str] = {}


def make_user(
    *,
    email: str | None = None,
    name: str | None = None,
    role: Role = Role.LEARNER,
    password: str = PASSWORD,
    active: bool = True,
    verified: bool = True,
) -> User:
    n = next(_counter)
    if password not in _hash_cache:  # argon2 is slow on purpose; reuse the hash across tests
        _hash_cache[password] = hash_password(password)
    now = utcnow()
    user = User(
        email=(email or f"user{n}@example.org").lower(),
        name=name or f"Test User {n}",
        legal_name=name or f"Test User {n}",
        role=role,
        active=active,
        password_hash=_hash_cache[password],
        created_at=now,
        updated_at=now,
        email_verified_at=now if verified else None,
    )
    db.session.add(user)
    db.session.commit()
    return user


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.submit("/login", {"email": email, "password": password, **extra})


def sign_in(client, email: str) -> None:
    """``email``'s account signed in on ``client``, the session as a successful POST /login leaves it (a recorded
    login, the session cleared, Flask-Login's keys), without the login form; and a CSRF secret with a token signed
    for it, as the next page fetched would hand out, so the test's first POST fetches no page for one.

    For tests whose subject is not logging in (tests of logging in post the form: ``login``). Left out: what only
    the form does (the last-login time, the throttle's counters, the "Welcome back" message)."""
    import contextvars
    import secrets

    from flask_login.utils import _create_identifier
    from itsdangerous import URLSafeTimedSerializer

    from accounts.services import active_user_by_email, start_login

    app = client.application

    def record() -> tuple[str, str]:  # in a context of its own, as a request runs (tests/conftest.py Client)
        with app.test_request_context(environ_base=client.environ_base):
            user = active_user_by_email(email)
            assert user is not None, f"no active account for {email}"
            start_login(user, now=utcnow())
            db.session.commit()
            return user.get_id(), _create_identifier()

    user_id, identifier = contextvars.Context().run(record)
    secret = secrets.token_hex(20)  # 40 hex digits, as flask_wtf.csrf.generate_csrf makes one
    signer = URLSafeTimedSerializer(app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key, salt="wtf-csrf-token")
    with client.session_transaction() as session:
        session.clear()
        session.update({"_user_id": user_id, "_fresh": True, "_id": identifier, "csrf_token": secret})
    client._csrf = (secret, signer.dumps(secret))


# ---- skills framework and courses ---------------------------------------------------------

FRAMEWORK_YAML = """\
version: 1
goals:
  - id: G1
    kind: workforce
    title: AI skills in workforce funding
    section: Empower American Workers in the Age of AI
    pillar: I
    pages: "6"
    summary: Make AI skills a core objective of workforce funding.
  - id: G7
    kind: workforce
    title: Priority occupations
    section: Train a Skilled Workforce for AI Infrastructure
    pillar: II
    pages: "17"
    summary: Identify priority occupations for AI infrastructure.
skills:
  - id: AIL-01
    name: AI Foundations
    category: AI literacy
    level: foundational
    description: Explain what AI is.
    goals: [G1]
    frameworks:
      - {framework: DOL AI Literacy Framework, code: CA1, name: Understand AI principles}
    occupations: ["43-4051.00"]
  - id: INF-01
    name: Data Center Electrical Power Systems
    category: AI infrastructure
    level: intermediate
    description: Work safely on the data-center power chain.
    goals: [G7]
    occupations: ["47-2111.00"]
occupations:
  - {code: "43-4051.00", title: Customer Service Representatives, group: ai-adoption}
  - {code: "47-2111.00", title: Electricians, group: infrastructure}
"""


def load_test_framework(text: str = FRAMEWORK_YAML):
    """Load ``text`` as the skills framework and commit: the LoadReport.

    Most tests call this first, on the empty database every test starts with. There the rows come back from a
    snapshot of this process's first such load (tests/conftest.py Snapshot, as `prebuilt` does): the same rows and
    sequence positions in ~1 ms instead of ~60 ms of CPU on SQLite (~150 ms on PostgreSQL), on ~300 tests. Anywhere
    else (rows already written, or the session holding unflushed changes) it loads for real."""
    from flask import current_app

    from skills.services import load_framework
    from tests.conftest import SNAPSHOT_MAX_AGE, Snapshot, database_is_empty

    app = current_app._get_current_object()
    empty = database_is_empty()
    kept = _FRAMEWORKS.get(text)
    if empty and kept is not None and kept[0].app is app and time.monotonic() - kept[2] < SNAPSHOT_MAX_AGE:
        snapshot, report, _ = kept
        snapshot.restore()
        return copy.deepcopy(report)
    report = load_framework(text, now=utcnow())
    db.session.commit()
    if empty:
        _FRAMEWORKS[text] = (Snapshot(app), copy.deepcopy(report), time.monotonic())
    return report


# {framework text: (Snapshot of the database holding only that framework, its LoadReport, when taken)}
_FRAMEWORKS: dict[str, tuple] = {}


def course_spec(
    slug: str = "ai-basics",
    *,
    modules: int = 2,
    lessons: int = 2,
    questions: int = 2,
    skills=("AIL-01",),
    occupations=("43-4051.00",),
    pass_mark: int = 50,
    max_attempts=None,
    cooldown_minutes: int = 0,
    title: str | None = None,
):
    from courses.catalog import ChoiceSpec, CourseSpec, LessonSpec, ModuleSpec, QuestionSpec, QuizSpec

    return CourseSpec(
        slug=slug,
        title=title or f"Course {slug}",
        summary=f"Summary of {slug}.",
        audience="Everyone at work.",
        estimated_minutes=60,
        validity_months=24,
        skills=list(skills),
        goals=["G1"],
        occupations=list(occupations),
        modules=[
            ModuleSpec(
                slug=f"module-{m}",
                title=f"Module {m}",
                summary="",
                skills=list(skills),
                goals=["G1"],
                lessons=[
                    LessonSpec(
                        slug=f"lesson-{m}-{n}",
                        title=f"Lesson {m}.{n}",
                        minutes=5,
                        body=f"## Part {m}.{n}\n\nText of lesson {m}.{n}.\n",
                    )
                    for n in range(1, lessons + 1)
                ],
                quiz=QuizSpec(
                    title=f"Quiz {m}",
                    pass_mark=pass_mark,
                    max_attempts=max_attempts,
                    cooldown_minutes=cooldown_minutes,
                    questions=[
                        QuestionSpec(
                            kind="single",
                            prompt=f"Question {m}.{q}?",
                            explanation=f"Because {m}.{q}.",
                            choices=[
                                ChoiceSpec(text=f"Right {m}.{q}", correct=True),
                                ChoiceSpec(text=f"Wrong {m}.{q}", correct=False),
                                ChoiceSpec(text=f"Also wrong {m}.{q}", correct=False),
                            ],
                        )
                        for q in range(1, questions + 1)
                    ],
                )
                if questions
                else None,
            )
            for m in range(1, modules + 1)
        ],
    )


def make_course(slug: str = "ai-basics", *, status=None, **kwargs):
    from courses.catalog import apply_spec
    from courses.models import CourseStatus

    course, _ = apply_spec(course_spec(slug, **kwargs), now=utcnow(), status=status or CourseStatus.PUBLISHED)
    db.session.commit()
    return course


def enroll(user, course):
    from courses.services import enroll as do_enroll

    enrollment, _ = do_enroll(user, course, now=utcnow())
    db.session.commit()
    return enrollment


def passed_attempt(enrollment, quiz, *, now, score: int = 90):
    """A submitted, passed first attempt at a quiz, written directly (no HTTP)."""
    from courses.models import QuizAttempt

    return QuizAttempt(
        enrollment_id=enrollment.id,
        quiz_id=quiz.id,
        attempt_no=1,
        layout=[],
        answers={},
        score=score,
        passed=True,
        started_at=now,
        submitted_at=now,
    )


def complete_course(user, course, *, now=None):
    """Mark every lesson done and pass every quiz directly (no HTTP), then apply the completion rule."""
    from courses.models import LessonProgress
    from courses.services import check_completion, get_enrollment

    now = now or utcnow()
    enrollment = get_enrollment(user, course) or enroll(user, course)
    for module in course.modules:
        for lesson in module.lessons:
            db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, completed_at=now))
        if module.quiz:
            db.session.add(passed_attempt(enrollment, module.quiz, now=now))
    db.session.flush()
    check_completion(enrollment, now=now)
    db.session.commit()
    return enrollment


def make_certificate(user=None, course=None, *, now=None, **course_kwargs):
    """A learner who completed a course, and the certificate that completion issued."""
    from sqlalchemy import select

    from credentials.models import Certificate

    user = user or make_user(name="Lee Learner")
    course = course or make_course(course_kwargs.pop("slug", "ai-basics"), **course_kwargs)
    complete_course(user, course, now=now)
    return db.session.scalar(
        select(Certificate).where(Certificate.user_id == user.id, Certificate.course_id == course.id)
    )


def certificate_world(*, email: str = "lee@example.org", name: str = "Lee Learner", title: str | None = None) -> int:
    """The test framework, a learner who completed ai-basics, and the certificate that issued: its id.

    A build for tests/conftest.py's prebuilt (the prebuilt_certificate fixture): built once per module."""
    load_test_framework()
    course = make_course("ai-basics", **({"title": title} if title else {}))
    return make_certificate(make_user(email=email, name=name), course).id


# ---- organizations ------------------------------------------------------------------------------------------


def make_org(owner=None, *, name: str = "Acme Staffing", kind=None, status=None, role=None, email: str | None = None):
    """An organization (approved unless ``status`` says otherwise) with ``owner`` in ``role`` (owner by default)."""
    from orgs.models import Membership, Organization, OrgKind, OrgRole, OrgStatus
    from orgs.services import _unique_slug

    owner = owner or make_user()
    now = utcnow()
    status = status or OrgStatus.APPROVED
    org = Organization(
        slug=_unique_slug(name),
        name=name,
        kind=kind or OrgKind.EMPLOYER,
        status=status,
        contact_email=(email or owner.email).lower(),
        email_verified_at=now,
        created_by_id=owner.id,
        created_at=now,
    )
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(organization_id=org.id, user_id=owner.id, role=role or OrgRole.OWNER, created_at=now))
    db.session.commit()
    return org


def make_employer(email: str = "hr@example.org", *, name: str | None = None, org_name: str = "Acme Staffing"):
    """An account that owns an approved employer organization (what the old "employer" role became)."""
    user = make_user(email=email, name=name)
    return user, make_org(user, name=org_name)


def add_staff(org, user, role=None):
    from orgs.models import Membership, OrgRole

    db.session.add(
        Membership(organization_id=org.id, user_id=user.id, role=role or OrgRole.MANAGER, created_at=utcnow())
    )
    db.session.commit()


def make_cohort(org, courses, *, name: str = "Spring cohort", starts_on=None, due_on=None):
    from datetime import date

    from orgs.models import Cohort

    cohort = Cohort(
        organization_id=org.id,
        name=name,
        starts_on=starts_on or date(2026, 1, 1),
        due_on=due_on,
        created_at=utcnow(),
        courses=list(courses),
    )
    db.session.add(cohort)
    db.session.commit()
    return cohort


def join_cohort(cohort, user, *, now=None, left: bool = False):
    """A learner in the cohort who agreed (as the join page would record), optionally having left since."""
    from orgs.models import CohortMember
    from orgs.services import consent_text

    now = now or utcnow()
    member = CohortMember(
        cohort_id=cohort.id,
        user_id=user.id,
        joined_at=now,
        consent_at=now,
        consent_text=consent_text(cohort),
        left_at=now if left else None,
    )
    db.session.add(member)
    db.session.commit()
    return member


def make_program(slug: str = "pathway", course_slugs=("alpha", "bravo"), *, status=None, title: str = "Test Pathway"):
    """A program of the given (existing) courses, published unless ``status`` says otherwise."""
    from courses.models import CourseStatus
    from courses.programs import ProgramSpec, apply_program

    spec = ProgramSpec(
        slug=slug,
        title=title,
        purpose="Get ready for the work.",
        audience="Jobseekers.",
        normal_weeks=4,
        occupations=["43-4051.00"],
        courses=list(course_slugs),
    )
    program, _ = apply_program(spec, now=utcnow(), status=status or CourseStatus.PUBLISHED)
    db.session.commit()
    return program
