"""Learning events → xAPI statements (signal receivers; they flush with the event's transaction)."""

from __future__ import annotations

from flask import current_app

from courses.services import enrolled, enrollment_completed, lesson_completed, quiz_graded
from credentials.services import certificate_issued
from insights import learning_days, people, report_cache, xapi  # noqa: F401  (rollups and report cache kept current)


def _base() -> str:
    return current_app.config["ISSUER_URL"].rstrip("/")


def course_iri(slug: str) -> str:
    return f"{_base()}/courses/{slug}"


@enrolled.connect
def on_enrolled(enrollment, course, now, **_):
    xapi.record(
        base_url=_base(),
        user_id=enrollment.user_id,
        verb="registered",
        activity_iri=course_iri(course.slug),
        activity_type="course",
        name=course.title,
        now=now,
    )


@lesson_completed.connect
def on_lesson_completed(enrollment, lesson, now, **_):
    module = lesson.module
    course = module.course
    xapi.record(
        base_url=_base(),
        user_id=enrollment.user_id,
        verb="completed",
        activity_iri=f"{course_iri(course.slug)}/{module.slug}/{lesson.slug}",
        activity_type="lesson",
        name=lesson.title,
        now=now,
        result={"completion": True},
        parent_iri=course_iri(course.slug),
    )


@quiz_graded.connect
def on_quiz_graded(enrollment, attempt, quiz, graded, now, **_):
    module = quiz.module
    course = module.course
    iri = f"{course_iri(course.slug)}/{module.slug}/quiz"
    result = {
        "score": {"scaled": round(graded.score / 100, 4), "raw": graded.score, "min": 0, "max": 100},
        "success": graded.passed,
        "completion": True,
        "duration": xapi.iso_duration((now - attempt.started_at).total_seconds()),
    }
    xapi.record_many(
        [
            dict(
                base_url=_base(),
                user_id=enrollment.user_id,
                verb=verb,
                activity_iri=iri,
                activity_type="assessment",
                name=quiz.title,
                now=now,
                result=result,
                parent_iri=course_iri(course.slug),
            )
            for verb in ("answered", "passed" if graded.passed else "failed")
        ]
    )


@enrollment_completed.connect
def on_course_completed(enrollment, now, **_):
    from core.extensions import db
    from courses.models import Course
    from courses.services import cached_outline

    course = cached_outline(enrollment.course_id) or db.session.get(Course, enrollment.course_id)
    xapi.record(
        base_url=_base(),
        user_id=enrollment.user_id,
        verb="completed",
        activity_iri=course_iri(course.slug),
        activity_type="course",
        name=course.title,
        now=now,
        result={"completion": True, "duration": xapi.iso_duration((now - enrollment.enrolled_at).total_seconds())},
    )


@certificate_issued.connect
def on_certificate_issued(certificate, now, **_):
    from credentials.ids import format_public_id

    xapi.record(
        base_url=_base(),
        user_id=certificate.user_id,
        verb="earned",
        activity_iri=f"{_base()}/credentials/{format_public_id(certificate.public_id)}",
        activity_type="certificate",
        name=f"Certificate: {certificate.course_title}",
        now=now,
        result={"score": {"scaled": round(certificate.score / 100, 4)}, "completion": True},
        parent_iri=course_iri(certificate.course_slug),
    )
