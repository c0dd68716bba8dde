"""Quiz pages (issue 17): the quiz page answered by the signed-in lane (courses/lane.py) byte for byte as the app
answers it, shared by learners whose attempts read the same and never while a cooldown runs; the attempt and result
pages in three statements."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from accounts.models import Role, User
from core.extensions import db
from courses import lane as signed_lane
from courses.models import Question, Quiz
from tests.conftest import queries_run
from tests.factories import enroll, make_course, make_user, sign_in
from tests.test_signed_in_lane import TOKEN_RE, both_ways, fresh_lane, not_answered

COURSE = "/courses/ai-basics"
QUIZ = COURSE + "/module-1/quiz"


@pytest.fixture
def fresh(app, ctx):
    fresh_lane(app)


def signed_in(client, email: str, name: str = "Lee Learner", course=None):
    user = make_user(email=email, name=name)
    if course is not None:
        enroll(user, course)
    sign_in(client, email)
    client.get("/help")  # "Welcome back" shown and gone: nothing flashed is left
    return user


def start(client) -> str:
    response = client.submit(QUIZ + "/start", page=QUIZ)
    assert response.status_code == 303, response.status_code
    return response.headers["Location"]


def answer_all(client, url: str, *, right: bool) -> None:
    html = client.get(url).get_data(as_text=True)
    data = {}
    for body in re.findall(r'<fieldset class="question">(.*?)</fieldset>', html, flags=re.S):
        name = re.search(r'name="(q-\d+)"', body).group(1)
        wanted = "Right" if right else "Wrong"
        data[name] = re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">' + wanted, body).group(1)
    assert client.submit(url, data).status_code == 303


def test_the_quiz_page_is_the_apps_answer_shared_by_learners_in_the_same_state(client, other_client, app, fresh):
    course = make_course("ai-basics", pass_mark=100)
    signed_in(client, "ann@example.org", 'Ann <b>"First"</b>', course)
    signed_in(other_client, "bob@example.org", "Bob Second", course)
    page = both_ways(app, client, QUIZ)
    assert "Start the quiz" in page and "Ann &lt;b&gt;&#34;First&#34;&lt;/b&gt;" in page
    # Bob, who has no attempt either: the page kept from Ann's request, with his name and his own token
    the_lane = signed_lane.find(app)
    before = the_lane.answered
    bob_page = other_client.get(QUIZ).get_data(as_text=True)
    assert the_lane.answered == before + 1
    assert "Bob Second" in bob_page and "Ann" not in bob_page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', bob_page).group(1)
    started = other_client.post(QUIZ + "/start", data={"csrf_token": token})
    assert started.status_code == 303 and started.headers["Location"].endswith("/attempts/1")
    # his new attempt shows on his next request; Ann's page is still the one without attempts
    assert "Continue attempt 1" in both_ways(app, other_client, QUIZ)
    assert "Continue attempt 1" not in both_ways(app, client, QUIZ)
    # Spanish, from the browser
    assert 'lang="es"' in both_ways(app, client, QUIZ, **{"Accept-Language": "es"})
    # a kept page: no statement of the app's, one read on the lane's own connection
    reads = the_lane.reads
    assert queries_run(app, lambda: client.get(QUIZ)) == 0
    assert the_lane.reads == reads + 1


def test_the_quiz_page_follows_attempts_and_leaves_a_running_cooldown_to_the_app(client, app, fresh):
    make_course("ai-basics", pass_mark=100)
    from courses.models import Course

    course = db.session.scalar(select(Course).where(Course.slug == "ai-basics"))
    signed_in(client, "lee@example.org", course=course)
    assert "Start the quiz" in both_ways(app, client, QUIZ)
    url = start(client)
    assert "Continue attempt 1" in both_ways(app, client, QUIZ)
    answer_all(client, url, right=False)
    page = both_ways(app, client, QUIZ)
    assert "Try again" in page and "not yet passed" in page and ">0%<" in page
    # two failures in a row: a 30-minute wait whose minutes count down: the app answers every time
    answer_all(client, start(client), right=False)
    for _ in range(2):
        waiting = not_answered(app, lambda: client.get(QUIZ))
        assert waiting.status_code == 200 and "Please wait 30 more minutes" in waiting.get_data(as_text=True)
    # a publish (a new quiz title) shows on the next request
    quiz = db.session.scalar(select(Quiz).where(Quiz.title == "Quiz 2"))
    quiz.title = "Renamed quiz"
    db.session.commit()
    assert "Renamed quiz" in both_ways(app, client, COURSE + "/module-2/quiz")


def test_used_up_attempts_are_kept_a_cooldown_is_not(client, other_client, app, fresh):
    limited = make_course("ai-basics", pass_mark=100, max_attempts=1)
    signed_in(client, "lee@example.org", course=limited)
    answer_all(client, start(client), right=False)
    assert "You have used your 1 attempt" in both_ways(app, client, QUIZ)
    # a cooldown between attempts: the wait changes with the clock
    cooled = make_course("cooled", cooldown_minutes=10, pass_mark=100)
    signed_in(other_client, "ann@example.org", course=cooled)
    response = other_client.submit("/courses/cooled/module-1/quiz/start", page="/courses/cooled/module-1/quiz")
    answer_all(other_client, response.headers["Location"], right=False)
    for _ in range(2):
        waiting = not_answered(app, lambda: other_client.get("/courses/cooled/module-1/quiz"))
        assert "Please wait 10 more minutes" in waiting.get_data(as_text=True)


def test_what_the_lane_leaves_to_the_app_on_quiz_pages(client, other_client, app, fresh):
    course = make_course("ai-basics")
    lee = signed_in(client, "lee@example.org", course=course)
    both_ways(app, client, QUIZ)
    # not enrolled: the app's 403; no such module, or a module without a quiz: its 404
    make_course("other")
    assert not_answered(app, lambda: client.get("/courses/other/module-1/quiz")).status_code == 403
    assert not_answered(app, lambda: client.get(COURSE + "/module-9/quiz")).status_code == 404
    assert not_answered(app, lambda: client.get(COURSE + "/module-1/quiz?lang=es")).status_code == 200
    # an admin (the header's Studio link), and the same learner made admin: the app
    make_user(email="admin@example.org", role=Role.ADMIN)
    enroll(db.session.get(User, db.session.scalar(select(User.id).where(User.email == "admin@example.org"))), course)
    sign_in(other_client, "admin@example.org")
    other_client.get("/help")
    for _ in range(2):
        page = not_answered(app, lambda: other_client.get(QUIZ))
        assert page.status_code == 200 and "Studio" in page.get_data(as_text=True)
    db.session.execute(update(User).where(User.id == lee.id).values(role=Role.ADMIN))
    db.session.commit()
    assert "Studio" in not_answered(app, lambda: client.get(QUIZ)).get_data(as_text=True)


def test_attempts_and_results_answered_by_the_lane(client, other_client, app, fresh):
    course = make_course("ai-basics", questions=4)
    signed_in(client, "lee@example.org", "Lee Learner", course)
    signed_in(other_client, "ann@example.org", "Ann First", course)
    url = start(client)
    page = both_ways(app, client, url)  # the lane's answer is the app's, byte for byte
    assert "Question 4 of 4." in page and "Lee Learner" in page
    the_lane = signed_lane.find(app)
    reads = the_lane.reads
    assert queries_run(app, lambda: client.get(url)) == 0
    assert the_lane.reads == reads + 1
    # Ann has no attempt 1 of her own: the same address is not Lee's attempt for her
    assert not_answered(app, lambda: other_client.get(url)).status_code == 404
    # her own attempt 1: the page kept from Lee's request, with her name, her order and her tokens
    assert start(other_client) == url
    ann = lane_answers(app, other_client, url)
    assert "Ann First" in ann and "Lee" not in ann
    mine = set(re.findall(r'value="([\w-]{20,})"', page))
    hers = set(re.findall(r'value="([\w-]{20,})"', ann))
    assert len(hers) == 12 and not mine & hers
    answer_all(other_client, url, right=True)  # her tokens are accepted: she passes
    assert "Attempt 1: 100%" in other_client.get(url).get_data(as_text=True)
    # a publish (a question reworded) shows on Lee's next request, then the lane answers again
    question = db.session.scalar(select(Question).where(Question.prompt == "Question 1.2?"))
    question.prompt = "Question 1.2, reworded?"
    db.session.commit()
    assert "Question 1.2, reworded?" in not_answered(app, lambda: client.get(url)).get_data(as_text=True)
    assert "Question 1.2, reworded?" in both_ways(app, client, url)
    # submitted: the result page, kept for Lee alone; the lane's answer is the app's, byte for byte
    answer_all(client, url, right=True)
    result = not_answered(app, lambda: client.get(url))
    assert result.status_code == 200 and "Attempt 1: 100%" in result.get_data(as_text=True)
    page = both_ways(app, client, url)
    assert "You passed" in page and "Lee Learner" in page
    reads = the_lane.reads
    assert queries_run(app, lambda: lane_answers(app, client, url)) == 0
    assert the_lane.reads == reads + 1
    # Ann's result at the same address is not Lee's: hers, from the app
    assert "Ann First" in not_answered(app, lambda: other_client.get(url)).get_data(as_text=True)
    # what the page shows changes (a lesson done moves the progress bar and the next step): the app again
    assert client.submit(COURSE + "/module-1/lesson-1-1/complete").status_code == 303
    moved = not_answered(app, lambda: client.get(url)).get_data(as_text=True)
    assert "lesson-1-2" in moved and moved != page
    assert "lesson-1-2" in both_ways(app, client, url)
    assert other_client.get(url[: -len("1")] + "2").status_code == 404


def test_a_result_with_a_wait_running_shows_the_minutes_left_as_the_app_does(client, app, fresh, monkeypatch):
    from datetime import timedelta

    from core.database import utcnow
    from courses import views

    moment = [utcnow()]
    monkeypatch.setattr(views, "utcnow", lambda: moment[0])
    monkeypatch.setattr(signed_lane, "utcnow", lambda: moment[0])
    course = make_course("cooled", cooldown_minutes=10, pass_mark=100, max_attempts=3)
    quiz = "/courses/cooled/module-1/quiz"
    signed_in(client, "ann@example.org", "Ann First", course)
    url = client.submit(quiz + "/start", page=quiz).headers["Location"]
    answer_all(client, url, right=False)
    moment[0] += timedelta(seconds=30)
    client.get(url)  # the app's answer gives the lane the quiz's rules
    waiting = both_ways(app, client, url)  # the minutes left, worked out by the lane as the app does
    assert "Please wait 10 more minutes" in waiting and "Try again" not in waiting
    assert "Espere 10 minutos más" in both_ways(app, client, url, **{"Accept-Language": "es"})
    moment[0] += timedelta(minutes=9)  # a minute left: the same kept page, another reason
    assert "Please wait 1 more minute before" in lane_answers(app, client, url)
    assert "Please wait 1 more minute before" in both_ways(app, client, url)
    moment[0] += timedelta(minutes=1)  # over: another page ("Try again"), from the app, then kept
    over = not_answered(app, lambda: client.get(url)).get_data(as_text=True)
    assert "Try again" in over and "Please wait" not in over
    assert "Try again" in both_ways(app, client, url)


def test_an_unconfirmed_learner_gets_pages_kept_for_unconfirmed_accounts(client, other_client, app, fresh):
    """`make load`'s learners have not confirmed their address: the lane serves them too, from pages the app
    answered for an unconfirmed account (never a confirmed learner's page), until they confirm."""
    course = make_course("ai-basics")
    lesson = COURSE + "/module-1/lesson-1-1"
    signed_in(client, "ann@example.org", "Ann First", course)
    neo = make_user(email="neo@example.org", name="Neo New", verified=False)
    enroll(neo, course)
    sign_in(other_client, "neo@example.org")
    other_client.get("/help")
    for path in (lesson, QUIZ, COURSE):
        both_ways(app, client, path)  # kept for confirmed accounts
        first = not_answered(app, lambda path=path: other_client.get(path))  # not for Neo: the app answers
        assert first.status_code == 200 and "Neo New" in first.get_data(as_text=True)
        page = both_ways(app, other_client, path)  # then kept for unconfirmed accounts, and equal to the app's
        assert "Neo New" in page and "Ann" not in page
    # once he confirms, the confirmed learners' kept page (filled with his values) is his answer
    db.session.execute(update(User).where(User.id == neo.id).values(email_verified_at=db.func.now()))
    db.session.commit()
    before = signed_lane.find(app).answered
    confirmed = other_client.get(lesson).get_data(as_text=True)
    assert signed_lane.find(app).answered == before + 1 and "Neo New" in confirmed
    assert "Neo New" in both_ways(app, other_client, lesson)


def test_a_renewal_an_archived_course_a_draft_and_a_member_on_quiz_pages(client, other_client, app, fresh):
    from core.database import utcnow
    from courses.models import Course, CourseStatus, Enrollment
    from tests.factories import make_org

    course = make_course("ai-basics", pass_mark=100)
    lee = signed_in(client, "lee@example.org", course=course)
    answer_all(client, start(client), right=False)
    page = both_ways(app, client, QUIZ)
    assert "Try again" in page and "Your attempts" in page
    # a renewal starts a new cycle: the earlier attempts no longer count, nor show
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == lee.id))
    enrollment.renewal_started_at = utcnow()
    db.session.commit()
    page = both_ways(app, client, QUIZ)
    assert "Start the quiz" in page and "Your attempts" not in page
    # archived: still open to the learners enrolled in it (the lane answers as the app does), 404 to others
    db.session.scalar(select(Course).where(Course.slug == "ai-basics")).status = CourseStatus.ARCHIVED
    db.session.commit()  # through the ORM: a content change, which moves the content version
    assert "Start the quiz" in both_ways(app, client, QUIZ)
    signed_in(other_client, "ann@example.org", "Ann First")
    assert not_answered(app, lambda: other_client.get(QUIZ)).status_code == 404
    # a draft: 404 for everyone
    make_course("drafty", status=CourseStatus.DRAFT)
    assert not_answered(app, lambda: client.get("/courses/drafty/module-1/quiz")).status_code == 404
    # an organization member's header lists their organizations: the app answers, every time
    make_org(lee)
    for _ in range(2):
        member_page = not_answered(app, lambda: client.get(QUIZ))
        assert member_page.status_code == 200 and "My organizations" in member_page.get_data(as_text=True)


