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
from courses.models import Quiz
from tests.conftest import queries_run
from tests.factories import enroll, login, make_course, make_user
from tests.test_signed_in_lane import both_ways, fresh_lane, not_answered

COURSE = "/courses/ai-basics"
QUIZ = COURSE + "/module-1/quiz"


@pytest.fixture
def fresh(app, ctx):
    fresh_lane(app)


def signed_in(client, email: str, name: str = "Lee Learner", course=None):
    user = make_user(email=email, name=name)
    if course is not None:
        enroll(user, course)
    login(client, email)
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
    login(other_client, "admin@example.org")
    other_client.get("/help")
    for _ in range(2):
        page = not_answered(app, lambda: other_client.get(QUIZ))
        assert page.status_code == 200 and "Studio" in page.get_data(as_text=True)
    db.session.execute(update(User).where(User.id == lee.id).values(role=Role.ADMIN))
    db.session.commit()
    assert "Studio" in not_answered(app, lambda: client.get(QUIZ)).get_data(as_text=True)


def test_the_attempt_and_result_pages_take_three_statements_and_are_the_learners_own(client, other_client, app, fresh):
    course = make_course("ai-basics", questions=4)
    signed_in(client, "lee@example.org", course=course)
    signed_in(other_client, "ann@example.org", "Ann First", course)
    url = start(client)
    client.get(url)
    assert queries_run(app, lambda: client.get(url)) == 3
    # Ann has no attempt 1 of her own: the same address is not Lee's attempt for her
    assert other_client.get(url).status_code == 404
    answer_all(client, url, right=True)
    result = client.get(url)
    assert result.status_code == 200 and "Attempt 1: 100%" in result.get_data(as_text=True)
    assert queries_run(app, lambda: client.get(url)) == 3
    assert other_client.get(url).status_code == 404
    assert client.get(url[: -len("1")] + "2").status_code == 404


def test_an_unconfirmed_learner_gets_pages_kept_for_unconfirmed_accounts(client, other_client, app, fresh):
    """`make load`'s learners have not confirmed their address: the lane serves them too, from pages the app
    answered for an unconfirmed account (never a confirmed learner's page), until they confirm."""
    course = make_course("ai-basics")
    lesson = COURSE + "/module-1/lesson-1-1"
    signed_in(client, "ann@example.org", "Ann First", course)
    neo = make_user(email="neo@example.org", name="Neo New", verified=False)
    enroll(neo, course)
    login(other_client, "neo@example.org")
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
