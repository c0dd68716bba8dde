"""The verification fast lane: a WSGI layer in front of the app that answers the two hottest public reads when
the answer is already kept, without Flask's request machinery (request context, session, hooks).

- ``GET /credentials/status/<list>``: the served copy (status_cache.py) when the change stamp has not moved and
  the copy is within its ttl: no database at all.
- ``GET /api/v1/certificates/<id>``: one narrow SELECT (answers.py), then the kept JSON bytes for that row and
  status, built here from the row the first time (once the app has answered one such request, whose headers
  the lane replays).
- ``GET /verify/<id>`` from a visitor without a session (no session or remember-me cookie, an Accept header that
  cannot prefer the signed credential): the same SELECT joined to the course, then the kept page for that row,
  status, language (``lang`` cookie, else Accept-Language, as core.i18n chooses) and address, with this
  request's "Checked …" time put in.

Anything else (a first request of its kind, a row's first page, a changed stamp, a query string, a conditional
request, a program certificate, an invalid or unknown ID, a refused rate limit) goes on to the app unchanged,
which builds and keeps the answer. The lane answers byte for byte what the app answers: the headers it sends are
the ones the app's full path sent for the same kind of answer (captured on the way out, after every response
hook), with only the per-request ones made afresh: the rate limit headers, and the ETag of the list now served. It
checks the same rate limits on the same counters as the routes' Flask-Limiter decorators (same strategy, storage
and keys), and counts verifications through the same counter.
"""

from __future__ import annotations

import logging
import time

from babel import Locale
from flask import Flask
from limits import parse_many
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import SecurityError
from werkzeug.http import http_date, parse_accept_header, parse_cookie
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_current_url, get_host

from core.database import utcnow
from core.extensions import db, limiter
from core.i18n import LANG_COOKIE, SOURCE_LANGUAGE
from credentials import answers, status_cache
from credentials.counter import count_client
from credentials.ids import format_public_id, normalize_public_id

STATUS_PREFIX = "/credentials/status/"
FACTS_PREFIX = "/api/v1/certificates/"
PAGE_PREFIX = "/verify/"
# an Accept header naming one of these may prefer the signed credential to the page (views.wants_credential)
CREDENTIAL_HINTS = ("application/ld+json", "application/vc", "application/*")
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


