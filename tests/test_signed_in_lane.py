"""The signed-in lane (courses/lane.py): learners' kept course and lesson pages answered before Flask, byte for
byte what the app answers for the same request; every case it must not answer goes to the app; a logout, a role
change, a publish and progress show on the very next request."""

from __future__ import annotations

import contextvars
import re

import pytest
from sqlalchemy import select, update
from werkzeug.test import EnvironBuilder, run_wsgi_app

from accounts.models import Role, User
from core import contentcache
from core.extensions import db
from courses import lane as signed_lane
from courses.models import Course
from tests.factories import complete_course, enroll, load_test_framework, login, make_course, make_org, make_user

COURSE = "/courses/ai-basics"
LESSON = COURSE + "/module-1/lesson-1-1"
TOKEN_RE = re.compile(r'(name="csrf_token"(?: type="hidden")? value=")[^"]+"')


def fresh_lane(app) -> None:
    """A clean start for a lane test: no kept content, pages or course plans, and the test framework loaded."""
    contentcache.clear(app)
    the_lane = signed_lane.find(app)
    the_lane.pages.clear()
    the_lane.plans.clear()
    load_test_framework()


@pytest.fixture
def world(app, ctx):
    fresh_lane(app)
    return make_course("ai-basics")


def environ_of(client, path: str, method: str = "GET", **headers) -> dict:
    cookie = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    return EnvironBuilder(
        path=path, method=method, environ_base=dict(client.environ_base), headers={"Cookie": cookie, **headers}
    ).get_environ()


def answer(wsgi, environ) -> tuple[str, list, str]:
    """(status, headers but Date, body with every CSRF token blanked: each request signs its own)."""
    # in a context of its own, as the test client runs each request (else it would share the test's app context)
    body, status, head = contextvars.Context().run(run_wsgi_app, wsgi, environ)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return status, [h for h in head.items() if h[0] != "Date"], TOKEN_RE.sub(r'\1T"', data.decode())


def both_ways(app, client, path: str, **headers) -> str:
    """The same request answered by the lane and by the app behind it; asserts the lane answered it itself and
    that the two answers are equal (status line, headers in order, body). Returns the body."""
    the_lane = signed_lane.find(app)
    client.get(path, headers=headers)  # the app answers; the lane keeps it
    before = the_lane.answered
    from_lane = answer(app.wsgi_app, environ_of(client, path, **headers))
    assert the_lane.answered == before + 1, f"the lane did not answer {path}"
    from_app = answer(the_lane.inner, environ_of(client, path, **headers))
    assert the_lane.answered == before + 1
    if from_lane != from_app:
        import difflib

        print([h for h in from_lane[1] if h not in from_app[1]], [h for h in from_app[1] if h not in from_lane[1]])
        print("\n".join(difflib.unified_diff(from_lane[2].splitlines(), from_app[2].splitlines(), lineterm="")))
    assert from_lane == from_app, path
    return from_lane[2]


def test_the_lane_answers_byte_for_byte_what_the_app_answers(client, app, world):
    lee = make_user(email="lee@example.org", name='Lee <b>"Learner"</b>')
    login(client, "lee@example.org")
    client.get("/help")  # "Welcome back" shown and gone: nothing flashed is left
    page = both_ways(app, client, COURSE)  # not enrolled: the enroll form
    assert "Enroll" in page and "Lee &lt;b&gt;&#34;Learner&#34;&lt;/b&gt;" in page
    enroll(lee, world)
    assert "Start learning" in both_ways(app, client, COURSE)
    assert "Mark complete" in both_ways(app, client, LESSON)
    client.submit(LESSON + "/complete")
    page = both_ways(app, client, COURSE)
    assert page.count('<span class="done">') == 1 and 'value="17"' in page
    assert "You completed this lesson." in both_ways(app, client, LESSON)
    assert "Mark complete" in both_ways(app, client, COURSE + "/module-1/lesson-1-2")
    # the language from the browser, then from the account's preference
    assert 'lang="es"' in both_ways(app, client, COURSE, **{"Accept-Language": "es"})
    lee.locale = "es"
    db.session.commit()
    assert 'lang="es"' in both_ways(app, client, LESSON, **{"Accept-Language": "en"})
    # one statement per answer, on the lane's own connection
    the_lane = signed_lane.find(app)
    reads = the_lane.reads
    from tests.conftest import queries_run

    assert queries_run(app, lambda: client.get(LESSON)) == 0
    assert the_lane.reads == reads + 1