def moved_back(email: str, minutes: int) -> None:
    """The learner's quiz attempts as if submitted (and started) ``minutes`` earlier than they were."""
    from datetime import timedelta

    from courses.models import Enrollment, QuizAttempt

    user_id = db.session.scalar(select(User.id).where(User.email == email))
    enrollment_id = db.session.scalar(select(Enrollment.id).where(Enrollment.user_id == user_id))
    for attempt in db.session.scalars(select(QuizAttempt).where(QuizAttempt.enrollment_id == enrollment_id)):
        attempt.started_at -= timedelta(minutes=minutes)
        attempt.submitted_at -= timedelta(minutes=minutes)
    db.session.commit()


def lane_answers(app, client, path: str) -> str:
    """``path`` answered by the lane itself (from a page kept from someone else's request); returns the body."""
    the_lane = signed_lane.find(app)
    before = the_lane.answered
    response = client.get(path)
    assert the_lane.answered == before + 1, f"the lane did not answer {path}"
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_learners_with_the_same_attempts_share_a_quiz_page_once_no_wait_runs(client, other_client, app, fresh):
    course = make_course("cooled", cooldown_minutes=10, pass_mark=100)
    quiz = "/courses/cooled/module-1/quiz"
    signed_in(client, "ann@example.org", "Ann First", course)
    signed_in(other_client, "bob@example.org", "Bob Second", course)
    for each in (client, other_client):  # one failed attempt each, at different moments
        url = each.submit(quiz + "/start", page=quiz).headers["Location"]
        answer_all(each, url.replace("http://localhost", ""), right=False)
    # ten minutes between attempts: the wait runs, the app answers and keeps nothing
    for each in (client, other_client):
        assert "Please wait 10 more minutes" in not_answered(app, lambda each=each: each.get(quiz)).get_data(True)
    # Ann's wait is over: her page is kept; Bob's, over at another moment, is that page with his values
    moved_back("ann@example.org", 11)
    moved_back("bob@example.org", 25)
    ann = both_ways(app, client, quiz)
    assert "Try again" in ann and "Please wait" not in ann and "Ann First" in ann
    bob = lane_answers(app, other_client, quiz)
    assert "Bob Second" in bob and "Ann" not in bob
    # Cy failed the same way just now: the page kept for these attempts is not his, his wait runs
    cy_client = app.test_client()
    signed_in(cy_client, "cy@example.org", "Cy Third", course)
    answer_all(cy_client, cy_client.submit(quiz + "/start", page=quiz).headers["Location"], right=False)
    assert "Please wait 10 more minutes" in not_answered(app, lambda: cy_client.get(quiz)).get_data(True)
    assert TOKEN_RE.sub(r'\1X"', bob.replace("Bob Second", "Ann First")) == TOKEN_RE.sub(r'\1X"', ann)
    # his token is his session's: the start POST accepts it
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', bob).group(1)
    started = other_client.post(quiz + "/start", data={"csrf_token": token})
    assert started.status_code == 303 and started.headers["Location"].endswith("/attempts/2")
    # a second failure in a row: the 30-minute wait after two failures runs, and the app answers
    answer_all(other_client, started.headers["Location"], right=False)
    for _ in range(2):
        waiting = not_answered(app, lambda: other_client.get(quiz)).get_data(as_text=True)
        assert "Please wait 30 more minutes" in waiting
    moved_back("bob@example.org", 20)  # 20 minutes on: still 10 to wait
    assert "Please wait 10 more minutes" in not_answered(app, lambda: other_client.get(quiz)).get_data(True)
    moved_back("bob@example.org", 11)  # and over: kept again, for anyone with these two attempts
    assert "Try again" in both_ways(app, other_client, quiz)


