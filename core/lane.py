"""Fast lanes: WSGI layers in front of the app that answer a kept public read byte for byte as the app's own full
path answered it, without Flask's request machinery (request context, session, hooks, limiter, header building).

What every lane shares lives here (``BaseLane``): which requests may take a lane at all (a GET without a session
or remember-me cookie, without a conditional or Range header, no NUL in the path), the page language chosen
exactly as core.i18n.select_locale chooses it for a visitor, the app's own response headers captured on the way
out (after every response hook) and replayed, a route's rate limits hit on the same Flask-Limiter counters as its
decorator, the Host check of ``TRUSTED_HOSTS``, and the Date header. The lanes:

- ``PageLane`` below: the whole visitors' pages ``core.contentcache.cached_page`` keeps (catalog, course page,
  framework, skill, occupation, programs), per content version, checked on every request;
- credentials/lane.py: the verification answers and status lists.

Whatever a lane does not hold goes on to the app unchanged, which builds and keeps the answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from urllib.parse import parse_qsl

from flask import Flask
from limits import parse_many
from sqlalchemy import create_engine, event
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import SecurityError
from werkzeug.http import http_date, parse_accept_header, parse_cookie
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_current_url, get_host

from core.contentcache import KEPT_PAGE, MISS, VERSION_SQL, LocalStore
from core.extensions import db, limiter
from core.i18n import LANG_COOKIE, LANG_PARAM, SOURCE_LANGUAGE

# headers each request gets afresh (or the server adds): never replayed from a captured response
PER_REQUEST = frozenset(
    {
        "content-length",
        "etag",
        "date",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    }
)
CONDITIONAL = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_IF_RANGE", "HTTP_RANGE")
MEMO_SIZE = 256  # distinct Accept-Language (or Accept-Encoding) headers remembered with their answer


def drain(result) -> bytes:
    """The whole body of a WSGI answer, its iterable closed (as a server would) once read."""
    try:
        return b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()


class BaseLane:
    """What the lanes share; a lane is ``__call__`` (a WSGI app) around ``inner``, the app's WSGI callable."""

    def __init__(self, app: Flask, inner) -> None:
        self.app = app
        self.inner = inner
        self._limits: dict[str, list] = {}
        self._languages: dict[str, str] = {}
        self._engine = None
        self._reader: tuple[int, object] | None = None
        self._raw = threading.local()
        self._held: list = []  # threads' connections to an in-memory database, closed with the app's engine
        self._generation = 0
        self._lock = threading.Lock()
        self._forked: list = []  # engines made before a fork: never closed here (they are the parent's too)
        self._date_of = (0, "")

    def may_take(self, environ) -> bool:
        """A GET a lane may answer: no session or remember-me cookie (a signed-in person's page is theirs, and
        their request may refresh their cookie), no conditional or Range request, no NUL in the path (the app
        refuses those with a 400)."""
        if environ.get("REQUEST_METHOD") != "GET":
            return False
        cookie = environ.get("HTTP_COOKIE")
        if cookie:
            cfg = self.app.config
            names = (cfg["SESSION_COOKIE_NAME"] + "=", cfg.get("REMEMBER_COOKIE_NAME", "remember_token") + "=")
            if any(name in cookie for name in names):
                return False
        return "\x00" not in environ.get("PATH_INFO", "") and not any(name in environ for name in CONDITIONAL)

    def language(self, environ, query: str = "") -> str:
        """core.i18n.select_locale for a visitor without an account: ``?lang=`` (first value), the ``lang``
        cookie, else Accept-Language, else English."""
        supported = self.app.extensions["i18n_languages"]
        if query and LANG_PARAM in query:
            explicit = next(
                (value for name, value in parse_qsl(query, keep_blank_values=True) if name == LANG_PARAM), None
            )
            if explicit in supported:
                return explicit
        cookie = environ.get("HTTP_COOKIE")
        if cookie:
            chosen = parse_cookie(cookie).get(LANG_COOKIE)
            if chosen in supported:
                return chosen
        header = environ.get("HTTP_ACCEPT_LANGUAGE", "")
        found = self._languages.get(header)
        if found is None:
            found = parse_accept_header(header, LanguageAccept).best_match(supported, default=SOURCE_LANGUAGE)
            if len(self._languages) < MEMO_SIZE:
                self._languages[header] = found
        return found

    def current_url(self, environ) -> str | None:
        """The request's URL as the app sees it, or None when the app would refuse the Host (TRUSTED_HOSTS)."""
        trusted = self.app.config.get("TRUSTED_HOSTS")
        try:
            if trusted:
                get_host(environ, trusted_hosts=trusted)
            return get_current_url(environ)
        except SecurityError:
            return None

    def rate_headers(self, environ, endpoint: str, setting: str) -> list[tuple[str, str]] | None:
        """Hit the route's limits as its Flask-Limiter decorator would (same strategy, storage and keys); None
        when one refuses (the app answers the 429), else the rate limit headers the app would add."""
        if not limiter.enabled:
            return []
        items = self._limits.get(setting)
        if items is None:
            items = self._limits[setting] = sorted(parse_many(setting))
        args = [environ.get("REMOTE_ADDR") or "127.0.0.1", endpoint]
        if limiter._key_prefix:
            args.insert(0, limiter._key_prefix)
        strategy = limiter.limiter
        for item in items:
            if not strategy.hit(item, *args):
                return None
        if not self.app.config.get("RATELIMIT_HEADERS_ENABLED"):
            return []
        reset_time, remaining = strategy.get_window_stats(items[0], *args)
        reset_at = int(reset_time + 1)
        return [
            ("X-RateLimit-Limit", str(items[0].amount)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset_at)),
            ("Retry-After", str(int(reset_at - time.time()))),
        ]

    @staticmethod
    def replayable(status: str, headers) -> list[tuple[str, str]] | None:
        """The headers of an app's answer a lane may send again (those not made per request), or None when the
        answer is not one to replay (not a 200, or it sets a cookie)."""
        if not status.startswith("200 ") or any(name.lower() == "set-cookie" for name, _ in headers):
            return None
        return [(n, v) for n, v in headers if n.lower() not in PER_REQUEST]

    @staticmethod
    def sets_date(headers) -> bool:
        return any(n.lower() == "date" for n, _ in headers)

    def reply(self, kept: tuple[list, bool], body: bytes, extra: list[tuple[str, str]]):
        """(status, headers, body) of a replayed 200: the kept headers, this body's length, ``extra`` (rate
        limits, an ETag) and, when the app set one (make_conditional does), this second's Date."""
        headers = [*kept[0], ("Content-Length", str(len(body))), *extra]
        return "200 OK", headers + self.date() if kept[1] else headers, body

    def engine(self):
        """The app's engine (writes: the verification counter)."""
        if self._engine is None:
            with self.app.app_context():
                self._engine = db.engine
        return self._engine

    def reader(self):
        """An engine for the lanes' one-statement reads, on the app's database: autocommit (nothing to roll back
        when the connection goes back) and no pre-ping (a read on a connection the database dropped fails, the
        app answers, and SQLAlchemy replaces the connection): one round trip per read instead of three (ping,
        query, rollback). An in-memory SQLite database is the app's own connection: its engine is used. Disposing
        of the app's engine closes this one's connections too."""
        if self._reader is None or self._reader[0] != os.getpid():
            engine = self.engine()
            if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
                reader = engine
            else:
                options = self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
                reader = create_engine(
                    engine.url,
                    isolation_level="AUTOCOMMIT",
                    pool_pre_ping=False,
                    pool_reset_on_return=None,  # autocommit: nothing to roll back when a read gives it back
                    connect_args=dict(options.get("connect_args") or {}),
                )
                if not event.contains(engine, "engine_disposed", self._close):
                    event.listen(engine, "engine_disposed", self._close)
            if self._reader is not None:
                self._forked.append(self._reader)  # the parent's: left alone
            self._reader = (os.getpid(), reader)
        return self._reader[1]

    def read_value(self, sql: str):
        """The first column of the first row of a constant ``sql`` (no parameters), read on this thread's own
        autocommit connection with the driver's own cursor: the cheapest read there is (~0.1 ms of CPU against
        ~0.8 ms through a pre-pinged pooled SQLAlchemy connection), for a value read on every request."""
        row = self.read_row(sql)
        return row[0] if row else None

    def read_row(self, sql: str, params=None):
        """The first row of ``sql`` (with the driver's ``params``, if any), on an autocommit connection of the
        reader's pool taken for this read and given back after it: a connection kept per thread was never given
        back when its thread ended, so a server with a thread per request (`flask run`, `make run`) ran out of
        the pool's 15 connections after a few dozen pages and every later page waited 30 s for one. A failed
        read drops its connection (the app answers that request)."""
        reader = self.reader()
        if reader is self._engine:
            return self._read_on_thread(sql, params)
        connection = reader.raw_connection()
        try:
            driver = connection.driver_connection
            return (driver.execute(sql) if params is None else driver.execute(sql, params)).fetchone()
        except Exception:
            connection.invalidate()
            raise
        finally:
            connection.close()

    def _read_on_thread(self, sql: str, params):
        """An in-memory SQLite database (tests) is the app's one shared connection: read on it, held by this
        thread and never given back, since giving it back would roll back whatever the app has open on it."""
        held = getattr(self._raw, "connection", None)
        if held is None or held[0] != (os.getpid(), self._generation):
            held = (os.getpid(), self._generation), self._engine.raw_connection()
            with self._lock:
                self._held.append(held)
            self._raw.connection = held
        try:
            driver = held[1].driver_connection
            return (driver.execute(sql) if params is None else driver.execute(sql, params)).fetchone()
        except Exception:
            self._raw.connection = None
            try:
                held[1].invalidate()
            finally:
                raise

    def _close(self, engine=None) -> None:
        """Close this process's reading connections (the app's engine was disposed of)."""
        with self._lock:
            held, self._held = self._held, []
            self._generation += 1
        for (pid, _), connection in held:
            if pid == os.getpid():
                connection.invalidate()
        if self._reader is not None and self._reader[0] == os.getpid() and self._reader[1] is not self._engine:
            self._reader[1].dispose()
        self._reader = None

    def date(self) -> list[tuple[str, str]]:
        second = int(time.time())
        if self._date_of[0] != second:
            self._date_of = (second, http_date(second))
        return [("Date", self._date_of[1])]


