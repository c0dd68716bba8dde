"""The content cache (core/contentcache.py): pages that change only on publish, keyed by a content version.

What must hold: a publish (studio, `flask courses import`, `flask skills load`) shows on the very next request
on every app server; visitors' pages carry no session or CSRF cookie; nothing personal or language-specific
leaks from one visitor's page to another's.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from accounts.models import Role
from core import create_app
from core.contentcache import ContentVersion
from core.extensions import db
from courses.catalog import spec_files
from tests.conftest import Client
from tests.conftest import test_config as config_for
from tests.factories import course_spec, enroll, load_test_framework, login, make_course, make_user, sign_in


def token() -> str | None:
    return db.session.scalar(select(ContentVersion.token))


@pytest.fixture
def second_server(app, tmp_path_factory, database_url):
    """Another app server on the same database, with its own process-local cache."""
    other = create_app(config_for(tmp_path_factory, database_url))
    other.test_client_class = Client
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def studio_post(client, url: str, data: dict, *, slug: str):
    """A studio form as the page submits it: its CSRF token and the draft revision it showed."""
    page = client.get(f"/studio/{slug}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    revision = re.search(r'name="revision" (?:type="hidden" )?value="(\d+)"', page).group(1)
    return client.post(url, data={"csrf_token": csrf, "revision": revision, **data})


def test_a_publish_on_one_server_shows_on_the_next_request_on_every_server(
    app, client, other_client, ctx, second_server
):
    load_test_framework()
    course = make_course("ai-basics", title="AI Basics")
    make_user(email="admin@example.org", role=Role.ADMIN)
    enroll(make_user(email="lee@example.org"), course)
    visitor_b, learner_b = second_server.test_client(), second_server.test_client()
    sign_in(learner_b, "lee@example.org")
    # both servers have the pages cached (the second request of each is a hit)
    for _ in range(2):
        assert "A new lesson" not in client.get("/courses/ai-basics").get_data(as_text=True)
        assert "A new lesson" not in visitor_b.get("/courses/ai-basics").get_data(as_text=True)
        assert "A new lesson" not in learner_b.get("/courses/ai-basics").get_data(as_text=True)
    before = token()

    login(other_client, "admin@example.org")  # the admin works on server A
    studio_post(
        other_client,
        "/studio/ai-basics/modules/0/lessons/new",
        {"title": "A new lesson", "minutes": "5", "body": "New.", "save": "1"},
        slug="ai-basics",
    )
    db.session.expire_all()
    assert token() == before  # a draft is not live: nothing re-keyed
    assert studio_post(other_client, "/studio/ai-basics/publish", {}, slug="ai-basics").status_code == 303
    db.session.expire_all()
    assert token() != before

    assert "A new lesson" in visitor_b.get("/courses/ai-basics").get_data(as_text=True)
    assert "A new lesson" in learner_b.get("/courses/ai-basics").get_data(as_text=True)
    assert "A new lesson" in client.get("/courses/ai-basics").get_data(as_text=True)
    lesson = learner_b.get("/courses/ai-basics/module-1/a-new-lesson")
    assert lesson.status_code == 200 and "New." in lesson.get_data(as_text=True)


def test_a_cached_page_costs_no_statement_of_the_app_and_learner_activity_keeps_the_cache(client, ctx, count_queries):
    load_test_framework()
    course = make_course("ai-basics", title="AI Basics")
    client.get("/courses")
    # kept: answered by the visitors' page lane (core/lane.py), whose one read of the content version is on its
    # own connection, not the app's engine (tests/test_visitor_lane.py counts it)
    assert count_queries(lambda: client.get("/courses")) == 0
    assert count_queries(lambda: client.get("/courses/ai-basics")) > 1  # first visit renders
    assert count_queries(lambda: client.get("/courses/ai-basics")) == 0
    before = token()
    learner = make_user(email="lee@example.org")
    enroll(learner, course)  # enrolling, progress, attempts: learner data, not content
    assert token() == before


def test_visitors_get_no_cookie_on_pages_without_a_form(client, ctx):
    load_test_framework()
    make_course("ai-basics")
    for path in ("/courses", "/courses?occupation=47-2111.00", "/courses/ai-basics", "/framework", "/skills/AIL-01"):
        for _ in range(2):  # the rendered page and the cached one
            response = client.get(path)
            assert response.status_code == 200
            assert "Set-Cookie" not in response.headers, path
            assert "csrf_token" not in response.get_data(as_text=True), path
            assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "Accept-Language" in response.headers["Vary"]
    assert client.get_cookie("session") is None


def test_the_page_language_is_part_of_the_key(client, ctx):
    load_test_framework()
    make_course("ai-basics", title="AI Basics")
    english = client.get("/courses").get_data(as_text=True)
    spanish = client.get("/courses", headers={"Accept-Language": "es"}).get_data(as_text=True)
    explicit = client.get("/courses?lang=es").get_data(as_text=True)
    again = client.get("/courses").get_data(as_text=True)
    assert '<html lang="en">' in english and '<html lang="en">' in again
    assert '<html lang="es">' in spanish and '<html lang="es">' in explicit
    assert "Cualquier idioma" in spanish and "Any language" in english and "Any language" in again
    client.set_cookie("lang", "es")
    assert '<html lang="es">' in client.get("/courses/ai-basics").get_data(as_text=True)


def test_the_course_language_orders_the_cached_catalog_per_reader(client, ctx):
    load_test_framework()
    make_course("ai-basics", title="B English course")
    spanish = make_course("curso", title="C Curso en español")
    spanish.language = "es"
    db.session.commit()
    english = client.get("/courses").get_data(as_text=True)
    in_spanish = client.get("/courses?lang=es").get_data(as_text=True)
    assert english.index("B English course") < english.index("C Curso en español")
    assert in_spanish.index("C Curso en español") < in_spanish.index("B English course")


def test_logged_in_pages_are_never_the_visitors_copy(client, other_client, ctx):
    load_test_framework()
    make_course("ai-basics")
    make_user(email="lee@example.org", name="Lee Learner")
    assert "Lee Learner" not in other_client.get("/courses").get_data(as_text=True)  # cached for visitors
    sign_in(client, "lee@example.org")
    mine = client.get("/courses").get_data(as_text=True)
    assert "Lee Learner" in mine and "Log out" in mine
    course = client.get("/courses/ai-basics").get_data(as_text=True)
    assert "Enroll for free" in course and "csrf_token" in course
    visitor = other_client.get("/courses/ai-basics").get_data(as_text=True)
    assert "Lee Learner" not in visitor and "Log in to enroll" in visitor and "csrf_token" not in visitor
    assert client.get("/courses").headers["Cache-Control"] == "no-store"


def test_a_visitor_with_a_message_waiting_sees_it(client, ctx):
    load_test_framework()
    make_course("ai-basics")
    client.get("/courses")  # cached
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "A message for this visitor only")]
    assert "A message for this visitor only" in client.get("/courses").get_data(as_text=True)
    assert "A message for this visitor only" not in client.get("/courses").get_data(as_text=True)


def test_courses_import_and_skills_load_re_key_the_cache(app, client, ctx, tmp_path):
    load_test_framework()
    make_course("ai-basics", title="Old title")
    assert token() is not None  # caching is on
    assert "Old title" in client.get("/courses").get_data(as_text=True)
    folder = tmp_path / "ai-basics"
    for relative, text in spec_files(course_spec("ai-basics", title="New title")).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    result = app.test_cli_runner().invoke(args=["courses", "import", str(folder)])
    assert result.exit_code == 0, result.output
    page = client.get("/courses").get_data(as_text=True)
    assert "New title" in page and "Old title" not in page

    assert "AI Foundations" in client.get("/framework").get_data(as_text=True)
    framework = tmp_path / "framework.yaml"
    from tests.factories import FRAMEWORK_YAML

    framework.write_text(FRAMEWORK_YAML.replace("name: AI Foundations", "name: AI Groundwork"))
    result = app.test_cli_runner().invoke(args=["skills", "load", str(framework)])
    assert result.exit_code == 0, result.output
    page = client.get("/framework").get_data(as_text=True)
    assert "AI Groundwork" in page and "AI Foundations" not in page


def test_an_emptied_database_turns_caching_off_until_the_next_content_write(client, ctx):
    load_test_framework()
    make_course("ai-basics", title="AI Basics")
    assert "AI Basics" in client.get("/courses").get_data(as_text=True)
    db.session.execute(ContentVersion.__table__.delete())
    db.session.commit()
    assert "AI Basics" in client.get("/courses").get_data(as_text=True)
    make_course("second", title="Second course")
    page = client.get("/courses").get_data(as_text=True)
    assert "AI Basics" in page and "Second course" in page


@pytest.mark.nodb
def test_the_process_store_stays_within_its_budget_and_drops_old_versions():
    from core.contentcache import _MISS, LocalStore

    store = LocalStore(100)
    store.put("v1", ("a",), "A", cost=40)
    store.put("v1", ("b",), "B", cost=40)
    assert store.get("v1", ("a",)) == "A"  # now the most recently used
    store.put("v1", ("c",), "C", cost=40)
    assert store.get("v1", ("b",)) is _MISS and store.get("v1", ("a",)) == "A" and store.used == 80
    store.put("v1", ("huge",), "H", cost=101)
    assert store.get("v1", ("huge",)) is _MISS
    assert store.get("v2", ("a",)) is _MISS  # another version never sees v1's entries
    store.put("v2", ("a",), "A2", cost=10)
    assert store.get("v1", ("c",)) is _MISS and store.used == 10 and store.get("v2", ("a",)) == "A2"
