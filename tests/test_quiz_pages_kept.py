"""The attempt and result pages (issue 17) are skeletons kept per address, their question lists put together from
pieces kept per question and choice (courses/views.py): byte for byte what the templates rendered before
(tests/data/quiz_templates/, rendered here as the oracle with the context the views passed them), in English and
Spanish, open and submitted, with a refused submission's error and answers, passed and failed; a publish shows
on the next request."""

from __future__ import annotations

import contextvars
import html
import re
from pathlib import Path

import pytest
from flask import render_template_string, template_rendered
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core.database import utcnow
from core.extensions import db
from core.forms import ButtonForm
from courses import services
from courses.models import Choice, Course, Question, QuestionKind, Quiz, QuizAttempt
from tests.factories import enroll, make_course, make_user, sign_in
from tests.test_signed_in_lane import TOKEN_RE, fresh_lane

OLD = Path(__file__).parent / "data" / "quiz_templates"
COURSE = "/courses/ai-basics"
QUIZ = COURSE + "/module-1/quiz"
SPANISH = {"Accept-Language": "es"}
ERROR_RE = re.compile(r'<div class="form-errors" role="alert"><p>(.*?)</p></div>', re.S)


@pytest.fixture
def quiz_course(app, ctx):
    """A course whose first quiz has three questions, the second one "choose all" with two right choices, and
    text that needs escaping; at most two attempts."""
    fresh_lane(app)
    course = make_course("ai-basics", questions=3, pass_mark=100, max_attempts=2)
    quiz = db.session.scalar(select(Quiz).where(Quiz.title == "Quiz 1"))
    second = db.session.scalar(select(Question).where(Question.quiz_id == quiz.id, Question.prompt == "Question 1.2?"))
    second.kind = QuestionKind.MULTIPLE
    also = db.session.scalar(select(Choice).where(Choice.text == "Also wrong 1.2"))
    also.text, also.correct = 'Right too <b>1.2</b> & "quoted"', True
    first = db.session.scalar(select(Question).where(Question.prompt == "Question 1.1?"))
    first.prompt = "Question 1.1: <i>tags</i> & 'quotes'?"
    db.session.commit()
    return course


def signed_in(client, email: str, name: str, course) -> None:
    enroll(make_user(email=email, name=name), course)
    sign_in(client, email)
    client.get("/help")  # "Welcome back" shown and gone


def start(client) -> str:
    response = client.submit(QUIZ + "/start", page=QUIZ)
    assert response.status_code == 303, response.status_code
    return response.headers["Location"]


