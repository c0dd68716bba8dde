"""Issue 12, item 4: the quiz answer oracle, and stale attempts across a renewal (item 12).

Choice inputs carried database ids in authoring order (the lowest id was right in 99 of 112 questions), and
per-question ✓/✗ after every attempt let anyone pass by elimination. Now: random per-attempt tokens, verdicts
only after a pass or the last attempt, and a wait after two failed attempts in a row.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.database import utcnow
from core.extensions import db
from courses import services
from courses.models import Choice, Question, QuizAttempt
from tests.factories import enroll, make_course, make_user, sign_in

QUIZ = "/courses/ai-basics/module-1/quiz"


@pytest.fixture
def learner(ctx, client):
    from tests.factories import load_test_framework

    load_test_framework()
    user = make_user(email="lee@example.org", name="Lee Learner")
    sign_in(client, "lee@example.org")
    return user


def start(client) -> str:
    response = client.submit(QUIZ + "/start", page=QUIZ)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def choose(client, url: str, *, right: bool) -> dict[str, str]:
    html = client.get(url).get_data(as_text=True)
    wanted = "Right" if right else "Wrong"
    data = {}
    for body in re.findall(r'<fieldset class="question">(.*?)</fieldset>', html, flags=re.S):
        name = re.search(r'name="(q-\d+)"', body).group(1)
        data[name] = re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">' + wanted, body).group(1)
    return data


def test_the_attempt_form_carries_no_database_ids(client, learner):
    course = make_course("ai-basics", questions=3)
    enroll(learner, course)
    html = client.get(start(client)).get_data(as_text=True)
    names = re.findall(r'name="(q-[^"]+)"', html)
    values = re.findall(r'type="(?:radio|checkbox)" id="[^"]+" name="q-\d+" value="([^"]+)"', html)
    ids = re.findall(r'id="(c-[^"]+)"', html)
    assert set(names) == {"q-1", "q-2", "q-3"}  # positions in this attempt, not question ids
    choice_ids = {str(c) for c in db.session.scalars(select(Choice.id))}
    question_ids = {str(q) for q in db.session.scalars(select(Question.id))}
    assert values and not set(values) & choice_ids
    assert all(re.fullmatch(r"[\w-]{22}", v) for v in values)  # 128 random bits each
    assert not {i.removeprefix("c-") for i in ids} & choice_ids
    assert not {n.removeprefix("q-") for n in names} - {"1", "2", "3"} or not question_ids


def test_tokens_are_new_for_every_attempt_and_only_valid_in_their_own(client, learner):
    course = make_course("ai-basics", pass_mark=100)
    enroll(learner, course)
    first = start(client)
    wrong_first = choose(client, first, right=False)
    right_first = choose(client, first, right=True)
    assert client.submit(first, wrong_first).status_code == 303
    second = start(client)
    right_second = choose(client, second, right=True)
    assert set(right_second.values()).isdisjoint(right_first.values())
    # last attempt's tokens (the "right" ones learned from its page) mean nothing in this one
    stale = client.submit(second, {name: right_first.get(name, "x") for name in right_second})
    assert stale.status_code == 422 and "do not match this quiz" in stale.get_data(as_text=True)
    attempt = db.session.scalar(select(QuizAttempt).where(QuizAttempt.attempt_no == 2))
    db.session.refresh(attempt)
    assert attempt.submitted_at is None


def test_verdicts_appear_only_after_a_pass_or_the_last_attempt(client, learner):
    course = make_course("ai-basics", pass_mark=100)
    course.modules[0].quiz.max_attempts = 2
    course.modules[0].quiz.failure_cooldown_minutes = 0
    db.session.commit()
    enroll(learner, course)
    first = start(client)
    client.submit(first, choose(client, first, right=False))
    page = client.get(first).get_data(as_text=True)
    assert "Not passed yet" in page
    for hint in ("✓ Correct", "✗ Not quite", "(correct)", "Because 1."):
        assert hint not in page, hint
    assert "or have used all 2 attempts" in page

    second = start(client)
    client.submit(second, choose(client, second, right=False))
    page = client.get(second).get_data(as_text=True)
    assert "You have used all 2 attempts" in page
    assert "✗ Not quite" in page and "(correct)" in page and "Because 1.1." in page


def test_two_failed_attempts_in_a_row_start_the_default_cooldown(client, learner):
    course = make_course("ai-basics", pass_mark=100)
    quiz = course.modules[0].quiz
    assert quiz.failure_cooldown_minutes == 30 and quiz.cooldown_minutes == 0 and quiz.max_attempts is None
    enroll(learner, course)
    for _ in range(2):
        url = start(client)
        client.submit(url, choose(client, url, right=False))
    refused = client.submit(QUIZ + "/start", page=QUIZ)
    assert refused.status_code == 409 and "Please wait 30 more minutes" in refused.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(QuizAttempt)) == 2

    enrollment = db.session.scalar(select(QuizAttempt)).enrollment
    later = utcnow() + timedelta(minutes=31)
    attempt = services.start_attempt(enrollment, services.load_quiz(quiz.id), now=later)
    assert attempt.attempt_no == 3


def test_authors_can_change_or_switch_off_the_cooldown(client, learner):
    course = make_course("ai-basics", pass_mark=100)
    course.modules[0].quiz.failure_cooldown_minutes = 0
    db.session.commit()
    enroll(learner, course)
    for _ in range(3):
        url = start(client)
        assert client.submit(url, choose(client, url, right=False)).status_code == 303
    assert start(client).endswith("/attempts/4")


def test_the_studio_sets_the_cooldown_and_course_files_carry_it(client, ctx):
    from accounts.models import Role
    from courses.catalog import apply_spec, course_spec, spec_files
    from courses.models import Course
    from tests import factories
    from tests.factories import load_test_framework
    from tests.test_studio import post

    load_test_framework()
    make_user(email="ada@example.org", role=Role.ADMIN)
    make_course("ai-basics")
    sign_in(client, "ada@example.org")
    page = client.get("/studio/ai-basics/modules/0/quiz").get_data(as_text=True)
    assert 'name="failure_cooldown_minutes"' in page
    data = {
        "title": "Q",
        "pass_mark": "70",
        "failure_cooldown_minutes": "120",
        "questions": "? Is it?\n* yes\n- no\n> Because.",
    }
    assert post(client, "/studio/ai-basics/modules/0/quiz", data, slug="ai-basics").status_code == 303
    from courses.models import CourseDraft

    draft = db.session.scalar(select(CourseDraft))
    db.session.refresh(draft)
    assert draft.spec["modules"][0]["quiz"]["failure_cooldown_minutes"] == 120

    spec = factories.course_spec("cooling")
    spec.modules[0].quiz.failure_cooldown_minutes = 120
    course, _ = apply_spec(spec, now=utcnow())
    db.session.commit()
    assert course.modules[0].quiz.failure_cooldown_minutes == 120
    files = spec_files(course_spec(db.session.get(Course, course.id)))
    assert "failure_cooldown_minutes: 120" in files["course.yaml"]
    default = spec_files(course_spec(db.session.scalar(select(Course).where(Course.slug == "ai-basics"))))
    assert "failure_cooldown_minutes" not in default["course.yaml"]  # the default is not written out


def test_an_attempt_opened_before_a_renewal_cannot_be_submitted_after_it(client, learner):
    from tests.factories import complete_course

    course = make_course("ai-basics", modules=1)
    complete_course(learner, course, now=utcnow() - timedelta(days=700))  # expires within 60 days
    old = start(client)  # opened before renewing, answers read at leisure
    answers = choose(client, old, right=True)
    assert client.submit("/courses/ai-basics/renew", page="/courses/ai-basics").status_code == 303
    late = client.submit(old, answers)
    assert late.status_code in (409, 422) and "opened before you started renewing" in late.get_data(as_text=True)
    attempt = db.session.scalar(select(QuizAttempt).where(QuizAttempt.started_at > utcnow() - timedelta(hours=1)))
    db.session.refresh(attempt)
    assert attempt.submitted_at is None and attempt.score is None