def test_two_learners_in_the_same_state_each_get_their_own_values(client, other_client, app, world):
    ann = make_user(email="ann@example.org", name="Ann First")
    bob = make_user(email="bob@example.org", name="Bob Second")
    for user in (ann, bob):
        enroll(user, world)
    login(client, "ann@example.org")
    login(other_client, "bob@example.org")
    client.get("/help")  # each: "Welcome back" shown and gone
    other_client.get("/help")
    the_lane = signed_lane.find(app)
    client.get(COURSE)  # Ann's request: the app answers, the lane keeps it
    before = the_lane.answered
    bob_page = other_client.get(COURSE).get_data(as_text=True)  # Bob's: the lane, from what Ann's kept
    assert the_lane.answered == before + 1
    assert "Bob Second" in bob_page and "Ann First" not in bob_page
    token = re.search(r'name="csrf_token" value="([^"]+)"', bob_page).group(1)
    switched = other_client.post("/language/es", data={"csrf_token": token, "next": COURSE})
    assert switched.status_code in (302, 303)  # his token is his session's: his form is accepted
    assert db.session.scalar(select(User.locale).where(User.id == bob.id)) == "es"
    assert db.session.scalar(select(User.locale).where(User.id == ann.id)) is None


def not_answered(app, wsgi_call):
    """Run ``wsgi_call()`` and assert the lane left it to the app; returns its result."""
    the_lane = signed_lane.find(app)
    before = the_lane.answered
    result = wsgi_call()
    assert the_lane.answered == before, "the lane answered a request it must leave to the app"
    return result


def test_what_the_lane_leaves_to_the_app(client, other_client, app, world):
    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    login(client, "lee@example.org")
    client.get("/help")
    both_ways(app, client, COURSE)  # kept, and answered by the lane
    both_ways(app, client, LESSON)
    # a query string (?lang=), HEAD, conditional and Range requests
    assert 'lang="es"' in not_answered(app, lambda: client.get(COURSE + "?lang=es")).get_data(as_text=True)
    assert not_answered(app, lambda: client.head(COURSE)).status_code == 200
    assert not_answered(app, lambda: client.get(COURSE, headers={"If-None-Match": '"x"'})).status_code == 200
    assert not_answered(app, lambda: client.get(COURSE, headers={"Range": "bytes=0-10"})).status_code in (200, 206)
    # another browser presenting the cookie: session protection "strong" drops the session
    # (run outside the client: the answer clears the session, and the client would keep that)
    stolen = environ_of(client, LESSON, **{"User-Agent": "Another/1.0"})
    status, headers, _ = not_answered(app, lambda: answer(app.wsgi_app, stolen))
    assert status.startswith("302") and "/login" in dict(headers)["Location"]
    # a cookie signed with another key, or garbage
    forged = dict(environ_of(client, LESSON), HTTP_COOKIE="session=eyJfdXNlcl9pZCI6IjEifQ.bad.sig")
    status, headers, _ = not_answered(app, lambda: answer(app.wsgi_app, forged))
    assert status.startswith("302") and "/login" in dict(headers)["Location"]
    # a session Flask would write anew: no CSRF secret yet (the page makes one and sets the cookie)
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(client.get_cookie("session").value)
    without_secret = {k: v for k, v in data.items() if k != "csrf_token"}
    other_client.set_cookie("session", serializer.dumps(without_secret))
    fresh = not_answered(app, lambda: other_client.get(COURSE))
    assert fresh.status_code == 200 and "session=" in fresh.headers.get("Set-Cookie", "")
    # a message waiting in the session is shown, once
    second = make_course("second", title="Second course")
    moved = client.submit("/courses/second/enroll")
    assert moved.status_code == 303
    shown = not_answered(app, lambda: client.get("/courses/second"))
    assert "You are enrolled in" in shown.get_data(as_text=True)
    both_ways(app, client, "/courses/second")  # and then the lane again
    # a completed enrollment's course page links its certificate: never kept
    complete_course(lee, second)
    done = not_answered(app, lambda: client.get("/courses/second"))
    assert done.status_code == 200
    # a lesson of a course the learner is not in: the app's 403
    make_course("third", title="Third course")
    assert not_answered(app, lambda: client.get("/courses/third/module-1/lesson-1-1")).status_code == 403
    assert not_answered(app, lambda: client.get("/courses/no-such-course")).status_code == 404


