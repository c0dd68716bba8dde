"""Fixtures: one migrated database per session (SQLite temp file, or TEST_DATABASE_URL), emptied after each test."""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from core import create_app
from core.extensions import db, limiter

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


# the W3C test vector's key pair, so signed test credentials are reproducible
TEST_SIGNING_KEYS = {
    "active": "key-1",
    "keys": [
        {
            "id": "key-1",
            "created": "2026-01-01T00:00:00Z",
            "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
            "privateKeyMultibase": "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq",
        }
    ],
}


def test_config(tmp_path_factory, database_url: str) -> dict:
    return {
        "SIGNING_KEYS": TEST_SIGNING_KEYS,
        "APP_ENV": "test",
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MAIL_OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
        "VERIFY_COUNT_BATCH": 1,  # write every verification count at once
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


@pytest.fixture(scope="session")
def app(tmp_path_factory, database_url) -> Iterator[Flask]:
    app = create_app(test_config(tmp_path_factory, database_url))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            # a reused TEST_DATABASE_URL may hold an older schema
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            downgrade(revision="base")
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean(app: Flask) -> Iterator[None]:
    limiter.reset()
    yield
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
    for path in os.listdir(app.config["MAIL_OUTBOX_DIR"]):
        os.unlink(os.path.join(app.config["MAIL_OUTBOX_DIR"], path))


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()


class Client(FlaskClient):
    """A test client that fills in the CSRF token from a real page, as a browser would.

    Each request runs in an empty contextvars.Context, so it gets its own app context
    (its own ``g`` and database session) even while the test holds one open, exactly
    as separate HTTP requests would.
    """

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)  # streamed bodies are read inside the request's own context
        return contextvars.Context().run(super().open, *args, **kwargs)

    def csrf_token(self, page: str = "/login") -> str:
        html = self.get(page).get_data(as_text=True)
        match = CSRF_RE.search(html)
        assert match, f"no CSRF token on {page}"
        return match.group(1) or match.group(2)

    def submit(self, url: str, data: dict | None = None, *, page: str | None = None, **kwargs):
        payload = {"csrf_token": self.csrf_token(page or url), **(data or {})}
        return self.post(url, data=payload, **kwargs)


@pytest.fixture
def client(app: Flask) -> Client:
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def other_client(app: Flask) -> Client:
    app.test_client_class = Client
    return app.test_client()


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args, **kwargs) -> None:
        self.count += 1


@pytest.fixture
def count_queries(app):
    """count_queries(fn) → number of SQL statements fn() ran (e.g. one client request)."""
    from sqlalchemy import event

    def run(fn) -> int:
        counter = QueryCounter()
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", counter)
        try:
            fn()
        finally:
            event.remove(engine, "before_cursor_execute", counter)
        return counter.count

    return run