def install(app: Flask, lane_class) -> None:
    """Put a lane in front of the app, behind ProxyFix when there is one (so it sees the client's address, scheme
    and host); a lane installed later runs before those installed earlier."""
    wsgi = app.wsgi_app
    if isinstance(wsgi, ProxyFix):
        wsgi.app = lane_class(app, wsgi.app)
    else:
        app.wsgi_app = lane_class(app, wsgi)


class PageLane(BaseLane):
    """Whole visitors' pages, answered as the app answered them under the current content version.

    Key: scheme, Host, script root, path, the query string exactly as sent (two spellings of one filter are two
    pages: the language links echo the query) and the page language. The content version is read on every
    request (one SELECT on a pooled connection), so a publish on any app server is seen on the next request.
    A page is kept only when the app's answer was a kept page (``cached_page`` marks the request), with this
    lane's language equal to the one the app chose, every query parameter one the view reads, no cookie set and
    no rate limit on the route; with its status line, headers (in order) and body as the app sent them.
    """

    def __init__(self, app: Flask, inner) -> None:
        super().__init__(app, inner)
        self.pages = LocalStore(int(app.config["CONTENT_CACHE_PAGE_BYTES"]))

    def __call__(self, environ, start_response):
        if not self.app.config["CONTENT_CACHE"] or not self.may_take(environ):
            return self.inner(environ, start_response)
        try:
            key = self._key(environ)
            # a page this lane holds under no version cannot be a hit: no read of the version for it (every login
            # page, error page and form a visitor opens reaches the app, and that read was a third of its hooks)
            version = self._version() if self.pages.holds(key) else None
            hit = self.pages.get(version, key) if version else MISS
        except Exception:  # whatever went wrong, the full path answers (and reports) it
            logging.getLogger(__name__).exception("visitors' page lane")
            return self.inner(environ, start_response)
        if hit is not MISS:
            status, headers, body = hit
            start_response(status, list(headers))
            return [body]
        return self._keeping(environ, start_response, key)

    def _key(self, environ) -> tuple:
        query = environ.get("QUERY_STRING", "")
        return (
            environ.get("wsgi.url_scheme"),
            environ.get("HTTP_HOST") or environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"),
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            query,
            self.language(environ, query),
        )

    def _version(self) -> str | None:
        return self.read_value(VERSION_SQL)

    def _keeping(self, environ, start_response, key: tuple):
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.inner(environ, capture)
        mark = environ.get(KEPT_PAGE)
        if mark is None or not answer or self.replayable(answer[0], answer[1]) is None:
            return result
        version, language, params, limited = mark
        query = key[5]
        names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        if limited or language != key[6] or not names <= params:
            return result
        body = drain(result)
        self.pages.put(version, key, (answer[0], list(answer[1]), body), cost=len(body) + 1000)
        return [body]
