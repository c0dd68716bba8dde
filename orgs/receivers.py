"""Signal receivers: the demo organization for `flask users seed-demo` (development only); cohorts following a
program keep its course list."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, event, insert, inspect, select
from sqlalchemy.orm import Session

from accounts.models import User
from accounts.services import demo_seeded, register_user
from core.extensions import db
from courses import services as course_services
from courses.models import Course, CourseStatus, Program, ProgramCourse
from orgs import services
from orgs.models import Cohort, CohortMember, Organization, OrgKind, OrgStatus, cohort_courses

DEMO_ORG = "Demo Logistics Co."
DEMO_MANAGER = "employer@example.org"
DEMO_COURSE = "ai-literacy-for-every-worker"
DEMO_LEARNERS = (
    ("learner@example.org", "Dana Learner", 0.0, None),  # the demo learner, to show "My organizations"
    ("maria.demo@example.org", "Maria Gonzalez", 1.0, 1),  # every lesson done, quizzes still to pass
    ("james.demo@example.org", "James Carter", 0.5, 2),
    ("aisha.demo@example.org", "Aisha Rahman", 0.2, 20),  # no activity for 20 days
    ("tom.demo@example.org", "Tom Nguyen", 0.0, None),  # joined, not started
)


@demo_seeded.connect
def seed_demo_org(sender, *, now: datetime) -> list[str]:
    """One approved employer with a cohort of demo learners at different stages; idempotent."""
    if db.session.scalar(select(Organization.id).where(Organization.name == DEMO_ORG)) is not None:
        return [f"Demo organization “{DEMO_ORG}” already exists; its manager logs in as {DEMO_MANAGER}."]
    manager = db.session.scalar(select(User).where(User.email == DEMO_MANAGER))
    published = select(Course).where(Course.status == CourseStatus.PUBLISHED)
    course = db.session.scalar(published.where(Course.slug == DEMO_COURSE)) or db.session.scalar(
        published.order_by(Course.slug).limit(1)
    )
    if manager is None:
        return []
    org = services.create_organization(
        manager,
        name=DEMO_ORG,
        kind=OrgKind.EMPLOYER,
        website="https://logistics.example",
        contact_email=DEMO_MANAGER,
        now=now,
        status=OrgStatus.APPROVED,
    )
    lines = [f"Demo organization “{DEMO_ORG}” (/organizations/{org.slug}): its manager logs in as {DEMO_MANAGER}."]
    if course is None:
        return [*lines, "  (no published course yet, so no demo cohort: run `flask courses import courses/catalog`)"]
    cohort = services.create_cohort(
        manager,
        org,
        name="Warehouse team, AI basics",
        starts_on=(now - timedelta(days=30)).date(),
        ends_on=(now + timedelta(days=60)).date(),
        due_on=(now + timedelta(days=30)).date(),
        course_ids=[course.id],
        now=now,
    )
    for email, name, share, days_ago in DEMO_LEARNERS:
        user = db.session.scalar(select(User).where(User.email == email)) or register_user(
            email=email, name=name, password=secrets.token_urlsafe(18), now=now
        )
        _join(cohort, user, now - timedelta(days=25))
        if days_ago is not None:
            _progress(user, course, share, now - timedelta(days=days_ago))
    lines.append(f"  cohort “{cohort.name}” with {len(DEMO_LEARNERS)} demo learners in {course.title}")
    return lines


def _join(cohort: Cohort, user: User, when: datetime) -> None:
    db.session.add(
        CohortMember(
            cohort_id=cohort.id,
            user_id=user.id,
            joined_at=when,
            consent_at=when,
            consent_text=services.consent_text(cohort),
        )
    )
    db.session.flush()


def _progress(user: User, course: Course, share: float, when: datetime) -> None:
    enrollment, _ = course_services.enroll(user, course, now=when)
    steps = [lesson for module in course.modules for lesson in module.lessons]
    for lesson in steps[: round(len(steps) * share)]:
        course_services.complete_lesson(enrollment, lesson, now=when)
    enrollment.last_activity_at = when
    db.session.flush()


# ---- cohorts follow their program's courses ---------------------------------------------------------------------
# A program's course list changes through courses/programs.py (import, studio), which bumps program.version and knows
# nothing of cohorts. After the flush that wrote the new list, the cohorts following the program get exactly its
# courses (rewritten, not patched, so a retry cannot leave a course twice or missing).


@event.listens_for(Program, "after_update")
def _program_updated(_mapper, _connection, target) -> None:
    if inspect(target).attrs.version.history.has_changes():
        session = inspect(target).session
        session.info.setdefault("programs_changed", set()).add(target.id)


@event.listens_for(Session, "after_flush")
def _sync_program_cohorts(session: Session, _context) -> None:
    changed = session.info.pop("programs_changed", None)
    if not changed:
        return
    connection = session.connection()
    following = select(Cohort.id).where(Cohort.program_id.in_(sorted(changed)))
    cohort_ids = list(connection.execute(following).scalars())
    if not cohort_ids:
        return
    connection.execute(delete(cohort_courses).where(cohort_courses.c.cohort_id.in_(cohort_ids)))
    connection.execute(
        insert(cohort_courses).from_select(
            ["cohort_id", "course_id"],
            select(Cohort.id, ProgramCourse.course_id)
            .join(ProgramCourse, ProgramCourse.program_id == Cohort.program_id)
            .where(Cohort.id.in_(cohort_ids)),
        )
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Cohort) and obj.id in cohort_ids:
            session.expire(obj, ["courses"])
