"""The learner journey: catalog, course page, enrollment, lessons, quizzes, completion, dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from courses.models import Course, CourseStatus, Enrollment, LessonProgress, QuizAttempt
from tests.factories import enroll, load_test_framework, login, make_course, make_user


@pytest.fixture
def framework(ctx):
    load_test_framework()


@pytest.fixture
def learner(client, framework):
    user = make_user(email="lee@example.org", name="Lee Learner")
    login(client, "lee@example.org")
    return user


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


LESSON = "/courses/ai-basics/module-1/lesson-1-1"


# ---- catalog and course page ---------------------------------------------------------------


def test_catalog_search_and_filters(client, framework):
    make_course("ai-basics", title="AI Basics for Customer Service")
    make_course("power", title="Data Center Power", skills=("INF-01",), occupations=("47-2111.00",))
    make_course("secret-draft", title="Unfinished Draft", status=CourseStatus.DRAFT)

    def titles(query: str = "") -> set[str]:
        html = client.get("/courses" + query).get_data(as_text=True)
        return set(re.findall(r'<h2><a href="/courses/[^"]+">([^<]+)</a></h2>', html))

    assert titles() == {"AI Basics for Customer Service", "Data Center Power"}
    assert titles("?q=power") == {"Data Center Power"}
    assert titles("?q=electricians") == {"Data Center Power"}  # matches the occupation title
    assert titles("?occupation=47-2111.00") == {"Data Center Power"}
    assert titles("?skill=AIL-01") == {"AI Basics for Customer Service"}
    assert titles("?goal=G1") == {"AI Basics for Customer Service", "Data Center Power"}
    assert titles("?audience=infrastructure") == {"Data Center Power"}
    assert titles("?q=" + "x" * 500) == {"AI Basics for Customer Service", "Data Center Power"}
    refused = client.get("/courses?q=" + "x" * 500)  # the search is refused, said, and answered as a client error
    assert refused.status_code == 400
    assert "Field cannot be longer than 100 characters." in refused.get_data(as_text=True)
    assert client.get("/courses?q=power").status_code == 200
    assert titles("?occupation=99-9999.99") == set()
    assert "No course matches" in client.get("/courses?goal=G99").get_data(as_text=True)


def test_course_page_for_anonymous_visitor(client, framework):
    make_course("ai-basics", title="AI Basics")
    page = client.get("/courses/ai-basics").get_data(as_text=True)
    assert "AI Basics" in page and "Lesson 1.2" in page and "Quiz: Quiz 1" in page
    assert "Log in to enroll" in page
    assert "AI Foundations" in page and "Customer Service Representatives (43-4051.00)" in page


def test_draft_course_is_404_and_archived_only_for_enrolled(client, learner):
    make_course("draft-course", status=CourseStatus.DRAFT)
    assert client.get("/courses/draft-course").status_code == 404
    course = make_course("ai-basics")
    enroll(learner, course)
    make_course("old-course")
    for slug in ("ai-basics", "old-course"):
        db.session.scalar(select(Course).where(Course.slug == slug)).status = CourseStatus.ARCHIVED
    db.session.commit()
    assert client.get("/courses/ai-basics").status_code == 200
    assert client.get(LESSON).status_code == 200
    assert client.get("/courses/old-course").status_code == 404
    response = client.submit("/courses/old-course/enroll", page="/courses/ai-basics")
    assert response.status_code == 404


def test_enroll_twice_gives_one_row_and_lands_on_first_lesson(client, learner):
    make_course("ai-basics")
    first = client.submit("/courses/ai-basics/enroll", page="/courses/ai-basics")
    assert first.status_code == 303 and first.headers["Location"] == "/courses/ai-basics/continue"
    second = client.submit("/courses/ai-basics/enroll", page="/courses/ai-basics")
    assert second.status_code == 303
    assert count(Enrollment) == 1
    assert client.get("/courses/ai-basics/continue").headers["Location"] == LESSON


def test_enroll_requires_login(client, framework):
    make_course("ai-basics")
    response = client.submit("/courses/ai-basics/enroll", page="/login")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert count(Enrollment) == 0


# ---- lessons ------------------------------------------------------------------------------


def test_lesson_needs_enrollment(client, learner):
    make_course("ai-basics")
    assert client.get(LESSON).status_code == 403
    assert client.get("/courses/ai-basics/module-1/nope").status_code == 403
    # "Continue" (a bookmarked or shared link) leads someone not enrolled to the course page, told how to start
    resumed = client.get("/courses/ai-basics/continue")
    assert resumed.status_code == 302 and resumed.headers["Location"] == "/courses/ai-basics"
    page = client.get("/courses/ai-basics").get_data(as_text=True)
    assert "You are not enrolled in this course yet: enroll to start it." in page
    assert count(Enrollment) == 0
    assert client.get("/courses/draft-only/continue").status_code == 404
    enroll(learner, make_course("other"))
    assert client.get("/courses/other/module-1/nope").status_code == 404
    make_course("draft-course", status=CourseStatus.DRAFT)
    assert client.get("/courses/draft-course/module-1/lesson-1-1").status_code == 404


def test_lesson_page_and_double_clicked_mark_complete(client, learner):
    course = make_course("ai-basics")
    enroll(learner, course)
    page = client.get(LESSON).get_data(as_text=True)
    assert "<h2>Part 1.1</h2>" in page and "Mark complete" in page and 'rel="next"' in page
    token = client.csrf_token(LESSON)
    first = client.post(LESSON + "/complete", data={"csrf_token": token})
    second = client.post(LESSON + "/complete", data={"csrf_token": token})
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == "/courses/ai-basics/module-1/lesson-1-2"
    assert count(LessonProgress) == 1
    assert "You completed this lesson" in client.get(LESSON).get_data(as_text=True)
    assert client.get("/courses/ai-basics/continue").headers["Location"] == "/courses/ai-basics/module-1/lesson-1-2"


def test_continue_goes_to_quiz_after_the_lessons(client, learner):
    course = make_course("ai-basics")
    enrollment = enroll(learner, course)
    for lesson in course.modules[0].lessons:
        db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, completed_at=utcnow()))
    db.session.commit()
    assert client.get("/courses/ai-basics/continue").headers["Location"] == "/courses/ai-basics/module-1/quiz"


# ---- quizzes ------------------------------------------------------------------------------

QUIZ = "/courses/ai-basics/module-1/quiz"


def start(client) -> str:
    response = client.submit(QUIZ + "/start", page=QUIZ)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def answers_for(attempt_url: str, client, *, right: bool = True) -> dict:
    """Pick the right (or a wrong) choice for every question shown on the attempt page."""
    html = client.get(attempt_url).get_data(as_text=True)
    wanted = "Right" if right else "Wrong"
    data = {}
    for body in re.findall(r'<fieldset class="question">(.*?)</fieldset>', html, flags=re.S):
        qid = re.search(r'name="q-(\d+)"', body).group(1)
        data[f"q-{qid}"] = re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">' + wanted, body).group(1)
    assert data, "no questions on the attempt page"
    return data


def test_quiz_order_is_shuffled_per_attempt_and_stable_within_it(client, learner):
    course = make_course("ai-basics", questions=6)
    enroll(learner, course)
    url = start(client)
    first = client.get(url).get_data(as_text=True)
    order = re.findall(r'name="(q-\d+)"', first)
    assert re.findall(r'name="(q-\d+)"', client.get(url).get_data(as_text=True)) == order
    attempt = db.session.scalar(select(QuizAttempt))
    assert sorted(q for q, _ in attempt.layout) == sorted(q.id for q in course.modules[0].quiz.questions)
    assert start(client) == url  # an open attempt is reused, not duplicated
    assert count(QuizAttempt) == 1


def test_passing_submission_shows_score_feedback_and_explanations(client, learner):
    enroll(learner, make_course("ai-basics"))
    url = start(client)
    data = answers_for(url, client)
    response = client.submit(url, data)
    assert response.status_code == 303 and response.headers["Location"] == url
    page = client.get(url).get_data(as_text=True)
    assert "Attempt 1: 100%" in page and "You passed" in page
    assert "Because 1.1." in page and "✓ Correct" in page
    attempt = db.session.scalar(select(QuizAttempt))
    assert attempt.score == 100 and attempt.passed and attempt.submitted_at is not None


def test_failing_submission_and_retry_best_attempt_counts(client, learner):
    enroll(learner, make_course("ai-basics", pass_mark=100))
    url = start(client)
    client.submit(url, answers_for(url, client, right=False))
    page = client.get(url).get_data(as_text=True)
    assert "Attempt 1: 0%" in page and "Not passed yet" in page
    # no per-question verdicts or explanations before a pass: they would tell the next attempt the answers
    assert "✗ Not quite" not in page and "✓ Correct" not in page and "Because 1.1." not in page
    assert "<strong>Your answer:</strong> Wrong" in page
    url2 = start(client)
    assert url2.endswith("/attempts/2")
    client.submit(url2, answers_for(url2, client))
    quiz_page = client.get(QUIZ).get_data(as_text=True)
    assert "Your best score so far: <strong>100%</strong>" in quiz_page


def test_tampered_quiz_posts_are_refused_and_record_nothing(client, learner):
    course = make_course("ai-basics")
    enroll(learner, course)
    url = start(client)
    good = answers_for(url, client)
    wrong = answers_for(url, client, right=False)
    (q1, c1), (q2, c2) = sorted(good.items())
    database_id = str(course.modules[0].quiz.questions[0].choices[0].id)
    cases = [
        ({q1: c1}, 422, "answer every question"),
        ({q1: "A" * 22, q2: c2}, 422, "do not match this quiz"),  # not a token of this attempt
        ({q1: database_id, q2: c2}, 422, "do not match this quiz"),  # choice ids are not accepted
        ({q1: c2, q2: c2}, 422, "do not match this quiz"),  # another question's token
        ({q1: [c1, c1], q2: c2}, 422, "do not match this quiz"),
        ({q1: c1, q2: c2, "q-999": c1}, 422, "do not match this quiz"),
        ({q1: c1, q2: c2, "q-abc": c1}, 422, "could not be read"),
        ({q1: [c1, wrong[q1]], q2: c2}, 422, "Choose one answer"),
    ]
    for data, status, message in cases:
        response = client.submit(url, data)
        assert response.status_code == status, (data, response.status_code)
        assert message in response.get_data(as_text=True), data
    attempt = db.session.scalar(select(QuizAttempt))
    db.session.refresh(attempt)
    assert attempt.submitted_at is None and attempt.score is None
    assert client.submit(url, good).status_code == 303
    again = client.submit(url, good)
    assert again.status_code == 409 and "already submitted" in again.get_data(as_text=True)


def test_quiz_of_a_course_not_enrolled_in_is_refused(client, learner):
    make_course("ai-basics")
    assert client.get(QUIZ).status_code == 403
    response = client.submit(QUIZ + "/start", page="/courses/ai-basics")
    assert response.status_code == 403
    assert count(QuizAttempt) == 0


def test_attempt_limit_and_cooldown(client, learner):
    enroll(learner, make_course("ai-basics", max_attempts=1, pass_mark=100))
    url = start(client)
    client.submit(url, answers_for(url, client, right=False))
    response = client.submit(QUIZ + "/start", page=QUIZ)
    assert response.status_code == 409
    assert "used your 1 attempt" in response.get_data(as_text=True)
    assert count(QuizAttempt) == 1

    enroll(learner, make_course("cool", cooldown_minutes=30, pass_mark=100))
    cool_quiz = "/courses/cool/module-1/quiz"
    first = client.submit(cool_quiz + "/start", page=cool_quiz).headers["Location"]
    client.submit(first, answers_for(first, client, right=False))
    blocked = client.submit(cool_quiz + "/start", page=cool_quiz)
    assert blocked.status_code == 409
    assert "Please wait 30 more minutes" in blocked.get_data(as_text=True)
    attempt = db.session.scalar(
        select(QuizAttempt)
        .where(QuizAttempt.attempt_no == 1, QuizAttempt.quiz_id != None)  # noqa: E711
        .order_by(QuizAttempt.id.desc())
    )
    attempt.submitted_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    assert client.submit(cool_quiz + "/start", page=cool_quiz).headers["Location"].endswith("/attempts/2")


# ---- completion and dashboard -------------------------------------------------------------


def test_completing_every_step_completes_the_course_once_and_fills_the_profile(client, learner):
    course = make_course("ai-basics", modules=2, lessons=1, title="AI Basics")
    enroll(learner, course)
    for module in course.modules:
        lesson_url = f"/courses/ai-basics/{module.slug}/{module.lessons[0].slug}"
        client.submit(lesson_url + "/complete", page=lesson_url)
        quiz = f"/courses/ai-basics/{module.slug}/quiz"
        url = client.submit(quiz + "/start", page=quiz).headers["Location"]
        last = client.submit(url, answers_for(url, client))
    assert last.headers["Location"] == "/courses/ai-basics/done"  # the last quiz lands on the completion page
    enrollment = db.session.scalar(select(Enrollment))
    db.session.refresh(enrollment)
    assert enrollment.completed_at is not None
    completed_at = enrollment.completed_at
    # replaying a step does not complete it again
    lesson_url = "/courses/ai-basics/module-1/lesson-1-1"
    client.submit(lesson_url + "/complete", page=lesson_url)
    db.session.refresh(enrollment)
    assert enrollment.completed_at == completed_at
    course_page = client.get("/courses/ai-basics").get_data(as_text=True)
    assert "Completed" in course_page and "100% complete" in course_page
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "No courses in progress" in dashboard.replace("You have no courses in progress", "No courses in progress")
    # grouped by skill, each with the courses that showed it; an occupation all of whose skills are covered
    assert "AI Foundations</a></dt>\n      <dd>from AI Basics</dd>" in dashboard
    assert "G1: AI skills in workforce funding" not in dashboard
    assert "Customer Service Representatives" in dashboard


def test_dashboard_shows_progress_and_next_step(client, learner):
    course = make_course("ai-basics", title="AI Basics")
    enrollment = enroll(learner, course)
    db.session.add(
        LessonProgress(enrollment_id=enrollment.id, lesson_id=course.modules[0].lessons[0].id, completed_at=utcnow())
    )
    db.session.commit()
    page = client.get("/dashboard").get_data(as_text=True)
    assert "AI Basics" in page and "17% complete" in page and "Next: Lesson 1.2" in page
    assert "Complete a course to add its skills here" in page


# ---- constant query counts ----------------------------------------------------------------


MAIN_PAGES = [
    "/courses",
    "/courses/course-000",
    "/courses/course-000/module-1/lesson-1-1",
    "/dashboard",
    "/framework",
    "/courses/course-000/module-1/quiz",
    "/skills/AIL-01",
    "/occupations/43-4051.00",
    "/courses?q=course",
]


@pytest.fixture(scope="module")
def main_page_queries(app) -> dict[str, tuple[int, int, int]]:
    """{path: (SQL statements with one small course, with 50x the data, status)} for every main page.

    Both datasets are built once for all the pages (building the large one is most of the work); the
    per-test cleanup empties the tables again after the first test that asks for this.
    """
    from courses import services as course_services
    from courses.catalog import apply_spec
    from tests.conftest import Client, queries_run
    from tests.factories import course_spec

    app.test_client_class = Client
    client = app.test_client()
    with app.app_context():
        load_test_framework()
        learner = make_user(email="lee@example.org", name="Lee Learner")
        login(client, "lee@example.org")
        enroll(learner, make_course("course-000", modules=1, lessons=1, questions=1))
        small = {path: queries_run(app, lambda path=path: client.get(path)) for path in MAIN_PAGES}
        # 50x the data: a bigger outline for the course itself, 49 more courses and enrollments, another learner
        apply_spec(course_spec("course-000", modules=6, lessons=5, questions=4), now=utcnow())
        db.session.commit()
        # in two transactions, not 98: the same courses and enrollments, without each commit's hooks (insights,
        # caches) run 98 times over (~25 % of this fixture's CPU)
        published = CourseStatus.PUBLISHED
        more = [
            apply_spec(course_spec(f"more-{i:03d}", modules=3, lessons=4), now=utcnow(), status=published)[0]
            for i in range(49)
        ]
        db.session.commit()
        for course in more:
            course_services.enroll(learner, course, now=utcnow())
        db.session.commit()
        enroll(make_user(email="someone@example.org", role=Role.LEARNER), more[0])
        status = {}  # of the very requests counted with the large data (not a third round of the same pages)
        large = {
            path: queries_run(app, lambda path=path: status.__setitem__(path, client.get(path).status_code))
            for path in MAIN_PAGES
        }
        db.session.remove()
    return {path: (small[path], large[path], status[path]) for path in MAIN_PAGES}


@pytest.mark.parametrize("path", MAIN_PAGES)
def test_main_pages_use_a_constant_number_of_queries(main_page_queries, path):
    small, large, status = main_page_queries[path]
    assert status == 200
    assert small == large, (path, small, large)


def test_concurrent_mark_complete_and_enroll_write_one_row(app, client, learner):
    """Two requests racing (a double tap on a slow phone) still write one row each."""
    from concurrent.futures import ThreadPoolExecutor

    make_course("ai-basics")
    token = client.csrf_token("/courses/ai-basics")
    cookie = client.get_cookie("session").value

    def post(path: str) -> int:
        other = app.test_client()
        other.set_cookie("session", cookie)
        return other.post(path, data={"csrf_token": token}).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(post, ["/courses/ai-basics/enroll"] * 4)) == {303}
        assert set(pool.map(post, [LESSON + "/complete"] * 4)) == {303}
    assert count(Enrollment) == 1
    assert count(LessonProgress) == 1


def test_another_learner_cannot_open_my_attempt(app, client, learner):
    enroll(learner, make_course("ai-basics"))
    url = start(client)
    other = make_user(email="other@example.org")
    enroll(other, db.session.scalar(select(Course).where(Course.slug == "ai-basics")))
    app.test_client_class = type(client)
    intruder = app.test_client()
    login(intruder, "other@example.org")
    assert intruder.get(url).status_code == 404  # their own enrollment has no attempt 1
    assert intruder.submit(url, {"q-1": "1"}, page=QUIZ).status_code == 404


def test_reimport_that_changes_a_quiz_does_not_lock_the_learner_out(client, learner):
    from courses.catalog import apply_spec
    from tests.factories import course_spec

    enroll(learner, make_course("ai-basics", questions=3))
    url = start(client)
    apply_spec(course_spec("ai-basics", questions=2), now=utcnow())  # a question removed
    db.session.commit()
    stale = client.submit(url, answers_for(url, client))
    assert stale.status_code == 422 and "quiz changed" in stale.get_data(as_text=True)
    fresh = start(client)
    assert fresh == url  # the stale, unanswered attempt was replaced
    assert client.submit(fresh, answers_for(fresh, client)).status_code == 303
    assert db.session.scalar(select(QuizAttempt)).passed


def test_failed_attempt_does_not_reveal_the_right_answers(client, learner):
    enroll(learner, make_course("ai-basics", pass_mark=100))
    url = start(client)
    client.submit(url, answers_for(url, client, right=False))
    page = client.get(url).get_data(as_text=True)
    assert "(correct)" not in page and "Because 1.1." not in page
    assert "shown once you pass" in page