def test_accounts_the_lane_leaves_to_the_app(app, client, world):
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    member = make_user(email="member@example.org")
    make_org(member)
    for user in (admin, member):
        enroll(user, world)
    pages = {}
    for email in ("admin@example.org", "member@example.org"):
        browser = app.test_client()  # a Client (the client fixture set the class)
        login(browser, email)
        browser.get("/help")
        for _ in range(2):  # the second would be the lane's, were it to keep the first
            page = not_answered(app, lambda browser=browser: browser.get(LESSON))
            assert page.status_code == 200
        pages[email] = page.get_data(as_text=True)
    assert "Studio" in pages["admin@example.org"] and "My organizations" in pages["member@example.org"]


def test_a_remember_me_cookie_alone_goes_to_the_app(client, app, world):
    make_user(email="lee@example.org")
    login(client, "lee@example.org", remember="y")
    assert client.get_cookie("remember_token") is not None
    client.get(COURSE)
    client.delete_cookie("session")  # the browser was closed: only the remember-me cookie is left
    restored = not_answered(app, lambda: client.get(COURSE))
    assert restored.status_code == 200 and "session=" in restored.headers.get("Set-Cookie", "")
    assert "Log out" in restored.get_data(as_text=True)


def test_logout_role_change_publish_and_progress_show_on_the_next_request(client, other_client, app, world):
    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    login(client, "lee@example.org")
    client.get("/help")
    both_ways(app, client, COURSE)
    # progress: the next request shows it (a new state, kept anew, then from the lane)
    client.submit(LESSON + "/complete")
    page = both_ways(app, client, COURSE)
    assert 'value="17"' in page and page.count('<span class="done">') == 1
    # a publish: the next request shows it
    course = db.session.scalar(select(Course).where(Course.slug == "ai-basics"))
    course.title = "Renamed by the editor"
    db.session.commit()
    assert "Renamed by the editor" in client.get(COURSE).get_data(as_text=True)
    assert "Renamed by the editor" in both_ways(app, client, COURSE)
    # a role change: the admin's header (and the app) on the next request
    db.session.execute(update(User).where(User.id == lee.id).values(role=Role.ADMIN))
    db.session.commit()
    promoted = not_answered(app, lambda: client.get(COURSE))
    assert "Studio" in promoted.get_data(as_text=True)
    db.session.execute(update(User).where(User.id == lee.id).values(role=Role.LEARNER))
    db.session.commit()
    assert "Studio" not in both_ways(app, client, COURSE)
    # a logout ends the login on the server: a copy of the cookie is refused at once
    for cookie in client._cookies.values():
        other_client.set_cookie(cookie.key, cookie.value)
    assert "Renamed" in both_ways(app, other_client, COURSE)
    client.submit("/logout")
    copied = not_answered(app, lambda: other_client.get(COURSE))
    assert copied.status_code == 200 and "Log out" not in copied.get_data(as_text=True)
    refused = not_answered(app, lambda: other_client.get(LESSON))
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]


def test_a_password_change_or_deactivation_ends_the_lane_at_once(client, other_client, app, world):
    lee = make_user(email="lee@example.org")
    ann = make_user(email="ann@example.org")
    for user in (lee, ann):
        enroll(user, world)
    login(client, "lee@example.org")
    login(other_client, "ann@example.org")
    client.get("/help")
    other_client.get("/help")
    both_ways(app, client, LESSON)
    both_ways(app, other_client, LESSON)
    db.session.execute(update(User).where(User.id == lee.id).values(session_version=User.session_version + 1))
    db.session.execute(update(User).where(User.id == ann.id).values(active=False))
    db.session.commit()
    for who in (client, other_client):
        refused = not_answered(app, lambda who=who: who.get(LESSON))
        assert refused.status_code == 302 and "/login" in refused.headers["Location"]


