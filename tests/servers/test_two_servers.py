"""Two app servers, one database, one Redis: races between servers and limits across them.

A learner's final step sent to both servers at the same moment (a double click that a load balancer
spreads over two servers, or two tabs) must complete the course once and issue exactly one
certificate; a rate limit must count requests to both servers together.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from functools import partial

from sqlalchemy import func, select

from tests.factories import passed_attempt
from tests.servers.conftest import PASSWORD, VERIFY_LIMIT, Client, Response, inputs

COURSE = "spotting-synthetic-media"
THREADS_PER_SERVER = 2  # each server runs two workers: keep both busy


@dataclass
class Arranged:
    email: str
    user_id: int
    enrollment_id: int
    lesson_path: str  # /courses/<slug>/<module>/<lesson> of the pending lesson
    lesson_id: int
    quiz_path: str  # /courses/<slug>/<module>/quiz of the pending quiz
    quiz_id: int


@functools.cache
def password_hash() -> str:
    from accounts.passwords import hash_password

    return hash_password(PASSWORD)  # one Argon2 hash for every learner here: each costs a tenth of a second


def arrange(app, email: str, *, lesson_left: bool, quiz_left: bool) -> Arranged:
    """A learner enrolled in the course with every step done but the last lesson and/or the last quiz."""
    from accounts.models import User
    from core.database import utcnow
    from core.extensions import db
    from courses import services
    from courses.models import LessonProgress

    with app.app_context():
        now = utcnow()
        user = User(email=email, name="Race Learner", legal_name="Race Learner", password_hash=password_hash())
        db.session.add(user)
        db.session.flush()
        course = services.load_course(COURSE)
        enrollment, _ = services.enroll(user, course, now=now)
        lessons = [lesson for module in course.modules for lesson in module.lessons]
        quizzes = [module.quiz for module in course.modules if module.quiz is not None]
        last_lesson, last_quiz = lessons[-1], quizzes[-1]
        for lesson in lessons:
            if not (lesson_left and lesson is last_lesson):
                db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, completed_at=now))
        for quiz in quizzes:
            if not (quiz_left and quiz is last_quiz):
                db.session.add(passed_attempt(enrollment, quiz, now=now, score=100))
        db.session.commit()
        module = last_lesson.module
        arranged = Arranged(
            email=email,
            user_id=user.id,
            enrollment_id=enrollment.id,
            lesson_path=f"/courses/{COURSE}/{module.slug}/{last_lesson.slug}",
            lesson_id=last_lesson.id,
            quiz_path=f"/courses/{COURSE}/{last_quiz.module.slug}/quiz",
            quiz_id=last_quiz.id,
        )
        db.session.remove()
        return arranged


def right_answers(app, page: str) -> dict[str, list[str]]:
    """The correct choices for the questions on an attempt page, read from the page and the answer key."""
    from core.extensions import db
    from courses.models import Choice, QuizAttempt

    questions: dict[str, list[str]] = {}
    for name, value in inputs(page):
        if name.startswith("q-"):
            questions.setdefault(name, []).append(value)
    assert questions, "no questions on the attempt page"
    with app.app_context():
        correct = set(db.session.scalars(select(Choice.id).where(Choice.correct.is_(True))))
        # the page carries per-attempt tokens; the attempts' own maps turn them back into choices
        tokens = {
            token: cid
            for mapping in db.session.scalars(select(QuizAttempt.tokens).where(QuizAttempt.tokens.is_not(None)))
            for token, (_, cid) in mapping.items()
        }
        db.session.remove()
    return {name: [c for c in choices if tokens.get(c) in correct] for name, choices in questions.items()}


def race(calls) -> list[Response]:
    """Run the calls in threads released at the same instant; return their responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Response | BaseException | None] = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except BaseException as error:  # reported below, in the test's thread
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def facts(app, arranged: Arranged) -> dict:
    from core.extensions import db
    from courses.models import AttemptAnswer, Enrollment, LessonProgress, QuizAttempt
    from credentials.models import Certificate, CertificateEvent

    with app.app_context():
        enrollment = db.session.get(Enrollment, arranged.enrollment_id)
        certificates = list(db.session.scalars(select(Certificate).where(Certificate.user_id == arranged.user_id)))
        result = {
            "completed": enrollment.completed_at is not None,
            "certificates": len(certificates),
            "issued_events": db.session.scalar(
                select(func.count())
                .select_from(CertificateEvent)
                .where(
                    CertificateEvent.certificate_id.in_([c.id for c in certificates]),
                    CertificateEvent.action == "issued",
                )
            ),
            "lesson_rows": db.session.scalar(
                select(func.count())
                .select_from(LessonProgress)
                .where(
                    LessonProgress.enrollment_id == arranged.enrollment_id,
                    LessonProgress.lesson_id == arranged.lesson_id,
                )
            ),
            "submitted_attempts": db.session.scalar(
                select(func.count())
                .select_from(QuizAttempt)
                .where(
                    QuizAttempt.enrollment_id == arranged.enrollment_id,
                    QuizAttempt.quiz_id == arranged.quiz_id,
                    QuizAttempt.submitted_at.is_not(None),
                )
            ),
            "answer_rows": db.session.scalar(
                select(func.count())
                .select_from(AttemptAnswer)
                .join(QuizAttempt, QuizAttempt.id == AttemptAnswer.attempt_id)
                .where(QuizAttempt.enrollment_id == arranged.enrollment_id, QuizAttempt.quiz_id == arranged.quiz_id)
            ),
        }
        db.session.remove()
    return result


