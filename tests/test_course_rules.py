"""The core learning rules, called as services (no HTTP): enrollment, completion, quiz limits, issuance.

The HTTP tests (test_learning, test_certificates, test_attacks) show the same rules through pages and forms;
these pin each rule down where it lives, in a few milliseconds each, so a broken rule names itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from courses import services
from courses.models import CourseStatus, Enrollment, LessonProgress, QuizAttempt
from credentials.models import Certificate, CertificateEvent
from credentials.services import issue_for_enrollment
from tests.factories import enroll, load_test_framework, make_course, make_user


@pytest.fixture
def course(ctx):
    load_test_framework()
    return make_course("ai-basics", modules=2, lessons=2, questions=2)


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def right_answers(attempt: QuizAttempt, quiz) -> dict[int, list[int]]:
    correct = {q.id: [c.id for c in q.choices if c.correct] for q in quiz.questions}
    return {qid: correct[qid] for qid, _ in attempt.layout}


def wrong_answers(attempt: QuizAttempt, quiz) -> dict[int, list[int]]:
    wrong = {q.id: [next(c.id for c in q.choices if not c.correct)] for q in quiz.questions}
    return {qid: wrong[qid] for qid, _ in attempt.layout}


def take_quiz(enrollment, module, *, now, right: bool = True):
    quiz = services.load_quiz(module.quiz.id)
    attempt = services.start_attempt(enrollment, quiz, now=now)
    answers = (right_answers if right else wrong_answers)(attempt, quiz)
    graded, finished = services.submit_attempt(enrollment, attempt, quiz, answers, now=now)
    db.session.commit()
    return graded, finished


def read_every_lesson(enrollment, course, *, now) -> list[bool]:
    finished = [services.complete_lesson(enrollment, lesson, now=now) for m in course.modules for lesson in m.lessons]
    db.session.commit()
    return finished


# ---- enrollment ------------------------------------------------------------------------------------------


def test_enrolling_twice_gives_the_same_enrollment(course):
    user = make_user()
    first, created = services.enroll(user, course, now=utcnow())
    db.session.commit()
    again, created_again = services.enroll(user, course, now=utcnow())
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert count(Enrollment) == 1


def test_a_draft_course_refuses_enrollment_and_writes_nothing(ctx):
    load_test_framework()
    draft = make_course("draft-course", status=CourseStatus.DRAFT)
    with pytest.raises(DomainError, match="not open for enrollment"):
        services.enroll(make_user(), draft, now=utcnow())
    db.session.rollback()
    assert count(Enrollment) == 0


# ---- completion ------------------------------------------------------------------------------------------


def test_the_course_completes_only_on_the_last_step_and_only_once(course):
    enrollment = enroll(make_user(), course)
    now = utcnow()
    # every lesson read, no quiz passed yet: not complete
    assert read_every_lesson(enrollment, course, now=now) == [False, False, False, False]
    assert take_quiz(enrollment, course.modules[0], now=now)[1] is False
    graded, finished = take_quiz(enrollment, course.modules[1], now=now + timedelta(minutes=1))
    assert graded.passed and graded.score == 100 and finished is True
    assert enrollment.completed_at is not None
    completed_at = enrollment.completed_at
    # later calls neither complete it again nor move the date
    assert services.check_completion(enrollment, now=now + timedelta(days=1)) is False
    assert services.complete_lesson(enrollment, course.modules[0].lessons[0], now=now + timedelta(days=1)) is False
    db.session.commit()
    db.session.refresh(enrollment)
    assert enrollment.completed_at == completed_at


def test_quizzes_passed_before_the_last_lesson_complete_it_on_that_lesson(course):
    enrollment = enroll(make_user(), course)
    now = utcnow()
    for module in course.modules:
        assert take_quiz(enrollment, module, now=now)[1] is False
    assert read_every_lesson(enrollment, course, now=now) == [False, False, False, True]


def test_a_failed_quiz_does_not_complete_the_course(course):
    enrollment = enroll(make_user(), course)
    now = utcnow()
    read_every_lesson(enrollment, course, now=now)
    take_quiz(enrollment, course.modules[0], now=now)
    graded, finished = take_quiz(enrollment, course.modules[1], now=now, right=False)
    assert (graded.passed, graded.score, finished) == (False, 0, False)
    db.session.refresh(enrollment)
    assert enrollment.completed_at is None
    assert count(Certificate) == 0


def test_completing_a_lesson_twice_records_it_once(course):
    enrollment = enroll(make_user(), course)
    lesson = course.modules[0].lessons[0]
    for _ in range(2):
        services.complete_lesson(enrollment, lesson, now=utcnow())
        db.session.commit()
    assert count(LessonProgress, LessonProgress.enrollment_id == enrollment.id) == 1


# ---- quiz rules ------------------------------------------------------------------------------------------


def test_an_open_attempt_is_reused_and_a_submitted_one_cannot_be_submitted_again(course):
    enrollment = enroll(make_user(), course)
    quiz = services.load_quiz(course.modules[0].quiz.id)
    now = utcnow()
    attempt = services.start_attempt(enrollment, quiz, now=now)
    db.session.commit()
    assert services.start_attempt(enrollment, quiz, now=now).id == attempt.id
    answers = right_answers(attempt, quiz)
    services.submit_attempt(enrollment, attempt, quiz, answers, now=now)
    db.session.commit()
    with pytest.raises(services.QuizRuleError, match="already submitted"):
        services.submit_attempt(enrollment, attempt, quiz, answers, now=now)
    db.session.rollback()
    assert count(QuizAttempt, QuizAttempt.submitted_at.is_not(None)) == 1


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda answers, other: {**answers, 999999: [1]}, "do not match this quiz's questions"),
        (lambda answers, other: dict(list(answers.items())[:1]), "answer every question"),
        (lambda answers, other: {qid: [other] for qid in answers}, "do not match this quiz's choices"),
    ],
    ids=["unknown question", "missing answer", "choice of another question"],
)
def test_tampered_answers_are_refused_and_nothing_is_graded(course, tamper, message):
    enrollment = enroll(make_user(), course)
    quiz = services.load_quiz(course.modules[0].quiz.id)
    attempt = services.start_attempt(enrollment, quiz, now=utcnow())
    db.session.commit()
    other_choice = course.modules[1].quiz.questions[0].choices[0].id
    with pytest.raises(services.QuizRuleError, match=message):
        services.submit_attempt(
            enrollment, attempt, quiz, tamper(right_answers(attempt, quiz), other_choice), now=utcnow()
        )
    db.session.rollback()
    db.session.refresh(attempt)
    assert (attempt.submitted_at, attempt.score) == (None, None)


def test_the_attempt_limit_and_the_cooldown_are_enforced(ctx):
    load_test_framework()
    course = make_course("limited", modules=1, max_attempts=2, cooldown_minutes=10)
    enrollment = enroll(make_user(), course)
    module = course.modules[0]
    start = utcnow()
    take_quiz(enrollment, module, now=start, right=False)
    quiz = services.load_quiz(module.quiz.id)
    with pytest.raises(services.QuizRuleError, match="wait 10 more minutes"):
        services.start_attempt(enrollment, quiz, now=start + timedelta(seconds=30))
    take_quiz(enrollment, module, now=start + timedelta(minutes=11), right=False)
    with pytest.raises(services.QuizRuleError, match="used all 2 attempts"):
        services.start_attempt(enrollment, quiz, now=start + timedelta(days=1))
    db.session.rollback()
    assert count(QuizAttempt) == 2


# ---- issuance --------------------------------------------------------------------------------------------


def test_completion_issues_exactly_one_certificate(course):
    user = make_user(name="Lee Learner")
    enrollment = enroll(user, course)
    now = utcnow()
    read_every_lesson(enrollment, course, now=now)
    for module in course.modules:
        take_quiz(enrollment, module, now=now)
    certificate = db.session.scalar(select(Certificate).where(Certificate.user_id == user.id))
    assert certificate is not None and certificate.enrollment_id == enrollment.id
    assert certificate.holder_name == "Lee Learner"
    # issuing again for the same completion (a retried job, a second server) changes nothing
    again = issue_for_enrollment(enrollment, now=now, issuer="AI Workforce Academy")
    db.session.commit()
    assert again.id == certificate.id
    assert count(Certificate) == 1
    assert count(CertificateEvent, CertificateEvent.action == "issued") == 1


def test_a_revoked_certificate_stays_revoked_when_the_course_is_completed_again(course):
    from credentials.models import RevocationReason
    from credentials.services import revoke

    user = make_user()
    enrollment = enroll(user, course)
    now = utcnow()
    read_every_lesson(enrollment, course, now=now)
    for module in course.modules:
        take_quiz(enrollment, module, now=now)
    certificate = db.session.scalar(select(Certificate))
    admin = make_user(email="admin@example.org")
    revoke(admin, certificate, reason=RevocationReason.ISSUED_IN_ERROR, note="Wrong learner", now=now)
    db.session.commit()
    again = issue_for_enrollment(enrollment, now=now + timedelta(days=1), issuer="AI Workforce Academy")
    db.session.commit()
    assert again.id == certificate.id and again.revoked_at is not None
    assert count(Certificate) == 1


def test_renewing_a_course_that_is_not_complete_is_refused(course):
    enrollment = enroll(make_user(), course)
    with pytest.raises(DomainError, match="Renewal is already under way"):
        services.start_renewal(enrollment, now=utcnow())
    db.session.rollback()
    db.session.refresh(enrollment)
    assert enrollment.renewal_started_at is None
