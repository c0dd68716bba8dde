"""Issue 17: visitors' pages answered by core/lane.py's PageLane in front of Flask, byte for byte as the app answers
them (status, headers in order, body), per content version checked on every request, never to a signed-in person,
and never for a query or header the app would answer differently. (Speed: bench/cpu.py, bench/pages.py.)"""

from __future__ import annotations

import pytest
from flask import request_started

from core import create_app
from core.contentcache import cached_page
from core.extensions import db, limiter
from core.lane import PageLane
from tests.conftest import Client
from tests.conftest import test_config as config_for
from tests.factories import load_test_framework, login, make_course, make_user

PAGES = (
    "/courses",
    "/courses?occupation=47-2111.00",
    "/courses?q=safety",
    "/courses?q=AI&language=en",
    "/courses/ai-basics",
    "/framework",
    "/skills/AIL-01",
    "/programs",
)
# (headers, the lang cookie the switcher sets)
LANGUAGES = (
    ({}, None),
    ({"Accept-Language": "es-MX,es;q=0.9"}, None),
    ({"Accept-Language": "fr, en;q=0.5"}, None),
    ({}, "es"),
    ({"Accept-Language": "es"}, "en"),
)


class AppCalls:
    """Counts the requests that reached Flask (the lane answers the others without a request context)."""

    def __init__(self, app) -> None:
        self.app, self.count = app, 0

    def note(self, sender, **extra) -> None:
        self.count += 1

    def __enter__(self):
        request_started.connect(self.note, self.app)
        return self

    def __exit__(self, *exc) -> None:
        request_started.disconnect(self.note, self.app)


def answer(response) -> tuple:
    return response.status, response.headers.to_wsgi_list(), response.data


def full_path(app, client, url: str, **kwargs):
    """The app's own answer: content cache (and with it the lane) off, the page rendered from the database."""
    app.config["CONTENT_CACHE"] = False
    try:
        return client.get(url, **kwargs)
    finally:
        app.config["CONTENT_CACHE"] = True


@pytest.fixture
def site(ctx):
    load_test_framework()
    return make_course("ai-basics", title="AI Basics")


def test_the_lane_answers_each_page_in_each_language_as_the_app_does(app, client, site):
    for url in PAGES:
        for headers, cookie in LANGUAGES:
            if cookie:
                client.set_cookie("lang", cookie)
            else:
                client.delete_cookie("lang")
            built = client.get(url, headers=headers)  # the app builds (or serves its kept copy): the lane keeps it
            with AppCalls(app) as calls:
                lane = client.get(url, headers=headers)
            assert calls.count == 0, (url, headers)  # answered in front of Flask
            assert lane.status_code == 200
            assert answer(lane) == answer(built) == answer(full_path(app, client, url, headers=headers))
    client.set_cookie("lang", "es")
    spanish = client.get("/courses")
    assert '<html lang="es">' in spanish.get_data(as_text=True) and "Accept-Language" in spanish.headers["Vary"]
    assert "Set-Cookie" not in spanish.headers and spanish.headers["X-Frame-Options"] == "DENY"
    assert client.get_cookie("session") is None


def test_a_kept_page_costs_one_read_of_the_content_version_and_nothing_of_the_app(
    app, client, site, count_queries, monkeypatch
):
    lane = app.wsgi_app
    while not isinstance(lane, PageLane):
        lane = lane.inner
    reads = []
    real_read = lane.read_value
    monkeypatch.setattr(lane, "read_value", lambda sql: reads.append(sql) or real_read(sql))
    client.get("/courses/ai-basics")
    reads.clear()
    assert count_queries(lambda: client.get("/courses/ai-basics")) == 0  # no statement on the app's engine
    assert len(reads) == 1 and "content_versions" in reads[0]


def test_a_thread_per_request_server_never_runs_out_of_reading_connections(app, client, site):
    """`flask run` (make run) serves each request on a new thread: the lane's reads must give their connection
    back (kept per thread, they exhausted the pool after ~15 threads and every later page waited 30 s)."""
    import threading

    lane = app.wsgi_app
    while not isinstance(lane, PageLane):
        lane = lane.inner
    client.get("/courses/ai-basics")
    answers = []
    for _ in range(40):  # more threads than the pool's 5 + 10 connections
        thread = threading.Thread(target=lambda: answers.append(client.get("/courses/ai-basics").status_code))
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "a page waited for a reading connection"
    assert answers == [200] * 40
    reader = lane.reader()
    if reader is not lane.engine():  # a database file or server: the lane's own pool, all given back
        assert reader.pool.checkedout() == 0


