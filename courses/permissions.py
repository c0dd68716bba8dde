"""Pure predicates about courses, shared by views and templates."""

from __future__ import annotations

from accounts.permissions import is_admin
from courses.models import Course, CourseStatus, Enrollment


def can_author_courses(user) -> bool:
    """The studio: draft, edit, import, export and publish courses and programs (/studio)."""
    return is_admin(user)


def can_enroll(user, course: Course) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and course.status is CourseStatus.PUBLISHED


def can_study(user, course: Course, enrollment: Enrollment | None) -> bool:
    """Open lessons and quizzes: enrolled, and the course is published or archived (not draft)."""
    return (
        enrollment is not None
        and getattr(user, "is_authenticated", False)
        and enrollment.user_id == user.id
        and course.status in (CourseStatus.PUBLISHED, CourseStatus.ARCHIVED)
    )
