"""The signed-in lane (courses/lane.py) for a filtered or searched catalog and for /courses/<slug>/continue: byte
for byte what the app answers for the same request, in English and Spanish; the search echoed escaped; refused
queries answered by the app (400); the next step follows the learner's progress on the very next request."""

from __future__ import annotations

import pytest

from courses import lane as signed_lane
from tests.conftest import Client
from tests.factories import complete_course, enroll, login, make_course, make_user
from tests.test_signed_in_lane import answer, both_ways, environ_of, fresh_lane, not_answered

COURSE = "/courses/ai-basics"
CONTINUE = COURSE + "/continue"


@pytest.fixture
def world(app, ctx):
    fresh_lane(app)
    return make_course("ai-basics")


def redirect_both_ways(app, client, path: str) -> tuple[str, list, str]:
    """As both_ways, for a redirect: the whole answer (status, headers but Date, body)."""
    the_lane = signed_lane.find(app)
    client.get(path)  # the app answers; the lane keeps it
    before = the_lane.answered
    from_lane = answer(app.wsgi_app, environ_of(client, path))
    assert the_lane.answered == before + 1, f"the lane did not answer {path}"
    from_app = answer(the_lane.inner, environ_of(client, path))
    assert from_lane == from_app and the_lane.answered == before + 1
    assert from_lane[0].startswith("302 ")
    return from_lane


def learner(app, email: str, name: str):
    user = make_user(email=email, name=name)
    app.test_client_class = Client
    browser = app.test_client()
    login(browser, email)
    browser.get("/help")  # "Welcome back" shown and gone
    return user, browser


@pytest.mark.parametrize(
    "query",
    [
        "q=basics",
        "language=en",
        "goal=G1",
        "q=ai&language=en&audience=",
        "q=%3Cscript%3E%22caf%C3%A9%22+%26+more",
        "q=nothing+matches+this",
    ],
)
def test_a_filtered_catalog_equals_the_apps_answer_for_every_learner(app, world, query):
    _, ann = learner(app, "ann@example.org", "Ann <First>")
    _, bob = learner(app, "bob@example.org", "Bob Second")
    url = "/courses?" + query
    page = both_ways(app, ann, url)
    assert "Ann &lt;First&gt;" in page and "Bob" not in page
    bob_page = both_ways(app, bob, url)  # the page kept from Ann's request, filled with Bob's values
    assert "Bob Second" in bob_page and "Ann" not in bob_page
    assert 'lang="es"' in both_ways(app, ann, url, **{"Accept-Language": "es"})
    if "script" in query:  # the search box echoes the query, escaped
        assert "&lt;script&gt;&#34;café&#34; &amp; more" in page and "<script>" not in page


def test_refused_and_foreign_queries_go_to_the_app(app, world):
    _, ann = learner(app, "ann@example.org", "Ann First")
    # a search longer than the form takes (and one longer than the lane looks at), a NUL: the app's 400
    for url in ("/courses?q=" + "x" * 101, "/courses?q=" + "x" * 600, "/courses?%00", "/courses?q=%00"):
        for _ in range(2):  # the second would be the lane's, were the first kept
            assert not_answered(app, lambda url=url: ann.get(url)).status_code == 400, url
    for url in ("/courses?lang=es", "/courses?q=ai&lang=es", "/courses?utm_source=mail", COURSE + "?x=1"):
        for _ in range(2):
            assert not_answered(app, lambda url=url: ann.get(url)).status_code == 200
    assert 'lang="es"' in ann.get("/courses?lang=es").get_data(as_text=True)


def test_continue_follows_progress_on_the_next_request(app, world):
    from tests.conftest import queries_run

    lee, browser = learner(app, "lee@example.org", "Lee Learner")
    # not enrolled: the app flashes why and sends them to the course page (a cookie is set: never kept)
    for _ in range(2):
        refused = not_answered(app, lambda: browser.get(CONTINUE))
        assert refused.status_code == 302 and refused.headers["Location"] == COURSE
    browser.get(COURSE)  # the message shown
    enroll(lee, world)
    _, headers, _ = redirect_both_ways(app, browser, CONTINUE)
    assert dict(headers)["Location"] == COURSE + "/module-1/lesson-1-1"
    browser.submit(COURSE + "/module-1/lesson-1-1/complete")
    browser.get(COURSE + "/module-1/lesson-1-2")  # the flashed "done" message shown
    moved = browser.get(CONTINUE)  # the very next request
    assert moved.headers["Location"] == COURSE + "/module-1/lesson-1-2"
    _, headers, _ = redirect_both_ways(app, browser, CONTINUE)
    assert dict(headers)["Location"] == COURSE + "/module-1/lesson-1-2"
    # another learner in the same state gets the kept redirect; one at the start their own
    ann, other = learner(app, "ann@example.org", "Ann First")
    enroll(ann, world)
    assert dict(redirect_both_ways(app, other, CONTINUE)[1])["Location"] == COURSE + "/module-1/lesson-1-1"
    # learners at the same next step share the kept redirect whatever else they did: lesson 2.1 done out of
    # order still leads to lesson 1.2
    carl, third = learner(app, "carl@example.org", "Carl Third")
    enroll(carl, world)
    for lesson in ("/module-1/lesson-1-1", "/module-2/lesson-2-1"):
        assert third.submit(COURSE + lesson + "/complete").status_code == 303
    third.get(COURSE)  # the flashed messages shown
    the_lane = signed_lane.find(app)
    answered = the_lane.answered
    shared = third.get(CONTINUE)
    assert the_lane.answered == answered + 1 and shared.headers["Location"] == COURSE + "/module-1/lesson-1-2"
    # a kept redirect costs no statement of the app's: the lane's one read
    reads = the_lane.reads
    assert queries_run(app, lambda: browser.get(CONTINUE)) == 0 and the_lane.reads == reads + 1
    # every step done: the course page
    complete_course(lee, make_course("second", title="Second course"))
    done = browser.get("/courses/second/continue")
    assert done.status_code == 302 and done.headers["Location"] == "/courses/second"
    assert dict(redirect_both_ways(app, browser, "/courses/second/continue")[1])["Location"] == "/courses/second"


def test_continue_of_an_unknown_course_or_a_foreign_session_goes_to_the_app(app, world):
    lee, browser = learner(app, "lee@example.org", "Lee Learner")
    enroll(lee, world)
    redirect_both_ways(app, browser, CONTINUE)
    assert not_answered(app, lambda: browser.get("/courses/no-such-course/continue")).status_code == 404
    stolen = environ_of(browser, CONTINUE, **{"User-Agent": "Another/1.0"})
    status, headers, _ = not_answered(app, lambda: answer(app.wsgi_app, stolen))
    assert status.startswith("302") and "/login" in dict(headers)["Location"]
    other = make_course("second", title="Second course")
    assert other is not None
    refused = not_answered(app, lambda: browser.get("/courses/second/continue"))
    assert refused.status_code == 302 and refused.headers["Location"] == "/courses/second"
