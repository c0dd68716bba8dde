"""xAPI learning records and the admin insights (candidate lists are tested in test_orgs.py)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from courses.models import Question, QuizAttempt
from insights import xapi
from insights.models import XapiStatement
from tests.factories import load_test_framework, make_course, make_user, sign_in
from tests.test_learning import answers_for

ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def assert_valid_statement(statement: dict) -> None:
    """The xAPI 1.0.3 rules our statements must meet."""
    assert uuid.UUID(statement["id"]).version == 4
    actor = statement["actor"]
    assert set(actor["account"]) == {"homePage", "name"} and "mbox" not in actor and "@" not in json.dumps(actor)
    assert statement["verb"]["id"].startswith(("http://adlnet.gov/expapi/verbs/", "http://id.tincanapi.com/verb/"))
    assert statement["object"]["objectType"] == "Activity" and statement["object"]["id"].startswith("http")
    assert statement["object"]["definition"]["type"].startswith("http")
    assert statement["timestamp"].endswith("Z")
    result = statement.get("result", {})
    if "duration" in result:
        assert ISO_DURATION.match(result["duration"]), result["duration"]
    if "score" in result and "scaled" in result["score"]:
        assert -1 <= result["score"]["scaled"] <= 1


def test_a_learners_journey_is_recorded_as_xapi_statements(client, ctx):
    load_test_framework()
    user = make_user(email="lee.private@example.org")
    sign_in(client, "lee.private@example.org")
    make_course("ai-basics", modules=1, lessons=1, questions=1)
    client.submit("/courses/ai-basics/enroll", page="/courses/ai-basics")
    lesson = "/courses/ai-basics/module-1/lesson-1-1"
    client.submit(lesson + "/complete", page=lesson)
    client.submit(lesson + "/complete", page=lesson)  # a double click records nothing more
    quiz = "/courses/ai-basics/module-1/quiz"
    url = client.submit(quiz + "/start", page=quiz).headers["Location"]
    client.submit(url, answers_for(url, client))
    rows = list(db.session.scalars(select(XapiStatement).order_by(XapiStatement.timestamp, XapiStatement.verb)))
    verbs = [r.verb for r in rows]
    assert sorted(verbs) == sorted(["registered", "completed", "answered", "passed", "completed", "earned"])
    for row in rows:
        assert_valid_statement(row.statement)
        assert row.statement["actor"]["account"]["name"] == f"learner-{user.id}"
        assert "lee.private" not in json.dumps(row.statement)
    passed = next(r.statement for r in rows if r.verb == "passed")
    assert passed["result"]["success"] is True and passed["result"]["score"]["raw"] == 100
    assert passed["object"]["id"] == "http://127.0.0.1:5000/courses/ai-basics/module-1/quiz"


def test_failed_attempts_are_recorded_as_failed(client, ctx):
    load_test_framework()
    make_user(email="lee@example.org")
    sign_in(client, "lee@example.org")
    make_course("ai-basics", modules=1, lessons=1, questions=1, pass_mark=100)
    client.submit("/courses/ai-basics/enroll", page="/courses/ai-basics")
    quiz = "/courses/ai-basics/module-1/quiz"
    url = client.submit(quiz + "/start", page=quiz).headers["Location"]
    client.submit(url, answers_for(url, client, right=False))
    failed = db.session.scalar(select(XapiStatement).where(XapiStatement.verb == "failed"))
    assert failed.statement["result"]["success"] is False and failed.statement["result"]["score"]["scaled"] == 0


@pytest.mark.nodb
def test_iso_durations():
    assert xapi.iso_duration(0) == "PT0S" and xapi.iso_duration(3723) == "PT1H2M3S" and xapi.iso_duration(-5) == "PT0S"


def _statements(n: int, now):
    for i in range(n):
        xapi.record(
            base_url="http://127.0.0.1:5000",
            user_id=None,
            verb="completed",
            activity_iri=f"http://127.0.0.1:5000/courses/x/m/l{i}",
            activity_type="lesson",
            name=f"L{i}",
            now=now - timedelta(days=i),
        )
    db.session.commit()


def test_admins_export_a_date_range_as_json_lines(client, ctx):
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    now = utcnow()
    _statements(5, now)
    start, end = (now - timedelta(days=2)).date().isoformat(), (now + timedelta(days=1)).date().isoformat()
    response = client.get(f"/admin/xapi.jsonl?from={start}&to={end}")
    lines = response.get_data(as_text=True).splitlines()
    assert response.mimetype == "application/x-ndjson" and len(lines) == 3
    assert all(json.loads(line)["version"] == "1.0.3" for line in lines)
    assert client.get("/admin/xapi.jsonl?from=yesterday").status_code == 400
    assert client.get(f"/admin/xapi.jsonl?from={end}&to={start}").status_code == 400


def test_forwarding_retries_and_never_sends_a_statement_twice(ctx):
    now = utcnow()
    _statements(3, now)
    calls, failures = [], {"left": 2}

    def flaky(endpoint, username, password, body, timeout):
        calls.append(body["id"])
        if failures["left"] and len(calls) == 1:
            failures["left"] -= 1
            raise OSError("connection reset")
        return 409 if len(calls) == 3 else 200

    sent, failed = xapi.forward(
        endpoint="https://lrs.example", username="u", password="p", now=utcnow, send=flaky, sleep=lambda s: None
    )
    assert (sent, failed) == (3, 0) and len(calls) == 4  # the first was retried once
    again = xapi.forward(
        endpoint="https://lrs.example", username="u", password="p", now=utcnow, send=flaky, sleep=lambda s: None
    )
    assert again == (0, 0) and len(calls) == 4
    assert db.session.scalar(select(func.count()).where(XapiStatement.sent_at.is_(None))) == 0


def test_a_down_lrs_leaves_statements_for_the_next_run(ctx):
    _statements(2, utcnow())

    def down(*args):
        raise OSError("no route to host")

    sent, failed = xapi.forward(
        endpoint="https://lrs.example",
        username="u",
        password="p",
        now=utcnow,
        send=down,
        sleep=lambda s: None,
        retries=2,
    )
    assert (sent, failed) == (0, 2)
    rows = list(db.session.scalars(select(XapiStatement)))
    assert all(r.sent_at is None and r.attempts == 1 and "no route" in r.last_error for r in rows)


# ---- dashboard and reports on a hand-built data set with known answers ------------------------------


@pytest.fixture
def known_data(ctx):
    """Course A: 3 learners (2 complete after 2 and 4 days; the 4-day certificate is revoked). Course B: 2 learners
    in the period (one of them also in A; the other completes after 1 day) and 1 enrollment outside it. Both courses
    serve goal G1; A has skill AIL-01 and occupation 43-4051.00, B has INF-01 and 47-2111.00."""
    from courses.models import Enrollment

    load_test_framework()
    a = make_course("course-a", title="Course A")
    b = make_course("course-b", title="Course B", skills=("INF-01",), occupations=("47-2111.00",))
    now = utcnow()
    day = timedelta(days=1)
    people = [make_user(email=f"p{i}@example.org") for i in range(5)]
    from tests.factories import complete_course, enroll

    for person, course, started, days in ((people[0], a, 10, 2), (people[1], a, 10, 4), (people[3], b, 3, 1)):
        enrollment = enroll(person, course)
        enrollment.enrolled_at = now - started * day
        db.session.commit()
        complete_course(person, course, now=now - started * day + days * day)
    enroll(people[2], a).enrolled_at = now - 5 * day
    enroll(people[2], b).enrolled_at = now - 5 * day
    old = enroll(people[4], b)
    old.enrolled_at = now - 400 * day
    from credentials.models import Certificate, RevocationReason

    revoked = db.session.scalar(select(Certificate).where(Certificate.user_id == people[1].id))
    revoked.revoked_at, revoked.revocation_reason = now - day, RevocationReason.OTHER
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 6
    return now


def _report(now, window=30):
    from insights import reports

    return reports.build(now - timedelta(days=30), now + timedelta(days=1), window_days=window, now=now)


def test_overview_numbers(known_data):
    o = _report(known_data).overall
    assert (o.enrolled, o.completed, o.completion_rate) == (5, 3, 60.0)
    assert o.median_days_to_complete == 2.0  # the middle of 1, 2 and 4 days
    assert (o.certificates_issued, o.certificates_revoked, o.expiring_60d) == (3, 1, 0)
    assert o.people["active"] == 5  # people, though p2 is active in two courses


def test_breakdowns_count_enrollments_and_people(known_data):
    tables = _report(known_data).tables()
    course = {r["id"]: r for r in tables["course"]}
    a, b = course["course-a"], course["course-b"]
    assert (a["enrolled"], a["completed"], a["completion_rate"], a["median_days_to_complete"]) == (3, 2, 66.7, 2.0)
    assert (a["active_learners_30d"], a["certificates_issued"], a["certificates_revoked"]) == (3, 2, 1)
    assert (b["enrolled"], b["completed"], b["median_days_to_complete"], b["active_learners_30d"]) == (2, 1, 1.0, 3)
    goal = {r["id"]: r for r in tables["goal"]}["G1"]
    # enrollments add up over both courses; active learners are 5 people, not 3 + 3
    assert (goal["enrolled"], goal["completed"], goal["median_days_to_complete"]) == (5, 3, 2.0)
    assert (goal["active_learners_30d"], goal["certificates_issued"], goal["certificates_revoked"]) == (5, 3, 1)
    skill = {r["id"]: r for r in tables["skill"]}
    assert skill["AIL-01"]["enrolled"] == 3 and skill["AIL-01"]["median_days_to_complete"] == 2.0
    assert skill["INF-01"]["enrolled"] == 2 and skill["INF-01"]["median_days_to_complete"] == 1.0
    assert {r["id"]: r["enrolled"] for r in tables["occupation"]} == {"43-4051.00": 3, "47-2111.00": 2}
    assert [r["id"] for r in tables["goal"]] == ["G1"]  # goals without any activity are left out


def test_attainment_counts_people_within_the_window(known_data):
    narrow = {r["id"]: r for r in _report(known_data, window=3).tables()["attainment-course"]}
    assert (narrow["course-a"]["participants"], narrow["course-a"]["completed"]) == (3, 2)
    assert narrow["course-a"]["credentialed"] == 1  # only the 2-day completion is within 3 days
    wide = _report(known_data, window=30).tables()
    course = {r["id"]: r for r in wide["attainment-course"]}
    assert course["course-a"]["credentialed"] == 2 and course["course-a"]["credential_rate"] == 66.7
    occupation = {r["id"]: r for r in wide["attainment-occupation"]}
    assert (occupation["47-2111.00"]["participants"], occupation["47-2111.00"]["credentialed"]) == (2, 1)


def test_people_masks_span_several_words(known_data, monkeypatch):
    """Catalogs beyond 62 courses use several mask words per person; one bit per word gives the same numbers."""
    from insights import reports

    expected = _report(known_data).tables()
    monkeypatch.setattr(reports, "BITS", 1)
    assert _report(known_data).tables() == expected


def test_dashboard_page_and_csv(client, known_data):
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    page = client.get("/admin/insights?window=30")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Course A" in html and "Credential attainment" in html
    csv_text = client.get("/admin/insights?window=30&table=attainment-course&format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "id,name,participants,completed,credentialed,credential_rate"
    assert "course-a,Course A,3,2,2,66.7" in csv_text
    assert client.get("/admin/insights?from=2026-13-01").status_code == 400
    assert client.get("/admin/insights?table=nope&format=csv").status_code == 400


def test_dashboard_query_count_does_not_grow_with_data(app, client, known_data, count_queries):
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    client.get("/admin/insights")  # the catalog and its tags are then read from the content cache, as below
    from tests.factories import enroll

    course = db.session.scalar(select(__import__("courses.models", fromlist=["Course"]).Course).limit(1))
    enroll(make_user(email="first@example.org"), course)  # a write: the next request computes the report again
    small = count_queries(lambda: client.get("/admin/insights"))
    for i in range(30):
        enroll(make_user(email=f"more{i}@example.org"), course)
    assert count_queries(lambda: client.get("/admin/insights")) == small


def test_item_analysis_finds_the_confusing_question(client, ctx):
    from courses.models import Quiz

    load_test_framework()
    course = make_course("ai-basics", modules=1, lessons=1, questions=2, pass_mark=50)
    learners = [make_user(email=f"l{i}@example.org") for i in range(3)]
    from tests.factories import enroll

    for learner in learners:
        enroll(learner, course)
    for i, learner in enumerate(learners):  # each learner in their own browser
        from flask import current_app

        app = current_app._get_current_object()
        app.test_client_class = type(client)
        c = app.test_client()
        sign_in(c, learner.email)
        quiz = "/courses/ai-basics/module-1/quiz"
        url = c.submit(quiz + "/start", page=quiz).headers["Location"]
        answers = answers_for(url, c)
        wrong = answers_for(url, c, right=False)
        # fields are numbered by position in this attempt's shuffled layout (1-based), not by question id
        attempt = db.session.scalar(select(QuizAttempt).order_by(QuizAttempt.id.desc()))
        question_2 = next(
            f"q-{n}"
            for n, (qid, _) in enumerate(attempt.layout, start=1)
            if db.session.get(Question, qid).position == 1
        )
        if i < 2:  # two of three learners pick the same wrong answer to question 2
            answers[question_2] = wrong[question_2]
        c.submit(url, answers)
    quiz_id = db.session.scalar(select(Quiz.id))
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    from insights import reports

    rows = reports.item_analysis(quiz_id)
    assert [(r["answered"], r["correct_share"]) for r in rows] == [(3, 100.0), (3, 33.3)]
    assert rows[1]["top_wrong_answer"] == "Wrong 1.2" and rows[1]["top_wrong_count"] == 2
    page = client.get(f"/admin/insights/quizzes/{quiz_id}").get_data(as_text=True)
    assert "33.3%" in page and "Wrong 1.2 (2)" in page
    assert f"/admin/insights/quizzes/{quiz_id}" in client.get("/admin/insights").get_data(as_text=True)


def test_charts_are_svg_images_with_titles_and_no_live_script(client, known_data):
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    page = client.get("/admin/insights").get_data(as_text=True)
    assert '<img src="/admin/insights/charts/course.svg' in page and 'alt="Bar chart of enrollments' in page
    response = client.get("/admin/insights/charts/course.svg")
    assert response.mimetype == "image/svg+xml"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    svg = response.get_data(as_text=True)
    assert "<title" in svg and "Enrollments and completions by course" in svg and "Course A" in svg
    assert client.get("/admin/insights/charts/nope.svg").status_code == 404


def test_dashboard_csv_neutralises_formulas(client, known_data):
    from courses.models import Course

    course = db.session.scalar(select(Course).where(Course.slug == "course-a"))
    course.title = '=HYPERLINK("http://evil.example","x")'
    db.session.commit()
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    for table in ("course", "attainment-course"):
        csv_text = client.get(f"/admin/insights?table={table}&format=csv").get_data(as_text=True)
        assert "'=HYPERLINK" in csv_text and ",=HYPERLINK" not in csv_text
