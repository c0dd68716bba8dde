"""Signal receivers: the demo organization for `flask users seed-demo` (development only)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from accounts.models import User
from accounts.services import demo_seeded, register_user
from core.extensions import db
from courses import services as course_services
from courses.models import Course, CourseStatus
from orgs import services
from orgs.models import Cohort, CohortMember, Organization, OrgKind, OrgStatus

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
