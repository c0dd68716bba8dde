"""Signed-in course, lesson and catalog pages from the kept skeleton (core/skeleton.py), the one-statement learner
state and the Core session-user loader (issue 17): the same bytes as a full render, nobody else's data, fresh after
a publish and after progress, and a constant, small number of statements."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from accounts.models import User
from core import contentcache
from core.extensions import db
from courses.models import Course, LessonProgress
from tests.factories import enroll, load_test_framework, make_course, make_user, sign_in

COURSE = "/courses/ai-basics"
LESSON = COURSE + "/module-1/lesson-1-1"
TOKEN_RE = re.compile(r'(name="csrf_token"(?: type="hidden")? value=")[^"]+"')


@pytest.fixture
def world(app, ctx):
    contentcache.clear(app)  # only this test's pages in the per-process store
    load_test_framework()
    course = make_course("ai-basics")
    return course


def kept(app) -> list[tuple]:
    return [key for key in app.extensions["content_cache_pages"].entries if key[0].startswith("skeleton")]


@contextmanager
def full_render(app):
    """Every page rendered in full for the duration (what the cache must be indistinguishable from)."""
    app.config["CONTENT_CACHE"] = False
    try:
        yield
    finally:
        app.config["CONTENT_CACHE"] = True


def same_page(client, app, path: str) -> str:
    """The page at ``path`` served twice from the cache (filling the skeleton, then from it), asserted equal to
    the full render but for the CSRF tokens (each request signs its own)."""
    first = client.get(path)
    second = client.get(path)
    with full_render(app):
        full = client.get(path)
    assert first.status_code == second.status_code == full.status_code == 200
    bodies = [TOKEN_RE.sub(r'\1T"', r.get_data(as_text=True)) for r in (first, second, full)]
    assert bodies[0] == bodies[2], path
    assert bodies[1] == bodies[2], path
    return second.get_data(as_text=True)


def test_kept_pages_equal_a_full_render_in_each_state_and_language(client, app, world):
    lee = make_user(email="lee@example.org", name='Lee <b>"Learner"</b>')
    sign_in(client, "lee@example.org")
    client.get("/help")  # shows (and uses up) "Welcome back"
    paths = ["/courses", "/courses?occupation=43-4051.00&q=basics", "/courses?lang=es", COURSE, COURSE + "?lang=es"]
    for path in paths:  # not enrolled: the enroll form
        same_page(client, app, path)
    enrollment = enroll(lee, world)
    for path in (COURSE, LESSON, LESSON + "?lang=es"):  # enrolled, nothing done
        same_page(client, app, path)
    client.submit(LESSON + "/complete")
    for path in (COURSE + "?lang=es", LESSON, COURSE + "/module-1/lesson-1-2"):  # started
        same_page(client, app, path)
    page = same_page(client, app, COURSE)
    assert {key[1] for key in kept(app)} >= {"course", "lesson", "courses.catalog"}
    assert "Lee &lt;b&gt;&#34;Learner&#34;&lt;/b&gt;" in page  # the name, escaped as the template would
    assert page.count('<span class="done">') == 1 and 'value="17"' in page
    assert db.session.scalar(select(LessonProgress.enrollment_id)) == enrollment.id


def test_two_learners_in_the_same_state_each_see_only_their_own_values(client, other_client, app, world):
    ann = make_user(email="ann@example.org", name="Ann First")
    bob = make_user(email="bob@example.org", name="Bob Second")
    enroll(ann, world)
    enroll(bob, world)
    sign_in(client, "ann@example.org")
    sign_in(other_client, "bob@example.org")
    client.submit(LESSON + "/complete")  # Ann: 1 of 6 steps
    for lesson in ("module-1/lesson-1-1", "module-1/lesson-1-2", "module-2/lesson-2-1"):  # Bob: 3 of 6
        assert other_client.submit(f"{COURSE}/{lesson}/complete").status_code == 303
    ann_page = client.get(COURSE).get_data(as_text=True)  # Ann's request keeps the skeleton
    bob_page = other_client.get(COURSE).get_data(as_text=True)  # Bob's is filled from it
    assert [key for key in kept(app) if key[1] == "course"], "the course page was not kept"
    assert "Ann First" in ann_page and "Bob Second" not in ann_page
    assert "Bob Second" in bob_page and "Ann First" not in bob_page
    assert 'value="17"' in ann_page and 'value="50"' in bob_page  # <progress value=…>: 1/6 and 3/6
    assert bob_page.count('<span class="done">') == 3 and ann_page.count('<span class="done">') == 1
    # Bob's page carries a token for Bob's session: his next form post is accepted
    token = re.search(r'name="csrf_token" value="([^"]+)"', bob_page).group(1)
    switched = other_client.post("/language/es", data={"csrf_token": token, "next": COURSE})
    assert switched.status_code in (302, 303)
    assert db.session.scalar(select(User.locale).where(User.id == bob.id)) == "es"
    assert db.session.scalar(select(User.locale).where(User.id == ann.id)) is None
    # the lesson page: same lesson, both done, different progress
    ann_lesson = client.get(LESSON).get_data(as_text=True)
    bob_lesson = other_client.get(LESSON).get_data(as_text=True)
    assert 'value="17"' in ann_lesson and 'value="50"' in bob_lesson
    assert "Bob Second" not in ann_lesson and "Ann First" not in bob_lesson


def test_a_publish_shows_on_the_next_request_of_every_kept_page(client, app, world):
    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    sign_in(client, "lee@example.org")
    for path in ("/courses", COURSE, LESSON):
        client.get(path)
        client.get(path)
    course = db.session.scalar(select(Course).where(Course.slug == "ai-basics"))
    course.title = "Renamed by the editor"
    course.modules[0].lessons[0].title = "A new lesson title"
    db.session.commit()
    assert "Renamed by the editor" in client.get("/courses").get_data(as_text=True)
    assert "A new lesson title" in client.get(COURSE).get_data(as_text=True)
    page = client.get(LESSON).get_data(as_text=True)
    assert "A new lesson title" in page and "Renamed by the editor" in page


def test_progress_shows_on_the_next_request(client, world):
    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    sign_in(client, "lee@example.org")
    before = client.get(COURSE).get_data(as_text=True)
    assert 'value="0"' in before and "Start learning" in before and '<span class="done">' not in before
    assert "You completed this lesson." not in client.get(LESSON).get_data(as_text=True)
    client.submit(LESSON + "/complete")
    after = client.get(COURSE).get_data(as_text=True)
    assert 'value="17"' in after and "Continue" in after and after.count('<span class="done">') == 1
    lesson = client.get(LESSON).get_data(as_text=True)
    assert "You completed this lesson." in lesson and "Mark complete and continue" not in lesson


def test_a_flashed_message_is_shown_once_on_a_kept_page(client, world):
    make_user(email="lee@example.org")
    sign_in(client, "lee@example.org")
    client.get(COURSE)
    client.get(COURSE)  # kept
    enrolled = client.submit(COURSE + "/enroll")
    assert enrolled.status_code == 303
    landing = client.get(enrolled.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "You are enrolled in" in landing
    assert "You are enrolled in" not in client.get(COURSE).get_data(as_text=True)


def test_a_page_holding_the_name_of_the_person_is_never_kept(client, app, world):
    make_user(email="lee@example.org", name="Course ai-basics")  # the course title holds this name
    sign_in(client, "lee@example.org")
    client.get(COURSE)
    page = client.get(COURSE).get_data(as_text=True)
    assert "Course ai-basics" in page
    assert not [key for key in kept(app) if key[1] == "course"]


def test_signed_in_pages_cost_a_fixed_few_statements(client, app, world):
    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    make_course("bigger", modules=6, lessons=5)
    enroll(lee, db.session.scalar(select(Course).where(Course.slug == "bigger")))
    sign_in(client, "lee@example.org")
    client.submit(LESSON + "/complete")
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    def cost(path: str) -> int:
        client.get(path)  # warm
        seen.clear()
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", note)
        try:
            assert client.get(path).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return len(seen)

    client.get("/help")  # "Welcome back" shown and gone
    from courses.lane import find

    # the signed-in lane (courses/lane.py) answers a kept course or lesson page with one statement of its own
    the_lane = find(app)
    for path in (COURSE, LESSON, "/courses/bigger", "/courses/bigger/module-6/lesson-6-5"):
        reads, answered = the_lane.reads, the_lane.answered
        assert cost(path) == 0
        assert (the_lane.reads, the_lane.answered) == (reads + 2, answered + 1)  # the warm-up kept it
    # without it: the session's user with the content version; the enrollment with its progress
    app.config["SIGNED_IN_LANE"] = False
    try:
        assert cost("/courses") == 1
        assert cost(COURSE) == 2
        assert cost(LESSON) == 2
        assert cost("/courses/bigger") == 2
        assert cost("/courses/bigger/module-6/lesson-6-5") == 2
    finally:
        app.config["SIGNED_IN_LANE"] = True


def test_the_session_user_is_refused_at_once_when_disabled_or_its_password_changes(client, other_client, world):
    lee = make_user(email="lee@example.org")
    ann = make_user(email="ann@example.org")
    sign_in(client, "lee@example.org")
    sign_in(other_client, "ann@example.org")
    assert client.get(COURSE).status_code == 200
    lee.active = False
    db.session.commit()
    refused = client.get("/dashboard")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    assert other_client.get("/dashboard").status_code == 200
    ann.session_version += 1  # what a password change does
    db.session.commit()
    refused = other_client.get("/dashboard")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]


def test_the_session_user_is_the_sessions_own_row_and_saves_changes(client, app, world):
    """The loader builds the user from a narrow row: it must behave as an ORM-loaded one (changes flushed, the
    password hash read on first use) and refuse what the ORM loader refused."""
    from accounts.services import load_session_user, start_login
    from core.database import utcnow

    lee = make_user(email="lee@example.org", name="Lee Learner")
    sign_in(client, "lee@example.org")
    saved = client.submit("/account", {"name": "Lee Renamed", "legal_name": "Lee Legal"}, page="/account")
    assert saved.status_code in (302, 303)
    db.session.expire_all()
    assert (lee.name, lee.legal_name) == ("Lee Renamed", "Lee Legal")
    uid, version = lee.id, lee.session_version
    with app.test_request_context("/"):
        token = start_login(db.session.get(User, uid), now=utcnow())
        db.session.commit()
        db.session.expunge_all()
        user = load_session_user(f"{uid}:{version}:{token}")
        assert user in db.session and not db.session.is_modified(user)
        assert "password_hash" not in user.__dict__ and user.password_hash.startswith("$argon2")
        assert user.has_memberships is False and user.login_token == token
        user.name = "Lee Again"
        db.session.commit()
        assert load_session_user(f"{uid}:{version}:wrong-token") is None
        assert load_session_user(f"{uid}:{version + 1}:{token}") is None
        assert load_session_user("not:a:number") is None
    db.session.expire_all()
    assert db.session.get(User, uid).name == "Lee Again"


def test_the_dashboard_from_kept_cards_equals_a_full_render_and_follows_progress(client, other_client, app, world):
    from tests.factories import complete_course

    ann = make_user(email="ann@example.org", name="Ann First")
    bob = make_user(email="bob@example.org", name="Bob Second")
    second = make_course("second-course", title="Second course")
    done = make_course("done-course", title="Finished course")
    for user in (ann, bob):
        enroll(user, world)
        enroll(user, second)
    complete_course(ann, done)
    sign_in(client, "ann@example.org")
    sign_in(other_client, "bob@example.org")
    client.get("/help")  # "Welcome back" shown and gone
    for path in ("/dashboard", "/dashboard?lang=es"):
        page = same_page(client, app, path)
    assert "Finished course" in page and "Completado el" in page and "Mi aprendizaje" in page
    assert [key for key in app.extensions["content_cache_pages"].entries if key[0] == "dashboard-card"]
    # Bob, at the same point in both courses, is served the same cards, inside his own page
    ann_page, bob_page = client.get("/dashboard").get_data(as_text=True), other_client.get("/dashboard")
    bob_page = bob_page.get_data(as_text=True)
    assert "Bob Second" in bob_page and "Ann First" not in bob_page and "Finished course" not in bob_page
    assert "Ann First" in ann_page and "Finished course" in ann_page
    assert bob_page.count('value="0"') == 2
    other_client.submit(LESSON + "/complete")
    bob_page = other_client.get("/dashboard").get_data(as_text=True)
    assert 'value="17"' in bob_page and "Lesson 1.2" in bob_page  # new percentage, new next step
    assert client.get("/dashboard").get_data(as_text=True).count('value="0"') == 2  # Ann's did not move
    # a publish shows at once
    world.title = "Renamed course"
    db.session.commit()
    assert "Renamed course" in other_client.get("/dashboard").get_data(as_text=True)


def test_the_dashboard_reads_all_progress_in_one_statement(client, app, world):
    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    sign_in(client, "lee@example.org")
    client.submit(LESSON + "/complete")
    from tests.conftest import queries_run

    client.get("/dashboard")
    one = queries_run(app, lambda: client.get("/dashboard"))
    for slug in ("c-two", "c-three", "c-four"):
        enroll(lee, make_course(slug, modules=3, lessons=3))
    client.get("/dashboard")
    assert queries_run(app, lambda: client.get("/dashboard")) == one