def test_used_up_attempts_and_an_open_attempt_are_shared_whatever_the_times(client, other_client, app, fresh):
    course = make_course("ai-basics", cooldown_minutes=60, pass_mark=100, max_attempts=1)
    signed_in(client, "ann@example.org", "Ann First", course)
    signed_in(other_client, "bob@example.org", "Bob Second", course)
    # an open attempt: "continue attempt 1" for both
    urls = [start(client), start(other_client)]
    assert "Continue attempt 1" in both_ways(app, client, QUIZ)
    assert "Continue attempt 1" in lane_answers(app, other_client, QUIZ)
    # the one attempt used, at different moments: no new attempt, whenever; the cooldown does not apply
    for each, url in zip((client, other_client), urls, strict=True):
        answer_all(each, url, right=False)
    moved_back("bob@example.org", 5)
    page = both_ways(app, client, QUIZ)
    assert "You have used your 1 attempt" in page and "Please wait" not in page
    assert "You have used your 1 attempt" in lane_answers(app, other_client, QUIZ)


@pytest.mark.nodb
def test_the_lanes_wait_follows_the_quiz_rules(app):
    """``courses.lane.waiting`` against ``courses.services.attempt_block_reason`` (the app's rule) on random
    attempt histories and rules, at moments around each wait's end."""
    import random
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from courses.services import attempt_block_reason, attempts_used_up

    rng = random.Random(17)
    start_at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    with app.test_request_context("/"):
        for _ in range(400):
            rules = (rng.choice([None, 1, 2, 3]), rng.choice([0, 5, 10]), rng.choice([0, 30]))
            quiz = SimpleNamespace(max_attempts=rules[0], cooldown_minutes=rules[1], failure_cooldown_minutes=rules[2])
            attempts, at = [], start_at
            for number in range(1, rng.randint(0, 4) + 1):
                at += timedelta(minutes=rng.randint(0, 40), microseconds=rng.randint(0, 999_999))
                open_one = number == 4 or rng.random() < 0.1
                passed = None if open_one else rng.random() < 0.3
                attempts.append(
                    SimpleNamespace(attempt_no=number, passed=passed, submitted_at=None if open_one else at)
                )
                if open_one:
                    break
            history = tuple(
                (a.attempt_no, a.passed, a.submitted_at.isoformat(sep=" ") if a.submitted_at else "") for a in attempts
            )
            for now in (
                at + timedelta(minutes=m, microseconds=u) for m in (0, 4, 5, 9, 10, 29, 30, 31) for u in (-1, 0, 1)
            ):
                blocked = attempt_block_reason(quiz, attempts, now=now)
                running = (
                    blocked is not None
                    and not attempts_used_up(quiz, attempts)
                    and all(a.submitted_at is not None for a in attempts)
                )
                assert signed_lane.waiting(rules, history, now) == running, (rules, history, now, blocked)