def answers(page: str, *, right: bool, skip_last: bool = False) -> dict:
    """The form a learner sends: every right choice (``right``) or the first wrong one of each question."""
    data = MultiDict()
    questions = re.findall(r'<fieldset class="question">(.*?)</fieldset>', page, flags=re.S)
    for body in questions[:-1] if skip_last else questions:
        name = re.search(r'name="(q-\d+)"', body).group(1)
        choices = re.findall(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+"(?: lang="\w+")?>([^<]*)', body)
        wanted = [token for token, text in choices if text.startswith("Right") == right]
        for token in wanted if right else wanted[:1]:
            data.add(name, token)
    return data


def send(client, url: str, data: MultiDict, **headers):
    """POST the answers (several values per question kept) with a CSRF token, as the browser would."""
    payload = MultiDict(data)
    payload.add("csrf_token", client.csrf_token(url))
    return client.post(url, data=payload, headers=headers)


def old_page(app, client, path: str, *, error=None, previous=None, **headers) -> str:
    """``path``'s page as the old template renders it, given what the old view passed it (read here afresh, in a
    request context of its own, as the client's requests run)."""
    return contextvars.Context().run(_old_page, app, client, path, error, previous, headers)


def _old_page(app, client, path: str, error, previous, headers: dict) -> str:
    slug, module_slug, number = re.fullmatch(r"/courses/([^/]+)/([^/]+)/quiz/attempts/(\d+)", path).groups()
    cookie = client.get_cookie("session").value
    # the client's address and User-Agent: the session's login is bound to them (session protection)
    environ = client.environ_base
    with app.test_request_context(path, headers={"Cookie": f"session={cookie}", **headers}, environ_base=environ):
        app.preprocess_request()  # the request hooks (the signed-in user, the page language)
        course = services.outline(slug)
        enrollment = services.get_enrollment(current_user, course)
        module = next(m for m in course.modules if m.slug == module_slug)
        quiz = services.quiz_outline(module)
        attempt = db.session.scalar(
            select(QuizAttempt).where(
                QuizAttempt.enrollment_id == enrollment.id,
                QuizAttempt.quiz_id == quiz.id,
                QuizAttempt.attempt_no == int(number),
            )
        )
        questions = {q.id: q for q in quiz.questions}
        choices = {c.id: c for q in quiz.questions for c in q.choices}
        layout = [(questions[q], [choices[c] for c in cids if c in choices]) for q, cids in attempt.layout]
        common = {"course": course, "module": module, "quiz": quiz, "attempt": attempt, "layout": layout}
        common.update(form=ButtonForm(), error=error)
        if attempt.submitted_at is None:
            source = (OLD / "attempt.html").read_text()
            return render_template_string(source, tokens=services.token_of(attempt), previous=previous, **common)
        progress = services.progress_for(enrollment, course)
        step = services.next_step(course, progress)
        attempts = services.attempts_for(enrollment, quiz)
        blocked = services.attempt_block_reason(quiz, attempts, now=utcnow())
        chosen = {q.id: set() for q in quiz.questions} | {int(k): set(v) for k, v in attempt.answers.items()}
        reveal = bool(attempt.passed) or (
            blocked is not None and len([a for a in attempts if a.submitted_at]) >= quiz.max_attempts
        )
        if step is None:
            next_url = None
        elif step[0] == "lesson":
            next_url = f"/courses/{slug}/{step[1].slug}/{step[2].slug}"
        else:
            next_url = f"/courses/{slug}/{step[1].slug}/quiz"
        return render_template_string(
            (OLD / "result.html").read_text(),
            answers=chosen,
            correct_ids={q.id: {c.id for c in q.choices if c.correct} for q in quiz.questions},
            reveal=reveal,
            next_url=next_url,
            blocked=blocked,
            progress=progress,
            **common,
        )


def same(new: str, old: str) -> str:
    """Assert ``new`` is ``old`` byte for byte but for the CSRF tokens (signed at another second); returns it."""
    new_bytes, old_bytes = TOKEN_RE.sub(r"\1T", new), TOKEN_RE.sub(r"\1T", old)
    if new_bytes != old_bytes:
        import difflib

        diff = "\n".join(difflib.unified_diff(old_bytes.splitlines(), new_bytes.splitlines(), lineterm="", n=2))
        pytest.fail("the page differs from the old template's:\n" + diff[:4000])
    return new


def shown(app, client, path: str, **headers) -> str:
    """The page at ``path``, twice (the first request keeps its skeleton, the second is filled from it without
    rendering a template): both equal to the old template's page."""
    pages, rendered = [], []

    def note(sender, template, context, **extra):
        rendered.append(template.name)

    for turn in range(2):
        rendered.clear()
        with template_rendered.connected_to(note, app):
            response = client.get(path, headers=headers)
        assert response.status_code == 200, response.status_code
        if turn == 1:
            assert rendered == [], f"the kept page was rendered again: {rendered}"
        pages.append(same(response.get_data(as_text=True), old_page(app, client, path, **headers)))
    assert TOKEN_RE.sub("", pages[0]) == TOKEN_RE.sub("", pages[1])
    return pages[0]


def test_open_attempts_are_the_old_templates_page_in_english_and_spanish(client, other_client, app, quiz_course):
    signed_in(client, "ann@example.org", 'Ann <b>"First"</b>', quiz_course)
    signed_in(other_client, "bob@example.org", "Bob Second", quiz_course)
    url = start(client)
    page = shown(app, client, url)
    assert "Choose all that apply." in page and "Question 3 of 3." in page
    assert "Question 1.1: &lt;i&gt;tags&lt;/i&gt; &amp; &#39;quotes&#39;?" in page
    assert "Right too &lt;b&gt;1.2&lt;/b&gt; &amp; &#34;quoted&#34;" in page
    spanish = shown(app, client, url, **SPANISH)
    assert "Pregunta 3 de 3." in spanish and '<label for="c-1-1" lang="en">' in spanish
    # Bob's attempt 1 at the same address: the same kept skeleton, his own order and tokens
    bob_url = start(other_client)
    assert bob_url == url
    bob_page = shown(app, other_client, url)
    mine = set(re.findall(r'value="([\w-]{20,})"', page))
    assert mine and not mine & set(re.findall(r'value="([\w-]{20,})"', bob_page))
    # a refused submission (a question left out): its error and the answers given, checked again (422)
    data = answers(page, right=True, skip_last=True)
    for headers in ({}, SPANISH):
        refused = send(client, url, data, **headers)
        assert refused.status_code == 422
        body = refused.get_data(as_text=True)
        error = html.unescape(ERROR_RE.search(body).group(1))
        same(body, old_page(app, client, url, error=error, previous=MultiDict(data), **headers))
        assert body.count("checked>") == len(list(data.items(multi=True))) >= 2
    # an empty submission is refused the same way
    empty = send(client, url, MultiDict())
    assert empty.status_code == 422 and "checked>" not in empty.get_data(as_text=True)
    error = html.unescape(ERROR_RE.search(empty.get_data(as_text=True)).group(1))
    same(empty.get_data(as_text=True), old_page(app, client, url, error=error, previous=MultiDict()))
    # and the page asked for again has no error
    assert 'role="alert"' not in shown(app, client, url)


def test_results_passed_failed_and_used_up_are_the_old_templates_page(client, other_client, app, quiz_course):
    signed_in(client, "ann@example.org", "Ann First", quiz_course)
    signed_in(other_client, "bob@example.org", "Bob Second", quiz_course)
    # Ann fails once: not revealed, she may try again
    url = start(client)
    assert send(client, url, answers(client.get(url).get_data(as_text=True), right=False)).status_code == 303
    failed = shown(app, client, url)
    assert "Not passed yet" in failed and "Try again" in failed and "(correct)" not in failed
    assert failed.count("<strong>Your answer:</strong>") == 3
    assert "Intentar de nuevo" in shown(app, client, url, **SPANISH)
    # she fails again: her attempts are used up, the right answers and why are shown
    second = start(client)
    assert send(client, second, answers(client.get(second).get_data(as_text=True), right=False)).status_code == 303
    used_up = shown(app, client, second)
    assert "You have used all 2 attempts" in used_up and "(correct)" in used_up and "✗ Not quite:" in used_up
    shown(app, client, second, **SPANISH)
    # the first result now reveals too (the attempts are used up): another skeleton, the old page
    assert "Because 1.1." in shown(app, client, url)
    # Bob passes at once: revealed, the next step linked
    bob = start(other_client)
    assert send(other_client, bob, answers(other_client.get(bob).get_data(as_text=True), right=True)).status_code == 303
    passed = shown(app, other_client, bob)
    assert "You passed" in passed and "✓ Correct:" in passed and "Attempt 1: 100%" in passed
    assert 'href="/courses/ai-basics/module-1/lesson-1-1">Continue</a>' in passed  # his first step not done
    assert "Intento 1: 100\xa0%" in shown(app, other_client, bob, **SPANISH)
    # a publish (a question's new wording) shows on the next request, still the old template's page
    question = db.session.scalar(select(Question).where(Question.prompt == "Question 1.3?"))
    question.prompt = "Question 1.3, reworded?"
    db.session.commit()
    assert "Question 1.3, reworded?" in shown(app, other_client, bob)
    assert "Question 1.3, reworded?" in shown(app, client, second)


def test_a_course_in_another_language_than_the_page(client, app, quiz_course):
    course = db.session.scalar(select(Course).where(Course.slug == "ai-basics"))
    course.language = "es"
    db.session.commit()
    signed_in(client, "ann@example.org", "Ann First", quiz_course)
    url = start(client)
    assert '<label for="c-1-1" lang="es">' in shown(app, client, url)
    assert send(client, url, answers(client.get(url).get_data(as_text=True), right=True)).status_code == 303
    assert '<span lang="es">Right 1.1</span>' in shown(app, client, url)
    assert '<li><strong>Su respuesta:</strong> <span lang="es">Right 1.1</span>' not in shown(
        app, client, url, **SPANISH
    )  # a Spanish course on a Spanish page: no language marks
    assert "<li><strong>Su respuesta:</strong> Right 1.1 <em>" in shown(app, client, url, **SPANISH)
