"""What a signed-in learner's requests cost in SQL statements (issue 17: `make load` 3×), and that the cheaper
paths still write and show the same things.

The study routes read the course and its quizzes from the content cache (read-only shared objects) and write by
ids; the organization link in the navigation is known from the statement that loads the session's user.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import event, func, select

from core.extensions import db
from courses.models import LessonProgress, QuizAttempt
from insights.models import XapiStatement
from tests.factories import enroll, load_test_framework, make_course, make_employer, make_user, sign_in

COURSE = "/courses/ai-basics"
LESSON = COURSE + "/module-1/lesson-1-1"
QUIZ = COURSE + "/module-1/quiz"

# Statements per request with the content cache warm, on either database (PostgreSQL's are the larger where
# they differ: completion and submission also fold the insights day-rollup changes in before the commit).
# Before issue 17's load work: continue 13, lesson completion 37, quiz page 18, quiz start 23, attempt page 16,
# submission 26, result 19. The lesson page: 6, then 5; 2 since its enrollment and progress are one statement and
# the session's user comes with the content version (tests/test_signed_in_pages.py). Writes (loadx): completion
# 17 → 11 (the user with the content version; the enrollment read with its row lock instead of a second statement
# taking it; one INSERT … ON CONFLICT DO NOTHING instead of a savepoint around an ORM insert; the next step from
# one progress statement), quiz start 11 → 7 (opening an attempt no longer recomputes the learning-day rollup,
# which counts submitted attempts only), submission 16 → 12 (the lock with the read; no read-back of the graded
# attempt). The submission that completes a course and issues its certificate (load3): ~52 → 42 on PostgreSQL (the
# course from the outline the request read, not three statements; the subject salt and status slot written with
# the certificate's INSERT, not an UPDATE and a savepoint after it; the status list's id and fill in one statement;
# no read-back of completed_at); the certificate email's notice and job (which the test queue runs at once) count too.
# Then 40 → 36 (posts): the certificate by one INSERT … ON CONFLICT DO NOTHING RETURNING id instead of an existence
# check and a savepoint around an ORM insert, the final score and the status list's id and fill in one statement;
# 36 → 33: the insights people settle takes the users marked dirty by one DELETE … RETURNING (not a locking SELECT
# and a DELETE at the end), reads their remembered states with their enrollments in one statement, and upserts the
# new states (not a DELETE and an INSERT); 33 → 31: the last activity and the completion rule of a passed
# submission in one UPDATE … RETURNING completed_at (not touch's UPDATE, the rule's SELECT and the completing UPDATE).
# Then (posts2) completion 10 → 9 and submission 11 → 10: a last activity moved forward within its UTC day (read
# under the row lock) marks nobody for the insights people rollup, so no look for marked users before the commit; on
# PostgreSQL one fewer again (8, 9): the learning-day rollup's DELETE and INSERT are one statement. The completing
# submission 31 → 27 on PostgreSQL, 28 on SQLite (exact: COMPLETING): the xAPI statements of a transaction (answered,
# passed, completed, earned) in one INSERT before the commit, not one per receiver (3 → 1); on PostgreSQL the
# learning-day rollup in one statement and the certificate's "issued" event written by the certificate's INSERT.
BUDGET = {
    "continue": 5,
    "lesson page": 2,
    "complete": 9,
    "quiz page": 9,
    "quiz start": 4,
    "attempt page": 4,
    "submit": 10,
    "result": 7,
    "completing submit": 28,
}
COMPLETING = {"postgresql": 27, "sqlite": 28}


@pytest.fixture
def statements(app):
    """statements(fn) → the SQL text of every statement fn() ran."""

    def run(fn) -> list[str]:
        seen: list[str] = []

        def note(_conn, _cursor, statement, *_args) -> None:
            seen.append(statement)

        with app.app_context():
            engine = db.engine
        # the test's app context is the requests' too (the learner fixture pushed it), so they share one session
        # and its identity map, which holds objects weakly: what an earlier step left loaded, and so what a request
        # must load again, would depend on when the garbage collector ran (a 7-or-8 flake in a full-suite run).
        # Each measured request starts from an empty identity map, as it does in production.
        db.session.expunge_all()
        event.listen(engine, "before_cursor_execute", note)
        try:
            fn()
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return seen

    return run


@pytest.fixture
def learner(client, ctx):
    load_test_framework()
    user = make_user(email="lee@example.org", name="Lee Learner")
    sign_in(client, "lee@example.org")
    return user


def right_answers(client, attempt_url: str) -> dict:
    html = client.get(attempt_url).get_data(as_text=True)
    data = {}
    for body in re.findall(r'<fieldset class="question">(.*?)</fieldset>', html, flags=re.S):
        name = re.search(r'name="(q-\d+)"', body).group(1)
        data[name] = re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">Right', body).group(1)
    return data


def journey_costs(client, statements, slug: str) -> dict[str, int]:
    """Statements of each study request of one lesson and one quiz of course ``slug``, warm cache."""
    course = f"/courses/{slug}"
    lesson, quiz = course + "/module-1/lesson-1-1", course + "/module-1/quiz"
    for path in (course, lesson, quiz):
        client.get(path)  # fills this content version's cache, as the first learner of the day does
    costs = {}
    costs["continue"] = len(statements(lambda: client.get(course + "/continue")))
    costs["lesson page"] = len(statements(lambda: client.get(lesson)))
    token = client.csrf_token(lesson)
    costs["complete"] = len(statements(lambda: client.post(lesson + "/complete", data={"csrf_token": token})))
    costs["quiz page"] = len(statements(lambda: client.get(quiz)))
    token = client.csrf_token(quiz)
    started = []
    costs["quiz start"] = len(
        statements(lambda: started.append(client.post(quiz + "/start", data={"csrf_token": token})))
    )
    attempt = started[0].headers["Location"]
    costs["attempt page"] = len(statements(lambda: client.get(attempt)))
    data = {**right_answers(client, attempt), "csrf_token": client.csrf_token(attempt)}
    submitted = []
    costs["submit"] = len(statements(lambda: submitted.append(client.post(attempt, data=data))))
    assert submitted[0].status_code == 303 and submitted[0].headers["Location"] == attempt
    costs["result"] = len(statements(lambda: client.get(attempt)))
    return costs


def test_study_requests_stay_within_their_statement_budget_whatever_the_course_size(client, learner, statements):
    enroll(learner, make_course("ai-basics", modules=2, lessons=2, questions=2))
    enroll(learner, make_course("big-course", modules=8, lessons=6, questions=6))
    small = journey_costs(client, statements, "ai-basics")
    large = journey_costs(client, statements, "big-course")
    assert small == large  # constant: nothing grows with the number of modules, lessons or questions
    over = {name: (cost, BUDGET[name]) for name, cost in small.items() if cost > BUDGET[name]}
    assert not over, over


def test_lesson_completion_through_the_shared_outline_records_the_row_event_and_next_step(client, learner):
    course = make_course("ai-basics")
    enrollment = enroll(learner, course)
    response = client.submit(LESSON + "/complete", page=LESSON)
    assert response.status_code == 303
    assert response.headers["Location"] == COURSE + "/module-1/lesson-1-2"
    row = db.session.scalar(select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id))
    assert row.lesson_id == course.modules[0].lessons[0].id
    # the learning event walks lesson → module → course on the shared (detached) outline
    event_row = db.session.scalar(select(XapiStatement).where(XapiStatement.verb == "completed"))
    statement = event_row.statement if isinstance(event_row.statement, dict) else json.loads(event_row.statement)
    assert statement["object"]["id"].endswith("/courses/ai-basics/module-1/lesson-1-1")
    # a double submit is still one row
    again = client.submit(LESSON + "/complete", page=LESSON)
    assert again.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(LessonProgress)) == 1


def test_progress_writes_read_the_enrollment_with_its_row_lock_and_take_it_once(client, learner, statements):
    """The enrollment's row lock serializes a learner's progress writes (a lesson in one tab, a quiz in another):
    the write routes read the enrollment with it instead of reading it and then locking it."""
    enroll(learner, make_course("ai-basics"))
    token = client.csrf_token(LESSON)
    sent = statements(lambda: client.post(LESSON + "/complete", data={"csrf_token": token}))
    attempt = client.submit(QUIZ + "/start", page=QUIZ).headers["Location"]
    data = {**right_answers(client, attempt), "csrf_token": client.csrf_token(attempt)}
    sent_submit = statements(lambda: client.post(attempt, data=data))
    postgres = db.engine.dialect.name == "postgresql"
    for seen in (sent, sent_submit):
        reads = [s for s in seen if s.lstrip().startswith("SELECT enrollments.")]
        assert len(reads) == 1, reads  # one read of the enrollment, no second statement for the lock
        assert reads[0].rstrip().endswith("FOR UPDATE") == postgres  # SQLite serializes writers without it
    assert db.session.scalar(select(func.count()).select_from(LessonProgress)) == 1
    assert db.session.scalar(select(QuizAttempt.submitted_at)) is not None


def test_quiz_from_the_shared_cache_grades_numbers_attempts_and_reports_the_event(client, learner):
    enroll(learner, make_course("ai-basics", pass_mark=100))
    first = client.submit(QUIZ + "/start", page=QUIZ).headers["Location"]
    assert first == QUIZ + "/attempts/1"
    wrong = {
        name: re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">Wrong', body).group(1)
        for body in re.findall(
            r'<fieldset class="question">(.*?)</fieldset>', client.get(first).get_data(as_text=True), flags=re.S
        )
        for name in [re.search(r'name="(q-\d+)"', body).group(1)]
    }
    assert client.submit(first, wrong).status_code == 303
    second = client.submit(QUIZ + "/start", page=QUIZ).headers["Location"]
    assert second == QUIZ + "/attempts/2"  # numbered from the attempts already read, no second query
    assert client.submit(second, right_answers(client, second)).status_code == 303
    attempts = list(db.session.scalars(select(QuizAttempt).order_by(QuizAttempt.attempt_no)))
    assert [(a.attempt_no, a.score, a.passed) for a in attempts] == [(1, 0, False), (2, 100, True)]
    verbs = list(db.session.scalars(select(XapiStatement.verb)))
    assert verbs.count("passed") == 1 and verbs.count("failed") == 1


def test_a_learner_in_no_organization_costs_no_membership_query(client, learner, statements):
    enroll(learner, make_course("ai-basics"))
    client.get("/dashboard")
    seen = statements(lambda: client.get("/dashboard"))
    assert not [s for s in seen if re.search(r"FROM memberships\b", s) and "EXISTS" not in s]
    assert "My organizations</a></li>" not in client.get("/dashboard").get_data(as_text=True).split("<main")[0]


def test_a_member_still_sees_their_organization_in_the_navigation(client, ctx):
    load_test_framework()
    _, org = make_employer("hr@example.org", org_name="Acme Staffing")
    sign_in(client, "hr@example.org")
    header = client.get("/courses").get_data(as_text=True).split("<main")[0]
    assert f'href="/organizations/{org.slug}"' in header and "Acme Staffing" in header


def test_catalog_filters_mark_the_chosen_option_as_wtforms_would(client, learner):
    from wtforms import SelectField

    make_course("ai-basics")
    for query, expected in [
        ("?language=es", '<option lang="es" selected value="es">'),
        ("?goal=G1", '<option selected value="G1">'),
        ("?skill=AIL-01", '<option selected value="AIL-01">'),
        ("?occupation=43-4051.00", '<option selected value="43-4051.00">'),
        ("?audience=", '<option selected value="">'),
    ]:
        for _ in range(2):  # the first request renders the options, the second serves them from the cache
            html = client.get("/courses" + query).get_data(as_text=True)
            assert expected in html, query
            assert html.count(" selected value=") == 1, query
    # nothing chosen, or a value no option has: no option marked (as WTForms does)
    for query in ("", "?goal=G99", '?skill="><script>'):
        html = client.get("/courses" + query).get_data(as_text=True)
        assert " selected value=" not in html and "<script>" not in html.split("<main")[1].split("</form>")[0]
    # the same markup WTForms renders for a chosen value, option for option
    from courses.forms import CatalogSearchForm
    from courses.views import _filter_choices, _filter_selects

    with client.application.test_request_context("/courses?occupation=43-4051.00&language=en"):
        from flask import request

        form = CatalogSearchForm(request.args)
        _filter_choices(form)
        ours = _filter_selects(form)
        for name in ("occupation", "language", "goal"):
            assert str(ours[name]) == str(getattr(form, name)()), name
            assert isinstance(getattr(form, name), SelectField)


def test_the_signed_in_header_from_the_per_process_copy_matches_a_full_render(client, learner, app):
    from flask import render_template

    from core.header import cached_site_header

    learner.name = 'Lee <b>"Learner"</b> \x1eawa-csrf\x1e'  # markup, and a marker, in a name: shown as text
    db.session.commit()
    enroll(learner, make_course("ai-basics"))
    for path in ("/courses", "/dashboard", "/courses/ai-basics?x=%22%3E%3Cscript%3E"):
        page = client.get(path).get_data(as_text=True)
        header = page.split('<header class="site-header">')[1].split("</header>")[0]
        assert "Lee &lt;b&gt;&#34;Learner&#34;&lt;/b&gt; \x1eawa-csrf\x1e" in header
        assert "<script>" not in header and "\x1eawa-next\x1e" not in header
        token = re.search(r'name="csrf_token" value="([^"]+)"', header).group(1)
        assert "awa-csrf" not in token
    # the language switcher returns to this page, and its form's token is this session's
    header = client.get("/courses?goal=G1").get_data(as_text=True).split("</header>")[0]
    assert 'name="next" value="/courses?goal=G1"' in header
    token = re.search(r'name="csrf_token" value="([^"]+)"', header).group(1)
    switched = client.post("/language/es", data={"csrf_token": token, "next": "/courses?goal=G1"})
    assert switched.status_code in (302, 303) and switched.headers["Location"].endswith("/courses?goal=G1")
    # the same bytes as the template rendered in full for this request
    with app.test_request_context("/courses?goal=G1"):
        from flask_login import login_user

        login_user(learner)
        learner.has_memberships = False
        cached = str(cached_site_header())
        learner.has_memberships = None  # unknown: the template is rendered in full
        assert cached_site_header() is None
        full = render_template("_site_header.html")
        assert cached == full


def test_the_submission_that_completes_a_course_issues_its_certificate_in_few_statements(client, learner, statements):
    """The completing request writes the certificate with its subject salt and status slot in its INSERT (no UPDATE
    after it), reads the course from the outline the request already holds, and reads back nothing it wrote."""
    from credentials.models import Certificate, CertificateEvent

    for slug in ("first-course", "ai-basics"):
        enroll(learner, make_course(slug, modules=1, lessons=1, questions=2))
    costs = {}
    for slug in ("first-course", "ai-basics"):  # the first issuance also opens the status list
        course = f"/courses/{slug}"
        lesson, quiz = course + "/module-1/lesson-1-1", course + "/module-1/quiz"
        assert client.submit(lesson + "/complete", page=lesson).status_code == 303
        attempt = client.submit(quiz + "/start", page=quiz).headers["Location"]
        data = {**right_answers(client, attempt), "csrf_token": client.csrf_token(attempt)}
        done: list = []
        costs[slug] = statements(lambda a=attempt, d=data, out=done: out.append(client.post(a, data=d)))
        assert done[0].status_code == 303 and done[0].headers["Location"] == course + "/done"
    seen = costs["ai-basics"]
    assert not [s for s in seen if s.lstrip().startswith("UPDATE certificates")], seen
    assert not [s for s in seen if "SAVEPOINT" in s], seen  # the unique constraints decide, not a savepoint
    assert not [s for s in seen if s.lstrip().startswith("SELECT certificates.")], seen  # no existence check
    assert not [s for s in seen if s.lstrip().startswith("SELECT courses.")], seen  # the outline the request read
    assert not [s for s in seen if s.lstrip().startswith("SELECT enrollments.completed_at")], seen
    assert len(seen) == COMPLETING[db.engine.dialect.name] <= BUDGET["completing submit"], (len(seen), seen)
    # the four xAPI statements (answered, passed, the course completed, the certificate earned) in one INSERT
    assert len([s for s in seen if s.lstrip().startswith("INSERT INTO xapi_statements")]) == 1, seen
    events = [s for s in seen if "INSERT INTO certificate_events" in s]
    assert len(events) == 1 and ("INSERT INTO certificates" in events[0]) == (db.engine.dialect.name == "postgresql")
    # (writes) the completion rule asked once, not lessons then quizzes; the flash's score not read back after the
    # commit: 42 → 40
    assert len([s for s in seen if "FROM quizzes JOIN modules" in s]) == 1, seen
    assert len([s for s in seen if s.lstrip().startswith("SELECT quiz_attempts.")]) == 1, seen
    certificates = list(db.session.scalars(select(Certificate).order_by(Certificate.id)))
    assert len(certificates) == 2
    assert all(c.subject_salt and len(c.subject_salt) == 32 for c in certificates)
    assert certificates[0].status_list_id == certificates[1].status_list_id is not None
    assert certificates[0].status_list_index != certificates[1].status_list_index
    issued = db.session.scalars(select(CertificateEvent.certificate_id).where(CertificateEvent.action == "issued"))
    assert sorted(issued) == [c.id for c in certificates]
    verbs = list(db.session.scalars(select(XapiStatement.verb)))
    assert verbs.count("earned") == 2 and verbs.count("completed") == 4  # two lessons and two courses


def test_a_write_rolled_back_leaves_nothing_to_settle_for_the_next_transaction(client, learner, statements):
    """A write to enrollments notes itself on the pooled connection (insights.people settles such writes before the
    commit); a transaction that rolled back must not leave that note to a later one (a stray settle query: it made
    the constant-statement test above read 8 statements instead of 7 in a full-suite run)."""
    from courses.models import Enrollment

    enrollment_id = enroll(learner, make_course("ai-basics")).id
    db.session.commit()
    quiz = "/courses/ai-basics/module-1/quiz"
    token = client.csrf_token(quiz)
    before = statements(lambda: client.post(quiz + "/start", data={"csrf_token": token}))
    db.session.execute(Enrollment.__table__.update().where(Enrollment.id == enrollment_id).values(completed_at=None))
    db.session.rollback()
    token = client.csrf_token(quiz)
    again = statements(lambda: client.post(quiz + "/start", data={"csrf_token": token}))  # the open attempt again
    assert not any("insights_people_dirty" in s for s in again), again
    assert len(again) <= len(before)


# Every POST of `make load`'s mix (issue 17, writes), exactly, per database: PostgreSQL's enroll also folds the
# insights day-rollup changes its triggers appended. Before: enroll 18 on PostgreSQL / 17 on SQLite (the enrollment
# read twice, a savepoint around an ORM insert, the user read back after the commit for the flash's language), quiz
# start 7 (a savepoint around an ORM insert whose mapper event also looked up the learner's organizations, though
# opening an attempt changes no report), lesson completion 11 (the rule's EXISTS query, then the progress for the
# next step: one statement now). Then (posts) enroll 13 → 10 (12 → 9 on SQLite): the insights people settle in 6
# statements instead of 9 on PostgreSQL, and a passed submission 12 → 11 (see BUDGET). Then (posts2) completion and
# submission one fewer on both (no look for marked users after a same-day activity), one more fewer on PostgreSQL
# (the learning-day rollup in one statement): complete 10 → 8 / 9, submit 11 → 9 / 10.
POSTS = {
    "postgresql": {"enroll": 10, "complete": 8, "quiz start": 4, "submit": 9, "logout": 2},
    "sqlite": {"enroll": 9, "complete": 9, "quiz start": 4, "submit": 10, "logout": 2},
}


def test_each_post_of_the_load_mix_sends_exactly_its_statements(client, learner, statements):
    enroll(learner, make_course("ai-basics", modules=2, lessons=2, questions=2))
    make_course("other-course", modules=1, lessons=1, questions=2)
    lesson, quiz = LESSON, QUIZ
    for path in (COURSE, lesson, quiz, "/courses/other-course"):
        client.get(path)  # this content version's cache filled
    seen = {}
    token = client.csrf_token("/courses/other-course")
    done = []
    seen["enroll"] = statements(
        lambda: done.append(client.post("/courses/other-course/enroll", data={"csrf_token": token}))
    )
    assert done[-1].status_code == 303 and done[-1].headers["Location"] == "/courses/other-course/continue"
    token = client.csrf_token(lesson)
    seen["complete"] = statements(lambda: done.append(client.post(lesson + "/complete", data={"csrf_token": token})))
    assert done[-1].headers["Location"] == COURSE + "/module-1/lesson-1-2"
    token = client.csrf_token(quiz)
    seen["quiz start"] = statements(lambda: done.append(client.post(quiz + "/start", data={"csrf_token": token})))
    attempt = done[-1].headers["Location"]
    assert attempt == QUIZ + "/attempts/1"
    data = {**right_answers(client, attempt), "csrf_token": client.csrf_token(attempt)}
    seen["submit"] = statements(lambda: done.append(client.post(attempt, data=data)))
    assert done[-1].status_code == 303 and done[-1].headers["Location"] == attempt
    token = client.csrf_token("/dashboard")
    seen["logout"] = statements(lambda: done.append(client.post("/logout", data={"csrf_token": token})))
    assert done[-1].status_code in (302, 303)
    counts = {name: len(sent) for name, sent in seen.items()}
    assert counts == POSTS[db.engine.dialect.name], seen
    for name, sent in seen.items():
        assert not [s for s in sent if "SAVEPOINT" in s], name  # the unique constraints decide races, not savepoints
    # opening an attempt looks nothing up for the report cache (reports count submitted attempts only)
    assert not [s for s in seen["quiz start"] if "cohort_members" in s]
    # the enrollment is not read before it is written, and the user is not read back after the commit
    assert not [s for s in seen["enroll"] if s.lstrip().startswith("SELECT enrollments.id")]
    assert [s.lstrip()[:24] for s in seen["enroll"]].count("SELECT users.id, users.e") == 1


def test_enroll_start_and_activity_by_core_statements_keep_their_rows_events_and_report_counters(client, learner):
    """Enrolling and opening an attempt are one INSERT … ON CONFLICT DO NOTHING each, the xAPI statements and the
    last activity Core statements: double submits still write one row, every event is still recorded, and the
    report cache of the learner's organization is still told of what changes a report (and only of that)."""
    from courses.models import Enrollment
    from insights.models import ReportVersion
    from tests.factories import join_cohort, make_cohort, make_org

    course = make_course("ai-basics", modules=1, lessons=2, questions=2)
    org = make_org(name="Acme Board")
    join_cohort(make_cohort(org, [course]), learner)
    db.session.commit()
    scope = f"org:{org.id}"

    def version() -> int:
        return db.session.scalar(select(ReportVersion.version).where(ReportVersion.scope == scope)) or 0

    def verbs() -> list[str]:
        return list(db.session.scalars(select(XapiStatement.verb).order_by(XapiStatement.timestamp)))

    before = version()
    for _ in range(2):  # a double click
        response = client.submit(COURSE + "/enroll", page=COURSE)
        assert response.status_code == 303 and response.headers["Location"] == COURSE + "/continue"
    rows = list(db.session.scalars(select(Enrollment).where(Enrollment.user_id == learner.id)))
    assert len(rows) == 1 and rows[0].course_id == course.id and rows[0].completed_at is None
    assert rows[0].enrolled_at == rows[0].last_activity_at is not None
    assert verbs() == ["registered"]
    assert version() > before  # a new enrollment changes the organization's reports
    page = client.get(COURSE + "/continue", follow_redirects=True).get_data(as_text=True)
    assert "You are enrolled in" in page and "Here is your first lesson" in page

    assert client.submit(LESSON + "/complete", page=LESSON).status_code == 303
    first_activity = db.session.scalar(select(Enrollment.last_activity_at).where(Enrollment.id == rows[0].id))
    before = version()
    again = client.submit(LESSON + "/complete", page=LESSON)  # no new row: only the last activity moves
    assert again.status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(Enrollment.last_activity_at).where(Enrollment.id == rows[0].id)) > first_activity
    assert version() > before  # reports show the last activity (inactivity exits)
    assert verbs().count("completed") == 1

    before = version()
    starts = [client.submit(QUIZ + "/start", page=QUIZ) for _ in range(2)]
    assert [s.headers["Location"] for s in starts] == [QUIZ + "/attempts/1"] * 2  # the open attempt again
    assert db.session.scalar(select(func.count()).select_from(QuizAttempt)) == 1
    assert version() == before  # an opened attempt changes no report
    attempt = starts[0].headers["Location"]
    assert client.submit(attempt, right_answers(client, attempt)).status_code == 303
    assert version() > before
    assert sorted(verbs()[-2:]) == ["answered", "passed"]  # one INSERT: the two share a timestamp
    graded = db.session.scalar(select(QuizAttempt))
    assert graded.score == 100 and graded.passed is True and graded.tokens and graded.layout


