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
and keys), and counts verifications through the same counter. What it shares with the visitors' page lane (which
requests may take a lane, the language, header replay, rate limits, Host) is core/lane.py's ``BaseLane``.
"""

from __future__ import annotations

import logging
import time

from babel import Locale
from flask import Flask
from sqlalchemy import bindparam
from werkzeug.http import parse_accept_header

from core import lane
from core.database import utcnow
from courses import lane as courses_lane
from credentials import answers, status_cache
from credentials.counter import count_client
from credentials.ids import format_public_id, normalize_public_id

STATUS_PREFIX = "/credentials/status/"
FACTS_PREFIX = "/api/v1/certificates/"
PAGE_PREFIX = "/verify/"
# an Accept header naming one of these may prefer the signed credential to the page (views.wants_credential)
CREDENTIAL_HINTS = ("application/ld+json", "application/vc", "application/*")


class Lane(lane.BaseLane):
    def __init__(self, app: Flask, inner) -> None:
        super().__init__(app, inner)
        self.captured: dict[tuple, tuple[list[tuple[str, str]], bool]] = {}
        self._gzip: dict[str, bool] = {}
        self._locales: dict[str, str] = {}

    def __call__(self, environ, start_response):
        kind = self._kind(environ)
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

    def _kind(self, environ) -> tuple | None:
        if environ.get("QUERY_STRING") or not self.may_take(environ):
            return None
        path = environ.get("PATH_INFO", "")
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
            kept = self.replayable(status, headers)
            if kept is not None:
                # a Date the app set (make_conditional does) is sent again, with this response's time
                self.captured[kind + self._variant(kind, environ)] = (kept, self.sets_date(headers))
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
            return (self.language(environ),)
        return ()

    def _gzipped(self, environ) -> bool:
        header = environ.get("HTTP_ACCEPT_ENCODING", "")
        found = self._gzip.get(header)
        if found is None:
            found = "gzip" in parse_accept_header(header)  # as request.accept_encodings reads it
            if len(self._gzip) < lane.MEMO_SIZE:
                self._gzip[header] = found
        return found

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
        rate = self.rate_headers(environ, "credentials.status_list", self.app.config["RATELIMIT_STATUS_LIST"])
        if rate is None:
            return None
        body = served.gzipped if gzipped else served.body
        etag = f'"{served.etag}-gz"' if gzipped else f'"{served.etag}"'
        return self.reply(captured, body, [("ETag", etag), *rate])

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
        rate = self.rate_headers(environ, "credentials.api_certificate", self.app.config["RATELIMIT_VERIFY"])
        if rate is None:
            return None
        count_client(self.app.config, environ.get("REMOTE_ADDR") or "127.0.0.1", row.id, now, self.engine())
        return self.reply(captured, body, rate)

    def _page(self, environ):
        shown = environ["PATH_INFO"][len(PAGE_PREFIX) :]
        canonical_id = normalize_public_id(shown)
        if canonical_id is None or format_public_id(canonical_id) != shown:
            return None  # the app redirects to the canonical address, or says it is not an ID
        language = self.language(environ)
        captured = self.captured.get(("page", environ.get("wsgi.url_scheme"), language))
        if captured is None:
            return None
        url = self.current_url(environ)  # None: the app answers a foreign Host with a 400
        if url is None:
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
        rate = self.rate_headers(environ, "credentials.verify_certificate", self.app.config["RATELIMIT_VERIFY"])
        if rate is None:
            return None
        count_client(self.app.config, environ.get("REMOTE_ADDR") or "127.0.0.1", row.id, now, self.engine())
        return self.reply(captured, page.encode(), rate)

    def _row(self, query, canonical_id: str):
        with self.reader().connect() as connection:
            return connection.execute(query, {"public_id": canonical_id}).first()


class SignedInVerify(courses_lane.Page):
    """``GET /verify/<id>`` of a course certificate for a signed-in learner, through courses/lane.py's signed-in
    lane: the user's row and the certificate's (answers.SIGNED_PAGE_QUERY's columns, and whether the viewer holds
    it) in one statement; the kept page (answers.signed_in_page: the drawing of the certificate's shape, status
    and language, for holders or for others) filled with the header's values, the certificate's values and this
    request's "Checked …" time. A program certificate, an ID not written as the app writes it, an Accept header
    that may prefer the signed credential, an unknown ID or a refused rate limit: the app answers."""

    kind = "verify"
    marks = answers.PAGE_MARKS
    per_request = frozenset({"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"})
    NOW, URL = "awa.verify_lane_now", "awa.verify_lane_url"

    VALUES = 4096  # certificates' filled-in values remembered (Babel's date and percent formatting)

    def __init__(self) -> None:
        self._locales: dict[str, str] = {}
        self._values: dict[tuple, dict[str, str]] = {}

    def prepare(self, the_lane, environ, args: dict) -> dict | None:
        shown = args.get("public_id", "")
        canonical_id = normalize_public_id(shown)
        if canonical_id is None or format_public_id(canonical_id) != shown:
            return None  # the app redirects to the canonical address, or says it is not an ID
        if the_lane.app.config["VERIFY_CACHE_SIZE"] <= 0:
            return None
        accept = environ.get("HTTP_ACCEPT", "").lower()
        if any(hint in accept for hint in CREDENTIAL_HINTS):
            return None
        url = the_lane.current_url(environ)
        if url is None or not environ.get("PATH_INFO", "").endswith("/" + shown):
            return None
        environ[self.URL] = url
        return {"public_id": canonical_id}

    def route(self, environ) -> str:
        path = environ["PATH_INFO"]
        return path[: path.rindex("/") + 1]  # the page holds its ID only as markers

    def statement(self, signed_in):
        from accounts.models import User
        from courses.models import Course
        from credentials.models import Certificate

        certificates, courses = Certificate.__table__, Course.__table__
        holds = (certificates.c.user_id == User.__table__.c.id).label("viewer_holds")
        return signed_in(
            *answers.PAGE_QUERY.selected_columns,
            holds,
            join=lambda joined: joined.join(certificates, certificates.c.public_id == bindparam("public_id")).outerjoin(
                courses, courses.c.id == certificates.c.course_id
            ),
        )

    def key(self, the_lane, environ, user_id: int, row, language: str):
        if row.program_id is not None:
            return None  # its stacked certificates' statuses: the app's full path
        now = utcnow()
        environ[self.NOW] = now
        status = answers.status_of(row, now)
        locale = self._locales.get(language)
        if locale is None:
            locale = self._locales[language] = str(Locale.parse(language))  # as str(flask_babel.get_locale())
        shape = answers._shape(row, status, locale, environ[self.URL])
        if shape is None:
            return None
        holder = bool(row.viewer_holds)
        return ("verify", shape, holder), (tuple(row[8:-1]), status, holder)

    def reply(self, the_lane, environ, row, state, kept):
        config = the_lane.app.config
        rate = the_lane.rate_headers(environ, "credentials.verify_certificate", config["RATELIMIT_VERIFY"])
        if rate is None:
            return None
        now = environ.get(self.NOW) or utcnow()
        count_client(config, environ.get("REMOTE_ADDR") or "127.0.0.1", row.id, now, the_lane.engine())
        locale, zone = kept
        remembered = (state[0], str(locale))  # the certificate's row as read, and the language
        values = self._values.get(remembered)
        if values is None:
            if len(self._values) >= self.VALUES:
                self._values.clear()
            values = self._values[remembered] = answers.page_values(row, locale)
        values = {**values, "checked": answers.checked_tag(now, locale, zone)}
        return values, {name.lower(): value for name, value in rate}

    def check(self, environ, state, html: str):
        followed = environ.get(answers.SIGNED_IN_STATE)
        if followed is None or followed[:3] != state:
            return None
        return html, {}, followed[3:5]


courses_lane.PAGES["credentials.verify_certificate"] = SignedInVerify()


def install(app: Flask) -> None:
    """Put the lane in front of the app, behind ProxyFix when there is one (so it sees the client's address)."""
    lane.install(app, Lane)