def logged_in(servers, arranged: Arranged) -> tuple[Client, str]:
    """A client logged in through server A, and a CSRF token from server B: one signed session serves both."""
    client = Client()
    client.login(servers[0], arranged.email)
    return client, client.csrf(servers[1] + f"/courses/{COURSE}")


def both(servers) -> list[str]:
    """Each server's base URL THREADS_PER_SERVER times."""
    return [base for base in servers for _ in range(THREADS_PER_SERVER)]


def start_attempt(client: Client, servers, arranged: Arranged, token: str) -> tuple[str, str]:
    started = client.post(servers[0] + arranged.quiz_path + "/start", {"csrf_token": token})
    assert started.status == 303, started.text[:500]
    attempt_path = started.headers["location"].split("://", 1)[-1].split("/", 1)[-1]
    page = client.get(servers[1] + "/" + attempt_path)
    assert page.status == 200
    return "/" + attempt_path, page.text


def test_last_lesson_raced_across_servers_completes_once(servers, shared_app):
    for round_no in range(3):
        arranged = arrange(shared_app, f"lesson-race-{round_no}@example.org", lesson_left=True, quiz_left=False)
        client, token = logged_in(servers, arranged)
        path = arranged.lesson_path + "/complete"
        responses = race([partial(client.post, base + path, {"csrf_token": token}) for base in both(servers)])
        assert [r.status for r in responses] == [303] * len(responses), [(r.status, r.text[:300]) for r in responses]
        assert facts(shared_app, arranged) == {
            "completed": True,
            "certificates": 1,
            "issued_events": 1,
            "lesson_rows": 1,
            "submitted_attempts": 1,
            "answer_rows": 0,
        }


def test_last_quiz_submission_raced_across_servers_grades_once(servers, shared_app):
    for round_no in range(3):
        arranged = arrange(shared_app, f"quiz-race-{round_no}@example.org", lesson_left=False, quiz_left=True)
        client, token = logged_in(servers, arranged)
        attempt_path, page = start_attempt(client, servers, arranged, token)
        answers = right_answers(shared_app, page)
        form = {"csrf_token": token, **answers}
        responses = race([partial(client.post, base + attempt_path, form) for base in both(servers)])
        statuses = sorted(r.status for r in responses)
        # one submission is graded; the others are told it was already submitted
        assert statuses == [303] + [409] * (len(responses) - 1), [(r.status, r.text[:300]) for r in responses]
        assert facts(shared_app, arranged) == {
            "completed": True,
            "certificates": 1,
            "issued_events": 1,
            "lesson_rows": 1,
            "submitted_attempts": 1,
            "answer_rows": sum(len(v) for v in answers.values()),
        }


def test_last_lesson_and_last_quiz_on_different_servers_complete_once(servers, shared_app):
    """The two final steps at once, one per server: neither may miss the other's write (the enrollment lock)."""
    for round_no in range(3):
        arranged = arrange(shared_app, f"both-race-{round_no}@example.org", lesson_left=True, quiz_left=True)
        client, token = logged_in(servers, arranged)
        attempt_path, page = start_attempt(client, servers, arranged, token)
        form = {"csrf_token": token, **right_answers(shared_app, page)}
        lesson_url = servers[0] + arranged.lesson_path + "/complete"
        responses = race(
            [
                partial(client.post, lesson_url, {"csrf_token": token}),
                partial(client.post, servers[1] + attempt_path, form),
            ]
        )
        assert [r.status for r in responses] == [303, 303], [(r.status, r.text[:300]) for r in responses]
        result = facts(shared_app, arranged)
        assert result["completed"] and result["certificates"] == 1 and result["issued_events"] == 1, result


def test_rate_limit_holds_across_both_servers(servers):
    """VERIFY_LIMIT verifications per address in total, whichever server answers: then 429 on both."""
    url_path = "/api/v1/certificates/" + "0" * 28  # a well-formed ID that does not exist: 404
    client = Client()
    responses = race([partial(client.get, base + url_path) for base in servers for _ in range(8)])
    statuses = sorted(r.status for r in responses)
    assert statuses == [404] * VERIFY_LIMIT + [429] * (len(responses) - VERIFY_LIMIT), statuses
    for base in servers:
        refused = client.get(base + url_path)
        assert refused.status == 429, (base, refused.status)
        assert refused.headers.get("retry-after"), refused.headers