def test_an_explicit_language_in_the_query_is_its_own_page(app, client, site):
    for url in ("/courses?lang=es", "/framework?lang=en", "/courses?lang=es&occupation=47-2111.00"):
        for headers, cookie in (({}, None), ({"Accept-Language": "es"}, None), ({}, "en")):
            if cookie:
                client.set_cookie("lang", cookie)
            client.get(url, headers=headers)
            with AppCalls(app) as calls:
                lane = client.get(url, headers=headers)
            assert calls.count == 0
            assert answer(lane) == answer(full_path(app, client, url, headers=headers))
    assert '<html lang="es">' in client.get("/courses?lang=es").get_data(as_text=True)  # over the lang=en cookie


def test_a_publish_is_seen_on_the_next_request_on_every_server(app, client, site, tmp_path_factory, database_url):
    other = create_app(config_for(tmp_path_factory, database_url))
    other.test_client_class = Client
    try:
        visitor_b = other.test_client()
        for server, application in ((client, app), (visitor_b, other)):
            for _ in range(2):
                server.get("/courses/ai-basics")
                server.get("/courses")
            with AppCalls(application) as calls:  # both lanes hold both pages now
                assert "AI Basics" in server.get("/courses/ai-basics").get_data(as_text=True)
                assert "AI Basics" in server.get("/courses").get_data(as_text=True)
            assert calls.count == 0

        site.title = "AI Basics, second edition"  # any write to content renews the content version at commit
        db.session.commit()
        for server in (client, visitor_b):
            assert "AI Basics, second edition" in server.get("/courses/ai-basics").get_data(as_text=True)
            assert "AI Basics, second edition" in server.get("/courses").get_data(as_text=True)
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_signed_in_request_never_gets_a_visitors_page(app, client, site):
    make_user(email="lee@example.org", name="Lee Learner")
    for _ in range(2):
        assert "Log in" in client.get("/courses").get_data(as_text=True)  # kept by the lane
    login(client, "lee@example.org")
    with AppCalls(app) as calls:
        page = client.get("/courses").get_data(as_text=True)
    assert calls.count == 1 and "Log out" in page and "Log in" not in page
    # a remember-me cookie alone (the session expired) also goes to the app, which signs the person in again
    client.delete_cookie("session")
    client.set_cookie("remember_token", "anything")  # not a valid token: the app answers as to a visitor
    with AppCalls(app) as calls:
        client.get("/courses")
    assert calls.count == 1


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/courses?q=%3Cscript%3Ealert(1)%3C/script%3E", {}),
        ("/courses?q=%ff%fe%fd", {}),
        ("/courses?q=" + "x" * 300, {}),  # over the field's length: the form's error page
        ("/courses?occupation=47-2111.00&occupation=15-1252.00", {}),
        ("/courses?occupation=%22%3E%3Cb%3E", {}),
        ("/courses?lang=xx", {"Accept-Language": "es"}),
        ("/courses?lang=es&lang=en", {}),
        ("/courses?lang", {}),
        ("/courses?&&=&q=safety", {}),
        ("/courses", {"Accept-Language": "es;q=abc, *;q=0, en-GB;q=0.5"}),
        ("/courses", {"Accept-Language": "x" * 500}),
        ("/courses", {"Cookie": "lang=zz; other=1"}),
        ("/courses", {"Cookie": 'lang="es"'}),
        ("/courses", {"Cookie": "lang=es; lang=en"}),
        ("/framework", {"Host": "Example.ORG:8080"}),
        ("/skills/ail-01", {}),
        ("/skills/NOPE-99", {}),
        ("/courses/no-such-course", {}),
    ],
)
def test_hostile_queries_and_headers_get_what_the_app_answers(app, site, url, headers):
    client = app.test_client(use_cookies=False)  # the Cookie header as given
    expected = answer(full_path(app, client, url, headers=headers))
    for _ in range(3):  # built, then (where the lane keeps it) answered by the lane
        assert answer(client.get(url, headers=headers)) == expected


def test_unknown_parameters_conditional_and_other_methods_go_to_the_app(app, client, site):
    for url, kwargs in (
        ("/courses?page=2", {}),  # a parameter the catalog does not read
        ("/framework?q=x", {}),
        ("/courses", {"headers": {"If-None-Match": '"x"'}}),
        ("/courses", {"headers": {"Range": "bytes=0-10"}}),
    ):
        client.get(url, **kwargs)
        with AppCalls(app) as calls:
            assert client.get(url, **kwargs).status_code == 200
        assert calls.count == 1, url
    client.get("/courses")
    with AppCalls(app) as calls:
        assert client.head("/courses").status_code == 200
        assert client.get("/courses?%00").status_code == 400
    assert calls.count == 2


def test_a_page_whose_route_has_a_rate_limit_is_left_to_the_app(tmp_path_factory, database_url):
    limited = create_app(config_for(tmp_path_factory, database_url))
    limited.add_url_rule("/limited", "limited", limiter.limit("2 per minute")(cached_page(lambda: "kept")))
    visitor = limited.test_client()
    try:
        with limited.app_context():
            load_test_framework()  # a content version to key on
            db.session.commit()
        assert [visitor.get("/limited").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        with limited.app_context():
            db.session.remove()
            db.engine.dispose()