def test_the_lesson_that_completes_a_course_completes_it_once_from_the_rule_and_steps_in_one_statement(
    client, learner, statements
):
    """Lesson completion reads the completion rule and the next step in one statement: the enrollment's lessons and
    passes with the course's lessons and quizzes as the database has them. Out of order, the next step is the first
    unfinished one; the last lesson (the quiz passed before it) completes the course once and issues its certificate;
    in a renewal only passes since it started count."""
    from datetime import timedelta

    from core.database import utcnow
    from courses.models import Enrollment
    from credentials.models import Certificate
    from tests.factories import passed_attempt

    course = make_course("ai-basics", modules=1, lessons=2, questions=2)
    enrollment = enroll(learner, course)
    quiz = course.modules[0].quiz
    db.session.add(passed_attempt(enrollment, quiz, now=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    enrollment_id = enrollment.id
    second = COURSE + "/module-1/lesson-1-2"
    token = client.csrf_token(second)
    done = []
    sent = statements(lambda: done.append(client.post(second + "/complete", data={"csrf_token": token})))
    assert done[0].status_code == 303 and done[0].headers["Location"] == LESSON  # the first unfinished step
    assert len([s for s in sent if "FROM quizzes JOIN modules" in s]) == 1, sent  # the rule and the steps
    # not the rule's own query (the learning-day rollup's anti-join on PostgreSQL is a NOT EXISTS of its own)
    assert not [s for s in sent if "NOT (EXISTS" in s and "learning_days" not in s], sent
    assert client.submit(LESSON + "/complete", page=LESSON).headers["Location"] == COURSE + "/done"
    db.session.expire_all()
    row = db.session.get(Enrollment, enrollment_id)
    assert row.completed_at is not None
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1
    # again (a double submit, a revisit): no second completion, back to the course page
    again = client.submit(LESSON + "/complete", page=LESSON)
    assert again.status_code == 303 and again.headers["Location"] == COURSE
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1

    # a renewal started after the pass: the lessons are done, the quiz must be passed again
    row.completed_at, row.renewal_started_at = None, utcnow()
    db.session.commit()
    response = client.submit(LESSON + "/complete", page=LESSON)
    assert response.status_code == 303 and response.headers["Location"] == QUIZ
    db.session.expire_all()
    assert db.session.get(Enrollment, enrollment_id).completed_at is None


def test_a_certificate_written_with_its_event_in_one_statement_is_still_settled_before_the_commit(
    client, learner, statements
):
    """On PostgreSQL a certificate and its "issued" event are one statement that starts with WITH: the insights
    people rollup still learns that certificates were written and settles the learner before the commit (here
    without a completion in the same transaction, which would tell it anyway)."""
    from core.database import utcnow
    from courses.models import Enrollment
    from credentials import services as credential_services
    from insights.models import PeopleDirty, PeopleState

    enrollment_id = enroll(learner, make_course("ai-basics", modules=1, lessons=1, questions=2)).id
    user_id = learner.id
    db.session.commit()

    def issue() -> None:
        enrollment = db.session.get(Enrollment, enrollment_id)
        credential_services.issue_for_enrollment(enrollment, now=utcnow(), issuer="Test Issuer")
        db.session.commit()

    sent = statements(issue)
    writes = [s for s in sent if "INSERT INTO certificate_events" in s]
    assert len(writes) == 1 and ("INSERT INTO certificates" in writes[0]) == (db.engine.dialect.name == "postgresql")
    assert db.session.scalar(select(func.count()).select_from(PeopleDirty)) == 0  # settled before the commit
    state = db.session.scalar(select(PeopleState.state).where(PeopleState.user_id == user_id))
    state = state if isinstance(state, list) else json.loads(state)
    assert [entry[3] is not None for entry in state] == [True]  # the certificate counts (its lag in days)