def test_the_switch_turns_the_lane_off(client, app, world):
    make_user(email="lee@example.org")
    login(client, "lee@example.org")
    client.get("/help")
    both_ways(app, client, COURSE)
    app.config["SIGNED_IN_LANE"] = False
    try:
        assert not_answered(app, lambda: client.get(COURSE)).status_code == 200
    finally:
        app.config["SIGNED_IN_LANE"] = True


def test_the_catalog_and_dashboard_equal_the_apps_answers(client, other_client, app, world):
    from tests.factories import make_program

    ann = make_user(email="ann@example.org", name="Ann <First>")
    bob = make_user(email="bob@example.org", name="Bob Second")
    make_course("alpha", title="Alpha course")
    make_course("bravo", title="Bravo course")
    make_program("pathway", ("alpha", "bravo"))
    for user in (ann, bob):
        enroll(user, world)
    login(client, "ann@example.org")
    login(other_client, "bob@example.org")
    client.get("/help")
    other_client.get("/help")
    assert "Ann &lt;First&gt;" in both_ways(app, client, "/courses")
    assert "Bob Second" in both_ways(app, other_client, "/courses")  # the catalog kept from Ann's, Bob's values
    page = both_ways(app, client, "/dashboard")
    assert "Ann &lt;First&gt;" in page and 'value="0"' in page
    assert client.submit("/programs/pathway/enroll").status_code == 303
    client.get("/help")  # the flashed message shown
    assert "Test Pathway" in both_ways(app, client, "/dashboard")
    complete_course(ann, world)
    page = both_ways(app, client, "/dashboard")
    assert "Completed" in page and "My skills profile" in page
    # Bob's dashboard is his own: never Ann's, though kept pages are per process
    bob_page = both_ways(app, other_client, "/dashboard")
    assert "Bob Second" in bob_page and "Test Pathway" not in bob_page and "Ann" not in bob_page
    ann.locale = "es"
    db.session.commit()
    assert "Mi aprendizaje" in both_ways(app, client, "/dashboard")


def test_the_dashboard_follows_progress_certificates_and_time(client, app, world, monkeypatch):
    from datetime import timedelta

    import core
    from core.database import utcnow
    from credentials.models import Certificate

    lee = make_user(email="lee@example.org")
    enroll(lee, world)
    second = make_course("second", title="Second course")
    login(client, "lee@example.org")
    client.get("/help")
    assert 'value="0"' in both_ways(app, client, "/dashboard")
    client.submit(LESSON + "/complete")
    page = both_ways(app, client, "/dashboard")
    assert 'value="17"' in page and "Lesson 1.2" in page
    complete_course(lee, second)
    certificate = db.session.scalar(select(Certificate).where(Certificate.user_id == lee.id))
    assert certificate is not None, "completing the course issued no certificate"
    page = both_ways(app, client, "/dashboard")
    assert "Second course" in page and "It does not count" not in page
    certificate.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    assert "It does not count" not in both_ways(app, client, "/dashboard")
    # two days on, nothing written: the certificate has expired, and the next request says so
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr(core, "utcnow", lambda: later)  # the app's skills profile (core/__init__.py)
    monkeypatch.setattr(signed_lane, "utcnow", lambda: later)
    expired = client.get("/dashboard").get_data(as_text=True)
    assert "It does not count in your skills profile now." in expired
    assert "It does not count" in both_ways(app, client, "/dashboard")
    # a revocation (a written change) shows at once too
    monkeypatch.undo()
    certificate.expires_at = None
    certificate.revoked_at = utcnow()
    db.session.commit()
    assert "Revoked" in client.get("/dashboard").get_data(as_text=True)


def test_a_permanent_session_goes_to_the_app(client, other_client, app, world):
    make_user(email="lee@example.org")
    login(client, "lee@example.org")
    client.get("/help")
    both_ways(app, client, COURSE)
    # a permanent session: Flask writes its cookie anew on every response (SESSION_REFRESH_EACH_REQUEST)
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(client.get_cookie("session").value)
    other_client.set_cookie("session", serializer.dumps({**data, "_permanent": True}))
    refreshed = not_answered(app, lambda: other_client.get(COURSE))
    assert refreshed.status_code == 200 and "session=" in refreshed.headers.get("Set-Cookie", "")