class Lane:
    def __init__(self, app: Flask, inner) -> None:
        self.app = app
        self.inner = inner
        self.captured: dict[tuple, tuple[list[tuple[str, str]], bool]] = {}
        self._limits: dict[str, list] = {}
        self._gzip: dict[str, bool] = {}
        self._languages: dict[str, str] = {}
        self._locales: dict[str, str] = {}
        self._engine = None
        self._date_of = (0, "")

    def __call__(self, environ, start_response):
        kind = self._kind(environ, self._cookies())
        if kind is not None and self.app.config["VERIFY_CACHE_SIZE"] > 0:
            try:
                answer = self._answer(kind, environ)
            except Exception:  # whatever went wrong, the full path answers (and reports) it
                logging.getLogger(__name__).exception("verification fast lane")
                answer = None
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return [body]
            return self.inner(environ, self._capturing(kind, environ, start_response))
        return self.inner(environ, start_response)

    def _cookies(self) -> tuple[str, ...]:
        cfg = self.app.config
        return (cfg["SESSION_COOKIE_NAME"] + "=", cfg.get("REMEMBER_COOKIE_NAME", "remember_token") + "=")

    @staticmethod
    def _kind(environ, cookies: tuple[str, ...]) -> tuple | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return None
        # a signed-in visitor's request may refresh their session cookie: the app answers those
        cookie = environ.get("HTTP_COOKIE", "")
        if cookie and any(name in cookie for name in cookies):
            return None
        path = environ.get("PATH_INFO", "")
        if "\x00" in path or any(name in environ for name in CONDITIONAL):
            return None
        if path.startswith(STATUS_PREFIX):
            return ("status", environ.get("wsgi.url_scheme"))
        if path.startswith(FACTS_PREFIX):
            return ("facts", environ.get("wsgi.url_scheme"))
        if path.startswith(PAGE_PREFIX) and "/" not in path[len(PAGE_PREFIX) :]:
            accept = environ.get("HTTP_ACCEPT", "").lower()
            if not any(hint in accept for hint in CREDENTIAL_HINTS):
                return ("page", environ.get("wsgi.url_scheme"))
        return None

    def _capturing(self, kind: tuple, environ, start_response):
        """start_response that keeps the headers of a 200 the full path sent for this kind of answer."""

        def capture(status, headers, exc_info=None):
            if status.startswith("200 ") and not any(name.lower() == "set-cookie" for name, _ in headers):
                key = kind + self._variant(kind, environ)
                kept = [(n, v) for n, v in headers if n.lower() not in PER_REQUEST]
                # a Date the app set (make_conditional does) is sent again, with this response's time
                self.captured[key] = (kept, any(n.lower() == "date" for n, _ in headers))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return capture

    def _answer(self, kind: tuple, environ):
        if kind[0] == "status":
            return self._status(environ)
        if kind[0] == "facts":
            return self._facts(environ)
        return self._page(environ)

    def _variant(self, kind: tuple, environ) -> tuple:
        """What else the app's headers may depend on: the encoding of a list, the language of a page."""
        if kind[0] == "status":
            return (self._gzipped(environ),)
        if kind[0] == "page":
            return (self._language(environ),)
        return ()

    def _language(self, environ) -> str:
        """core.i18n.select_locale for a visitor without an account and without ``?lang=``: the ``lang`` cookie,
        else Accept-Language, else English."""
        supported = self.app.extensions["i18n_languages"]
        cookie = environ.get("HTTP_COOKIE")
        if cookie:
            chosen = parse_cookie(cookie).get(LANG_COOKIE)
            if chosen in supported:
                return chosen
        header = environ.get("HTTP_ACCEPT_LANGUAGE", "")
        found = self._languages.get(header)
        if found is None:
            found = parse_accept_header(header, LanguageAccept).best_match(supported, default=SOURCE_LANGUAGE)
            if len(self._languages) < 256:
                self._languages[header] = found
        return found

    def _gzipped(self, environ) -> bool:
        header = environ.get("HTTP_ACCEPT_ENCODING", "")
        found = self._gzip.get(header)
        if found is None:
            found = "gzip" in parse_accept_header(header)  # as request.accept_encodings reads it
            if len(self._gzip) < 256:
                self._gzip[header] = found
        return found

    def _rate_headers(self, environ, endpoint: str, setting: str) -> list[tuple[str, str]] | None:
        """Hit the route's limits as its Flask-Limiter decorator would; None when one refuses (the app answers
        the 429), else the rate limit headers the app would add."""
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

    def _status(self, environ):
        number = environ["PATH_INFO"][len(STATUS_PREFIX) :]
        if not number.isdigit() or number.startswith("0"):
            return None
        served = self.app.extensions.get("served_status_lists", {}).get(int(number))
        if served is None or time.monotonic() - served.checked_at >= status_cache.openbadges.STATUS_TTL_SECONDS:
            return None
        if served.changes_at is not None and utcnow() >= served.changes_at:  # a suspension in it has ended
            return None
        if served.stamp is None or status_cache.read_stamp(self.app) != served.stamp:
            return None
        gzipped = self._gzipped(environ)
        captured = self.captured.get(("status", environ.get("wsgi.url_scheme"), gzipped))
        if captured is None:
            return None
        rate = self._rate_headers(environ, "credentials.status_list", self.app.config["RATELIMIT_STATUS_LIST"])
        if rate is None:
            return None
        body = served.gzipped if gzipped else served.body
        etag = f'"{served.etag}-gz"' if gzipped else f'"{served.etag}"'
        headers = [*captured[0], ("Content-Length", str(len(body))), ("ETag", etag), *rate]
        return "200 OK", headers + self._date() if captured[1] else headers, body

    def _facts(self, environ):
        canonical_id = normalize_public_id(environ["PATH_INFO"][len(FACTS_PREFIX) :])
        if canonical_id is None:
            return None
        captured = self.captured.get(("facts", environ.get("wsgi.url_scheme")))
        if captured is None:
            return None
        row = self._row(answers.FACTS_QUERY, canonical_id)
        if row is None or row.program_id is not None:
            return None
        now = utcnow()
        body = answers.kept_facts(self.app, row, now)
        if body is None:
            # the first request for this row and status in this process: a course certificate's facts need
            # only the row and the app's configuration, so they are built (and kept) here as the full path
            # builds them, under an app context instead of a whole request
            with self.app.app_context():
                body = answers.facts_body(row, now)
        rate = self._rate_headers(environ, "credentials.api_certificate", self.app.config["RATELIMIT_VERIFY"])
        if rate is None:
            return None
        count_client(self.app.config, environ.get("REMOTE_ADDR") or "127.0.0.1", row.id, now, self._engine)
        headers = [*captured[0], ("Content-Length", str(len(body))), *rate]
        return "200 OK", headers + self._date() if captured[1] else headers, body

    def _page(self, environ):
        shown = environ["PATH_INFO"][len(PAGE_PREFIX) :]
        canonical_id = normalize_public_id(shown)
        if canonical_id is None or format_public_id(canonical_id) != shown:
            return None  # the app redirects to the canonical address, or says it is not an ID
        language = self._language(environ)
        captured = self.captured.get(("page", environ.get("wsgi.url_scheme"), language))
        if captured is None:
            return None
        trusted = self.app.config.get("TRUSTED_HOSTS")
        try:
            url = get_current_url(environ) if not trusted else None
            if trusted:
                get_host(environ, trusted_hosts=trusted)  # the app answers a foreign Host with a 400
                url = get_current_url(environ)
        except SecurityError:
            return None
        row = self._row(answers.PAGE_QUERY, canonical_id)
        if row is None or row.program_id is not None:
            return None
        now = utcnow()
        locale = self._locales.get(language)
        if locale is None:
            locale = self._locales[language] = str(Locale.parse(language))  # as str(flask_babel.get_locale())
        page = answers.kept_page(self.app, row, now, locale, url)
        if page is None:
            return None
        rate = self._rate_headers(environ, "credentials.verify_certificate", self.app.config["RATELIMIT_VERIFY"])
        if rate is None:
            return None
        count_client(self.app.config, environ.get("REMOTE_ADDR") or "127.0.0.1", row.id, now, self._engine)
        body = page.encode()
        headers = [*captured[0], ("Content-Length", str(len(body))), *rate]
        return "200 OK", headers + self._date() if captured[1] else headers, body

    def _row(self, query, canonical_id: str):
        if self._engine is None:
            with self.app.app_context():
                self._engine = db.engine
        with self._engine.connect() as connection:
            return connection.execute(query, {"public_id": canonical_id}).first()

    def _date(self) -> list[tuple[str, str]]:
        second = int(time.time())
        if self._date_of[0] != second:
            self._date_of = (second, http_date(second))
        return [("Date", self._date_of[1])]


def install(app: Flask) -> None:
    """Put the lane in front of the app, behind ProxyFix when there is one (so it sees the client's address)."""
    wsgi = app.wsgi_app
    if isinstance(wsgi, ProxyFix):
        wsgi.app = Lane(app, wsgi.app)
    else:
        app.wsgi_app = Lane(app, wsgi)
