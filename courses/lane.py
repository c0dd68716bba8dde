"""Signed-in learners' catalog, course, lesson, quiz and dashboard pages answered in front of Flask (issue 17).

A learner's catalog, course or lesson page is, since core/skeleton.py, a kept skeleton filled with their progress
and three header values (the CSRF token, their name, the page address). What was left per request was mostly Flask
itself: the request context, opening the session cookie, Flask-Login's loader, the response hooks. This WSGI layer
answers such a request before Flask when it can prove the app would answer exactly these bytes:

1. the request: a GET of ``/courses``, ``/courses/<slug>``, ``/courses/<slug>/<module>/<lesson>``,
   ``/courses/<slug>/<module>/quiz`` or ``/dashboard``
   (matched by the app's own URL map), no query string, no conditional or Range header, a session cookie, a Host
   the app accepts;
2. the session cookie, opened as Flask's session interface opens it (the app's own signing serializer: same secret
   and fallbacks, salt, key derivation, digest, max age). It must hold only the keys a settled login holds
   (``_user_id``, ``_id``, ``_fresh``, ``csrf_token``): anything else (flashed messages, a remember-me order, a
   permanent session, no CSRF secret yet) means Flask would change or rewrite the cookie, and Flask answers.
   Its ``_id`` must equal Flask-Login's identifier for this client (session protection "strong" drops the session
   otherwise);
3. one statement on the lane's autocommit connection: the user's row joined to their login (an ended login, a
   logout on the server, returns nothing), the content version, whether they belong to an organization, and
   - for a course, lesson or quiz page: their enrollment in this course with its completed lessons and the
     quizzes passed in the current cycle; for a quiz page also their attempts at the module's quiz in this cycle
     (number, score, passed, submission time);
   - for the dashboard: everything of theirs it shows, each as one text value (enrollments, progress rows, passed
     quizzes, program enrollments, and what the rooms above add to ``DASHBOARD_PARTS``: credentials' certificates,
     including whether each expiry or suspension end has passed by now).
   A stale session version, an inactive or non-learner account, an organization member (their header
   lists their organizations), a completed enrollment's course page (it links a certificate), a lesson or quiz page
   without an enrollment: Flask answers;
4. a kept answer for (content version, address, language, role, whether the account's email address is
   confirmed, and what the page shows of the learner): nothing
   for the catalog; for the course page, enrolled or not and the ✓ of each step of the current outline; for a
   lesson page, whether this lesson is done and how many steps are; for a quiz page, how many steps are done and
   each attempt's number, score and verdict, so learners with no attempt, or the same attempts, share one (a
   running cooldown's "wait N more minutes" changes with the clock: the lane works out from the attempts'
   submission times and the quiz's attempt rules, kept in the course plan, whether one runs, as
   ``courses.services.attempt_block_reason`` does, and leaves such a page to the app, which never keeps it
   either; once no wait runs, the page stays what it is until the attempts change); for the dashboard, the
   learner (their page is kept for them alone) and every value of the statement. A kept answer holds the app's
   status line and headers (after every response hook) and its body with only the three header markers left in;
   the lane fills them with this request's values, escaped as the template escapes them.

Besides these pages (the same steps, the same statement or a room's own):

- a filtered or searched catalog (``/courses?q=…&goal=…``: only the catalog's own parameters, at most QUERY_BYTES;
  ``?lang=`` and anything else go to the app), kept per query string exactly as sent (the search box and the
  language switcher's ``next`` echo it); a refused query is the app's 400, never kept;
- ``/courses/<slug>/continue``: the app's 302 itself (nothing of the learner's in it), kept per step it leads to,
  which the lane works out from the statement's progress and the course plan as ``services.next_step`` does,
  and keeps only when the app's own state gives the same step; not enrolled: the app (it flashes why);
- pages registered in ``PAGES`` (``Page``): a quiz attempt's page (``AttemptPage``: open, the skeleton per
  address filled with the attempt's questions; submitted, its result kept for the learner alone), and the rooms
  above's (credentials: the verify page of a course certificate, kept per certificate shape with the
  certificate's values and the "Checked …" time as markers).

Answers are kept only from the app itself: on a miss the lane asks (``skeleton.LANE_WANTS``), core/skeleton.py
leaves the page with the header markers and the facts its frame followed (content version, language, user, role,
email confirmed, membership), and the course, lesson and quiz views the course plan and learner state. The lane keeps
the page only when those equal what its own statement read (for the dashboard: when the same statement, read again
after the app answered, reads the same), the status is 200, no cookie is set, and the page filled with the app's
own values is byte for byte the body the app sent. Nothing is invalidated: a publish changes the version, progress
or a certificate the learner's values, a logout or role change the row.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from hashlib import sha512
from urllib.parse import parse_qsl, urlencode

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import escape
from sqlalchemy import String, and_, bindparam, cast, func, literal_column, or_, select
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.http import parse_cookie
from werkzeug.routing import RequestRedirect
from werkzeug.wsgi import get_host

from accounts.models import LoginSession, Role, User
from core import contentcache, lane, skeleton
from core.contentcache import MISS, LocalStore
from core.database import utcnow
from core.sessions import SessionInterface

# set by the course and lesson views when the lane asked: (the course's plan, the learner's state)
LANE_STATE = "awa.signed_in_state"
# set by /continue's view when the lane asked: (content version, user id, enrollment id) its redirect followed
LANE_CONTINUE = "awa.signed_in_continue"
ENDPOINTS = {
    "courses.catalog": "catalog",
    "courses.course": "course",
    "courses.lesson": "lesson",
    "courses.quiz": "quiz",
    "courses.dashboard": "dashboard",
    "courses.resume": "continue",
}
# the catalog's filter and search parameters (the view reads no other): a query of only these may take the lane
CATALOG_PARAMS = frozenset({"q", "goal", "skill", "occupation", "audience", "language"})
QUERY_BYTES = 512  # a longer query string goes to the app (it refuses a search that long anyway)
SESSION_KEYS = frozenset({"_user_id", "_id", "_fresh", "csrf_token"})
LEARNER = Role.LEARNER.value
PLANS = 2000  # courses' plans kept per process (one per course per content version)


def plan_of(course) -> tuple:
    """What the lane needs of a course's current outline: (course id, its lesson ids, its quiz ids,
    {(module slug, lesson slug): lesson id}, its steps in order as ("lesson" or "quiz", id), {module slug: its
    quiz's attempt rules (attempt limit, minutes between attempts, minutes after two failures in a row)})."""
    lessons, quizzes, by_slug, steps, rules = set(), set(), {}, [], {}
    for module in course.modules:
        for lesson in module.lessons:
            lessons.add(lesson.id)
            by_slug[(module.slug, lesson.slug)] = lesson.id
            steps.append(("lesson", lesson.id))
        if module.quiz is not None:
            quiz = module.quiz
            quizzes.add(quiz.id)
            steps.append(("quiz", quiz.id))
            rules[module.slug] = (quiz.max_attempts, quiz.cooldown_minutes, quiz.failure_cooldown_minutes)
    return course.id, frozenset(lessons), frozenset(quizzes), by_slug, tuple(steps), rules


def state_of(kind: str, plan: tuple, lesson_id, enrolled: bool, completed: bool, lessons, quizzes) -> tuple:
    """The learner's state as the page shows it: the course page shows a ✓ per step and what follows from them;
    a lesson page whether this lesson is done and the share of steps done."""
    plan_lessons, plan_quizzes = plan[1], plan[2]
    done_lessons, done_quizzes = plan_lessons.intersection(lessons), plan_quizzes.intersection(quizzes)
    if kind == "continue":
        # /continue redirects to the first step not done (courses.services.next_step), or to the course page:
        # learners at the same step share one kept redirect, whatever else they did
        done = {"lesson": done_lessons, "quiz": done_quizzes}
        return kind, enrolled, next((step for step in plan[4] if step[1] not in done[step[0]]), None)
    if kind == "course":
        return kind, enrolled, completed, done_lessons, done_quizzes
    return kind, enrolled, completed, lesson_id in done_lessons, len(done_lessons) + len(done_quizzes)


def attempts_summary(attempts) -> tuple:
    """What a quiz page shows of the learner's attempts in this cycle: (number, score, passed, submitted) each."""
    found = ((a.attempt_no, a.score, a.passed, a.submitted_at is not None) for a in attempts)
    return tuple(sorted(found))


def offer(environ, kind: str, course, lesson_id, enrollment, progress, extra: tuple = ()) -> None:
    """Called by the views: leave this request's facts for the lane, when it asked (see the module docstring).
    ``extra``: what else the page shows of the learner (a quiz page: its attempts summary, and True: the page
    does not change with the clock)."""
    if not environ.get(skeleton.LANE_WANTS):
        return
    plan = contentcache.remember(("lane-plan", course.slug), lambda: plan_of(course))
    state = state_of(
        kind,
        plan,
        lesson_id,
        enrollment is not None,
        enrollment is not None and enrollment.completed_at is not None,
        progress.completed_lessons,
        progress.passed_quizzes,
    )
    environ[LANE_STATE] = (plan, state + tuple(extra))
    if kind == "continue":
        environ[LANE_CONTINUE] = (contentcache.content_version(), enrollment.user_id, enrollment.id)


def _ids(text) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",")) if text else frozenset()


FLAGS = {"true": True, "1": True, "false": False, "0": False, "": None}


def _attempts(text) -> tuple[tuple, tuple]:
    """The quiz attempts column read as (``attempts_summary``'s tuple, (number, passed, submitted at) of each
    attempt by number, the time as read): whether a cooldown runs follows those times (``waiting``)."""
    rows = sorted(
        (int(number), int(score) if score else None, FLAGS[passed], submitted)
        for number, score, passed, submitted in (part.split(";", 3) for part in (text.split(",") if text else ()))
    )
    return tuple((n, score, passed, bool(at)) for n, score, passed, at in rows), tuple(
        (n, p, at) for n, _, p, at in rows
    )


def _moment(text: str) -> datetime:
    """A timestamp as the statement cast it to text: PostgreSQL's "2026-12-07 20:08:13.5+00" (an offset, in the
    connection's time zone), SQLite's naive UTC "2026-12-07 20:08:13.500000"."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def waiting(rules: tuple, history: tuple, now: datetime) -> bool:
    """Whether a wait before the next attempt runs at ``now`` (courses.services.attempt_block_reason's rules,
    from the quiz's ``rules`` of ``plan_of`` and the attempts as ``_attempts`` reads them): a quiz page showing
    it changes with the clock, so it is left to the app; any other quiz page follows the attempts alone."""
    max_attempts, cooldown, failure_cooldown = rules
    if any(not at for _, _, at in history):
        return False  # an open attempt: the page offers to continue it
    if max_attempts is not None and len(history) >= max_attempts:
        return False  # used up: no new attempt, whenever
    wait = cooldown if history else 0
    if len(history) >= 2 and not any(passed for _, passed, _ in history[-2:]):
        wait = max(wait, failure_cooldown)
    return bool(wait) and now < _moment(history[-1][2]) + timedelta(minutes=wait)


class SignedInLane(lane.BaseLane):
    def __init__(self, app: Flask, inner) -> None:
        super().__init__(app, inner)
        self.pages = LocalStore(int(app.config["CONTENT_CACHE_PAGE_BYTES"]))
        self.plans = LocalStore(PLANS)
        self.answered = 0  # requests this lane answered, and statements it ran (tests, benchmarks)
        self.reads = 0
        self._serializers: tuple | None = None
        self._statements: dict[tuple[str, str], tuple] = {}
        self._now_param: tuple | None = None

    # ---- what may be tried -------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        if not self.app.config["CONTENT_CACHE"] or not self._may_try(environ):
            return self.inner(environ, start_response)
        try:
            found = self._answer(environ)
        except Exception:  # whatever went wrong, the full path answers (and reports) it
            logging.getLogger(__name__).exception("signed-in page lane")
            found = None
        if found is None:
            return self.inner(environ, start_response)
        if found[0] == "hit":
            status, headers, body = found[1]
            self.answered += 1
            start_response(status, headers)
            return [body]
        return self._keeping(environ, start_response, found[1])

    def _may_try(self, environ) -> bool:
        cookie = environ.get("HTTP_COOKIE")
        config = self.app.config
        return (
            config.get("SIGNED_IN_LANE", True)
            and environ.get("REQUEST_METHOD") == "GET"
            and len(environ.get("QUERY_STRING", "")) <= QUERY_BYTES
            and bool(cookie)
            and config["SESSION_COOKIE_NAME"] + "=" in cookie
            and not config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST")
            and not config.get("SERVER_NAME")
            # Flask's own cookie format (core/sessions.py only keeps its serializer)
            and type(self.app.session_interface) in (SecureCookieSessionInterface, SessionInterface)
            and "\x00" not in environ.get("PATH_INFO", "")
            and not any(name in environ for name in lane.CONDITIONAL)
        )

    # ---- the answer ---------------------------------------------------------------------------------------

    def _answer(self, environ):
        """("hit", (status, headers, body)), or ("keep", what to check the app's answer against), or None."""
        trusted = self.app.config.get("TRUSTED_HOSTS")
        if trusted:  # the app refuses other Host headers (its 400)
            try:
                get_host(environ, trusted_hosts=trusted)
            except SecurityError:
                return None
        try:
            endpoint, args = self.app.url_map.bind_to_environ(environ).match()
        except (HTTPException, RequestRedirect):
            return None
        kind, page, params = ENDPOINTS.get(endpoint), PAGES.get(endpoint), None
        if page is not None:
            kind, params = page.kind, page.prepare(self, environ, args)
            if params is None:
                return None
        if kind is None:
            return None
        query = environ.get("QUERY_STRING", "")
        pairs = parse_qsl(query, keep_blank_values=True) if query else []
        # a filtered or searched catalog (only its own parameters; ``?lang=`` chooses the language, the app's)
        if query and (kind != "catalog" or not {name for name, _ in pairs} <= CATALOG_PARAMS):
            return None
        session = self._session(environ)
        if session is None:
            return None
        try:
            raw_id, raw_version, token = session["_user_id"].split(":", 2)
            user_id, session_version = int(raw_id), int(raw_version)
        except (ValueError, AttributeError):
            return None
        if not token or len(token) > 64:
            return None
        read = (kind, user_id, token, args.get("slug", ""), args.get("module_slug", ""))
        row = self._read(*read) if page is None else self._read_page(page, user_id, token, params)
        if row is None:
            return None
        row_version, active, role, verified_at, locale, name, member, content = row[:8]
        role = getattr(role, "value", role)  # a page's statement reads through SQLAlchemy: the Role itself
        if row_version != session_version or not active or role != LEARNER or member:
            return None
        # an account whose address is not confirmed yet gets pages kept for such accounts only (the frame
        # follows the fact: core/skeleton.py), so nothing a confirmed learner's page shows can reach it
        confirmed = verified_at is not None
        if content is None:
            return None
        supported = self.app.extensions["i18n_languages"]
        language = locale if locale in supported else self.language(environ)
        facts = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST") or environ.get("SERVER_NAME"))
        path = environ.get("PATH_INFO", "") if page is None else page.route(environ)
        facts += (environ.get("SERVER_PORT"), environ.get("SCRIPT_NAME", ""), path, query, language, role, confirmed)
        # core.i18n.page_without_language: the path, then the query as request.args re-encodes it
        here = "/" + environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace").lstrip("/")
        values = {
            "csrf": self._csrf(session["csrf_token"]),
            "name": str(escape(name)),
            "next": str(escape(here + (f"?{urlencode(pairs)}" if pairs else ""))),
        }
        # what the app's answer must have followed: (content version, language, user, role, confirmed, member)
        app_facts = (content, language, user_id, role, confirmed, False)
        expect = {"kind": kind, "facts": facts, "values": values, "secret": session["csrf_token"], "app": app_facts}
        if page is not None:
            found = page.key(self, environ, user_id, row, language)
            if found is None:
                return None
            key = (*facts, found[0])
            expect.update(page=page, state=found[1])
        elif kind == "catalog":
            key = (*facts, ("catalog",))
        elif kind == "dashboard":
            # the learner's own page: kept for them alone, for as long as everything it shows reads the same
            key = (*facts, ("dashboard", user_id, tuple(row)))
            expect["read"], expect["row"] = read, tuple(row)
        else:
            course_id, enrollment_id, completed_at, lessons, quizzes = row[8:13]
            if course_id is None:
                return None
            learner = (enrollment_id is not None, completed_at is not None, _ids(lessons), _ids(quizzes))
            extra, history = ((), ())
            if kind == "quiz":
                summary, history = _attempts(row[13])
                extra = (summary, True)  # the app keeps only a page that does not change with the clock
            expect.update(course_id=course_id, args=args, learner=learner, extra=extra, history=history)
            plan = self.plans.get(content, ("plan", args["slug"]))
            if plan is MISS:
                return "keep", expect
            if plan[0] != course_id:
                return None
            key = self._key(kind, args, plan, learner, facts, extra, history)
            if key is None:
                return None
        expect["key"] = key
        kept = self.pages.get(content, key)
        if kept is MISS:
            return "keep", expect
        if kind == "continue":
            return "hit", kept  # a redirect: nothing of the learner's in it, the whole answer kept
        status, headers, parts = kept[:3]
        fresh: dict[str, str] = {}
        if page is not None:
            # the page's own per-request work (rate limits, counting), values and headers; None: the app answers
            more = page.reply(self, environ, row, expect["state"], kept[3])
            if more is None:
                return None
            values = {**values, **more[0]}
            fresh = dict(more[1])
            made = {n.lower() for n, _ in headers} & (page.per_request | {"content-length"})
            if made != {*fresh, "content-length"}:
                return None  # not the headers the app sent (rate limit headers turned on or off meanwhile)
        body = "".join(part if index % 2 == 0 else values[part] for index, part in enumerate(parts)).encode()
        fresh["content-length"] = str(len(body))
        return "hit", (status, [(n, fresh.get(n.lower(), v)) for n, v in headers], body)

    @staticmethod
    def _key(
        kind: str, args: dict, plan: tuple, learner: tuple, facts: tuple, extra: tuple = (), history: tuple = ()
    ) -> tuple | None:
        """(*facts, the learner's state as the page shows it, ()), or None (the app answers). A quiz page's
        ``history`` (``_attempts``): with a wait running now, None; else not in the key, so learners whose
        attempts read the same share the page whenever they took them."""
        enrolled, completed = learner[0], learner[1]
        if completed and kind == "course":
            return None  # links the learner's certificate: never kept (courses/views.py)
        if kind == "continue" and not enrolled:
            return None  # the app says why (a flashed message) and sends them to the course page
        lesson_id = None
        if kind == "lesson":
            lesson_id = plan[3].get((args["module_slug"], args["lesson_slug"]))
            if lesson_id is None or not enrolled:
                return None  # the app's 404 or 403
        if kind == "quiz":
            rules = plan[5].get(args["module_slug"])
            if not enrolled or rules is None or waiting(rules, history, utcnow()):
                return None  # the app's 403 or 404, or a page whose "wait N more minutes" changes with the clock
        return (*facts, state_of(kind, plan, lesson_id, *learner) + extra, ())

    def _session(self, environ) -> dict | None:
        """The session as Flask's session interface opens it, when it is one this lane may answer for."""
        app = self.app
        value = parse_cookie(environ.get("HTTP_COOKIE")).get(app.config["SESSION_COOKIE_NAME"])
        if not value:
            return None
        serializer, _ = self._signers()
        try:
            data = serializer.loads(value, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except BadSignature:
            return None
        if (
            not isinstance(data, dict)
            or not data.keys() <= SESSION_KEYS
            or not isinstance(data.get("_user_id"), str)
            or not isinstance(data.get("csrf_token"), str)
        ):
            return None
        from core.extensions import login_manager

        mode = app.config.get("SESSION_PROTECTION", login_manager.session_protection)
        if mode in ("basic", "strong") and data.get("_id") != _identifier(environ):
            return None
        return data

    def _signers(self) -> tuple:
        """(the session interface's serializer, Flask-WTF's token serializer), made again if a key changed."""
        app = self.app
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        csrf_key = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
        if self._serializers is None or self._serializers[0] != (keys, csrf_key):
            session = app.session_interface.get_signing_serializer(app)
            csrf = URLSafeTimedSerializer(csrf_key, salt="wtf-csrf-token")
            self._serializers = ((keys, csrf_key), session, csrf)
        return self._serializers[1], self._serializers[2]

    def _csrf(self, secret: str) -> str:
        """The form token flask_wtf.csrf.generate_csrf makes from the session's secret, escaped."""
        return str(escape(self._signers()[1].dumps(secret)))

    def _token_secret(self, token: str):
        try:
            return self._signers()[1].loads(token)
        except BadSignature:
            return None

    # ---- the one statement ----------------------------------------------------------------------------

    def _read(self, kind: str, user_id: int, token: str, slug: str, module: str = ""):
        from accounts.services import _hash_token

        which = kind if kind in ("dashboard", "quiz") else "course"
        sql, order, constants = self._compiled(which)
        params = {"user_id": user_id, "token_hash": _hash_token(token), "slug": slug, "module": module}
        if which == "dashboard":
            params["now"] = self._now()
        if order is not None:  # a positional paramstyle (SQLite)
            return self.read_row(sql, tuple(params.get(name, constants.get(name)) for name in order))
        return self.read_row(sql, {**constants, **params})

    def _read_page(self, page: Page, user_id: int, token: str, params: dict):
        """A room's page: the user's columns and the page's, through SQLAlchemy (its values as the app reads
        them, so the page's key compares equal to what the app's answer followed)."""
        from accounts.services import _hash_token

        statement = self._statements.get(("page", page.kind))
        if statement is None:
            statement = self._statements["page", page.kind] = page.statement(_signed_in)
        self.reads += 1
        with self.reader().connect() as connection:
            return connection.execute(
                statement, {"user_id": user_id, "token_hash": _hash_token(token), **params}
            ).first()

    def _now(self):
        """This moment as the driver takes a UTC timestamp column's value (the column type's own conversion)."""
        dialect = self.reader().dialect
        if self._now_param is None or self._now_param[0] is not dialect:
            from core.database import UTCDateTime

            self._now_param = (dialect, UTCDateTime().dialect_impl(dialect).bind_processor(dialect))
        process = self._now_param[1]
        now = utcnow()
        return process(now) if process is not None else now

    def _compiled(self, which: str) -> tuple[str, tuple | None, dict]:
        """(the statement as the driver takes it, its parameter names in order when positional, its constants)."""
        dialect = self.reader().dialect
        found = self._statements.get((which, dialect.name))
        if found is None:
            if which == "dashboard":
                built = _dashboard_statement(dialect.name)
            else:
                built = _statement(dialect.name, quiz=which == "quiz")
            compiled = built.compile(dialect=dialect)
            mine = {"user_id": 0, "token_hash": "", "slug": "", "module": "", "now": None}
            given = {k: v for k, v in mine.items() if k in compiled.binds}
            constants = {k: v for k, v in compiled.construct_params(given).items() if k not in mine}
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._statements[(which, dialect.name)] = (str(compiled), order, constants)
        return found

    def read_row(self, sql: str, params=None):
        """``BaseLane.read_row``, counted (tests assert one read per kept page)."""
        self.reads += 1
        return super().read_row(sql, params)

    # ---- keeping the app's answer ---------------------------------------------------------------------------

    def _keeping(self, environ, start_response, expect: dict):
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        environ[skeleton.LANE_WANTS] = True
        result = self.inner(environ, capture)
        if expect["kind"] == "continue":
            return self._keeping_redirect(environ, expect, answer, result)
        page = environ.get(skeleton.SKELETON_PAGE)
        if page is None or not answer:
            return result
        room = expect.get("page")
        headers = _replayable(answer[0], answer[1], per_request=room.per_request if room else frozenset())
        if headers is None or page[2] != expect["app"]:
            return result  # the app's page followed other facts (a role, a version changed meanwhile)
        key = expect.get("key")
        more, app_more = None, {}
        if room is not None:
            found = room.check(environ, expect["state"], page[0])
            if found is None:
                return result  # the page followed another state than the lane read (or cannot be kept)
            page = (found[0], page[1], page[2])
            app_more, more = found[1], found[2]
        if expect["kind"] in ("course", "lesson", "quiz"):
            state = environ.get(LANE_STATE)
            if state is None or state[0][0] != expect["course_id"]:
                return result
            plan, app_state = state
            learner, facts = expect["learner"], expect["facts"]
            key = self._key(expect["kind"], expect["args"], plan, learner, facts, expect["extra"], expect["history"])
            if key is None or key[-2] != app_state:
                return result  # the learner's state changed between the two reads (or the app saw it otherwise)
        parts = skeleton.segments(page[0], room.marks if room else frozenset())
        if parts is None:
            return result
        body = lane.drain(result)
        if expect["kind"] == "dashboard" and tuple(self._read(*expect["read"]) or ()) != expect["row"]:
            return [body]  # something the page shows changed while the app read it: not kept
        values, app_values = expect["values"], {**page[1], **app_more}
        filled = "".join(part if index % 2 == 0 else app_values[part] for index, part in enumerate(parts))
        # the app's token is signed at its own second: it must carry the same secret, not the same timestamp
        same_values = app_values["name"] == values["name"] and app_values["next"] == values["next"]
        if filled.encode() == body and same_values and self._token_secret(app_values["csrf"]) == expect["secret"]:
            content = expect["app"][0]
            if expect["kind"] in ("course", "lesson", "quiz"):
                self.plans.put(content, ("plan", expect["args"]["slug"]), plan)
            self.pages.put(content, key, (answer[0], headers, parts, more), len(body) + 1000)
        return [body]

    def _keeping_redirect(self, environ, expect: dict, answer: list, result):
        """/continue: keep the app's redirect for this learner state when the app followed the same course plan,
        content version, learner and state the lane read (see ``offer``)."""
        state, followed = environ.get(LANE_STATE), environ.get(LANE_CONTINUE)
        if state is None or followed is None or not answer or not answer[0].startswith("302 "):
            return result
        headers = _replayable(answer[0], answer[1], redirect=True)
        plan, app_state = state
        content, user_id = expect["app"][0], expect["app"][2]
        if headers is None or plan[0] != expect["course_id"] or followed[:2] != (content, user_id):
            return result
        key = self._key("continue", expect["args"], plan, expect["learner"], expect["facts"])
        if key is None or key[-2] != app_state:
            return result
        body = lane.drain(result)
        self.plans.put(content, ("plan", expect["args"]["slug"]), plan)
        self.pages.put(content, key, (answer[0], headers, body), len(body) + 1000)
        return [body]


def _replayable(
    status: str, headers, *, redirect: bool = False, per_request: frozenset = frozenset()
) -> list[tuple[str, str]] | None:
    """The app's headers, in its order, when the lane may send them again with only Content-Length (and the
    lower-case names in ``per_request``) made afresh: a 200 (or, ``redirect``, a 302) that sets no cookie and has
    no other header made per request (core/lane.py's PER_REQUEST)."""
    if not status.startswith("302 " if redirect else "200 "):
        return None
    names = [name.lower() for name, _ in headers]
    if "set-cookie" in names or "content-length" not in names:
        return None
    if not lane.PER_REQUEST.intersection(names) <= per_request | {"content-length"}:
        return None
    return [("Content-Length" if n.lower() == "content-length" else n, v) for n, v in headers]


class Page(ABC):
    """A page of a room above this one that the lane answers for a signed-in learner (credentials: the verify
    page), registered in ``PAGES`` under its endpoint. Like the catalog, the app's page is a skeleton with the
    header's markers (core/skeleton.py) and, in ``marks``, the page's own per-request markers; the room says what
    to read with the user's row, what the kept page is keyed by, what each answer does and fills in, and checks
    the app's answer against what the lane read."""

    kind = "page"
    marks: frozenset[str] = frozenset()  # the page's own markers, filled per request by ``reply``
    per_request: frozenset[str] = frozenset()  # lower-case header names ``reply`` makes afresh

    @abstractmethod
    def prepare(self, lane: SignedInLane, environ, args: dict) -> dict | None:
        """The statement's parameters for this request, or None (the app answers)."""

    def route(self, environ) -> str:
        """What the kept page's key holds for the request's path (the path, unless the page holds its address
        only as markers)."""
        return environ.get("PATH_INFO", "")

    @abstractmethod
    def statement(self, signed_in):
        """The statement: ``signed_in(*columns, join=…)`` (the user's columns come first)."""

    @abstractmethod
    def key(self, lane: SignedInLane, environ, user_id: int, row, language: str) -> tuple[tuple, object] | None:
        """(what the kept page is keyed by besides the request, the state to check the app against) from the row
        (the user's eight columns, then the page's) and the page language, or None (the app answers)."""

    @abstractmethod
    def reply(self, lane: SignedInLane, environ, row, state, kept) -> tuple[dict, dict] | None:
        """Answering from a kept page: ({marker: value}, {lower-case header name: value}), or None (the app
        answers). ``kept`` is what ``check`` kept with the page."""

    @abstractmethod
    def check(self, environ, state, html: str) -> tuple[str, dict, object] | None:
        """After the app answered: when its page followed ``state``, (the page with its own markers put in,
        {marker: the app's value}, what to keep with it); else None."""


# pages of the rooms above this one: {endpoint: Page}
PAGES: dict[str, Page] = {}

# set by the attempt page's view when the lane asked: (its question pieces (``attempt_questions``), the quiz's
# question ids, its choice ids)
ATTEMPT_PIECES = "awa.attempt_pieces"
# set by the result page's view when the lane asked: (whether a new attempt was refused, the page language's
# translations)
RESULT_SEEN = "awa.result_seen"


def attempt_questions(pieces: tuple, layout, tokens: dict, previous=None) -> str:
    """An open attempt's questions: ``pieces`` (courses/views.py: {question id: heading}, {choice id: choice},
    a question's end, each a ``str.format`` pattern of autoescaped markup) put together in the attempt's
    ``layout`` ([(question id, [choice id, …]), …]) with its ``tokens`` ({(question id, choice id): token}) and,
    for a refused submission, the answers it sent (``previous``) checked again."""
    heads, items, end = pieces[:3]
    out: list[str] = []
    total = len(layout)
    for qpos, (qid, choices) in enumerate(layout, 1):
        chosen = previous.getlist(f"q-{qpos}") if previous else ()
        out.append(heads[qid].format(qpos=qpos, total=total))
        for cidx, cid in enumerate(choices, 1):
            token = tokens[(qid, cid)]
            checked = "checked" if token in chosen else ""
            out.append(items[cid].format(qpos=qpos, cidx=cidx, token=escape(token), checked=checked))
        out.append(end)
    return "".join(out)


class AttemptPage(Page):
    """``GET …/quiz/attempts/<n>``: the user's row and, in the same statement, their attempt of that number at
    the module's quiz of a published or archived course they are enrolled in, with what its result page shows
    of them (their progress in the course, this cycle's attempts at the quiz).

    - An open attempt: the kept page is the app's skeleton for this address and language, shared by every
      learner on that attempt number, filled with the header's values and the attempt's questions, put together
      as the app does from the pieces the app left with it, in the attempt's order with its tokens.
    - A submitted attempt (its result): kept for this learner alone (like the dashboard), for as long as
      everything the statement reads of them reads the same (checked again after the app answered), and never
      while a wait before the next attempt runs (its minutes change with the clock; ``waiting``).
    - One opened before choice tokens existed (the app gives it tokens), or no such attempt: the app answers."""

    kind = "attempt"
    marks = frozenset({"questions", "blocked"})
    READ = "awa.attempt_read"

    def prepare(self, the_lane, environ, args: dict) -> dict | None:
        params = {"slug": args["slug"], "module": args["module_slug"], "number": args["number"]}
        environ[self.READ] = (the_lane, params)
        return params

    def statement(self, signed_in):
        from courses.models import Course, CourseStatus, Enrollment, LessonProgress, Module, Quiz, QuizAttempt

        users = User.__table__
        c, e, m = Course.__table__, Enrollment.__table__, Module.__table__
        q, a, lp = Quiz.__table__, QuizAttempt.__table__, LessonProgress.__table__
        others = QuizAttempt.__table__.alias("others")
        studied = [CourseStatus.PUBLISHED, CourseStatus.ARCHIVED]  # as courses.permissions.can_study
        semicolon = literal_column("';'")
        in_cycle = or_(e.c.renewal_started_at.is_(None), others.c.started_at >= e.c.renewal_started_at)
        lessons = select(func.aggregate_strings(cast(lp.c.lesson_id, String), ",")).where(lp.c.enrollment_id == e.c.id)
        passed = select(func.aggregate_strings(cast(others.c.quiz_id, String), ",")).where(
            others.c.enrollment_id == e.c.id,
            others.c.passed.is_(True),
            or_(e.c.renewal_started_at.is_(None), others.c.submitted_at >= e.c.renewal_started_at),
        )
        entry = cast(others.c.attempt_no, String).concat(semicolon)
        entry = entry.concat(func.coalesce(cast(others.c.score, String), literal_column("''"))).concat(semicolon)
        entry = entry.concat(func.coalesce(cast(others.c.passed, String), literal_column("''"))).concat(semicolon)
        entry = entry.concat(func.coalesce(cast(others.c.submitted_at, String), literal_column("''")))
        attempts = select(func.aggregate_strings(entry, ",")).where(
            others.c.enrollment_id == e.c.id, others.c.quiz_id == q.c.id, in_cycle
        )
        return signed_in(
            a.c.attempt_no,
            a.c.layout,
            a.c.tokens,
            a.c.submitted_at,
            a.c.score,
            a.c.passed,
            a.c.answers,
            e.c.id.label("enrollment_id"),
            e.c.renewal_started_at,
            lessons.scalar_subquery().label("lessons"),
            passed.scalar_subquery().label("passed_quizzes"),
            attempts.scalar_subquery().label("attempts"),
            join=lambda joined: (
                joined.join(c, and_(c.c.slug == bindparam("slug"), c.c.status.in_(studied)))
                .join(e, and_(e.c.user_id == users.c.id, e.c.course_id == c.c.id))
                .join(m, and_(m.c.course_id == c.c.id, m.c.slug == bindparam("module")))
                .join(q, q.c.module_id == m.c.id)
                .join(
                    a, and_(a.c.enrollment_id == e.c.id, a.c.quiz_id == q.c.id, a.c.attempt_no == bindparam("number"))
                )
            ),
        )

    def key(self, the_lane, environ, user_id: int, row, language: str):
        if row.submitted_at is None:
            if row.tokens is None:
                return None
            return ("attempt",), ("open", row.attempt_no)
        # a result: this learner's alone, for what the statement read of them (the order of sets aside), and
        # whether a new attempt is refused now (the reason, a wait's minutes included, is filled per request)
        refused = self._refusal(the_lane, environ, row, None)
        # None: the quiz's rules are not known yet; the app is asked (and gives them), nothing is kept
        state = ("result", user_id, _facts_of(row), None if refused is None else refused is not False)
        return state, state

    def _refusal(self, the_lane, environ, row, translations):
        """Why a new attempt is refused now (``courses.services.attempt_block_reason`` in the page language's
        ``translations``; True when they are None), False when it is not, None when the quiz's rules (the course
        plan) are not known to the lane."""
        from types import SimpleNamespace

        from courses.services import attempt_block_reason

        params = environ[self.READ][1]
        plan = the_lane.plans.get(row[7], ("plan", params["slug"]))  # row[7]: the content version
        rules = None if plan is MISS else plan[5].get(params["module"])
        if rules is None:
            return None
        quiz = SimpleNamespace(max_attempts=rules[0], cooldown_minutes=rules[1], failure_cooldown_minutes=rules[2])
        attempts = [
            SimpleNamespace(attempt_no=n, passed=passed, submitted_at=_moment(at) if at else None)
            for n, passed, at in _attempts(row.attempts)[1]
        ]
        if translations is None:
            translations = _NO_TEXT
        reason = attempt_block_reason(
            quiz,
            attempts,
            now=utcnow(),
            ngettext=lambda s, p, n, **v: translations.ungettext(s, p, n) % {"num": n, **v},
        )
        return False if reason is None else (True if translations is _NO_TEXT else reason)

    def reply(self, the_lane, environ, row, state, kept):
        if state[0] == "result":
            if state[3] is None:
                return None
            if not state[3]:
                return {}, {}
            reason = self._refusal(the_lane, environ, row, kept)
            return None if not isinstance(reason, str) else ({"blocked": str(escape(reason))}, {})
        questions, choices = kept[3], kept[4]
        layout = [(qid, [c for c in cids if c in choices]) for qid, cids in row.layout if qid in questions]
        tokens = {(qid, cid): token for token, (qid, cid) in row.tokens.items()}
        return {"questions": attempt_questions(kept, layout, tokens)}, {}

    def check(self, environ, state, html: str):
        if state[0] == "open":
            pieces = environ.get(ATTEMPT_PIECES)
            return None if pieces is None else (html, {}, pieces)
        # a result: kept only when what the page shows of the learner read the same after the app answered, and
        # the app refused a new attempt (or not) as the lane works it out, before and after
        seen = environ.get(RESULT_SEEN)
        the_lane, params = environ[self.READ]
        session = the_lane._session(environ)
        if seen is None or session is None or state[3] is None or seen[0] != state[3]:
            return None
        user_id, _, token = session["_user_id"].split(":", 2)
        again = the_lane._read_page(self, int(user_id), token, params)
        if again is None or again.submitted_at is None or ("result", int(user_id), _facts_of(again)) != state[:3]:
            return None
        if (self._refusal(the_lane, environ, again, None) is not False) != state[3]:
            return None
        return html, {}, seen[1]

    @staticmethod
    def keep_plan(environ, course) -> None:
        """Called by the result page's view when the lane asked: the course plan, which the lane needs to tell
        whether a wait runs (kept for the course pages too)."""
        read = environ.get(AttemptPage.READ)
        if read is not None:
            plan = contentcache.remember(("lane-plan", course.slug), lambda: plan_of(course))
            read[0].plans.put(contentcache.content_version(), ("plan", course.slug), plan)


class _Untranslated:
    """Translations' stand-in when only whether there is a reason matters (its words do not)."""

    @staticmethod
    def ungettext(singular: str, plural: str, num: int) -> str:
        return singular if num == 1 else plural


_NO_TEXT = _Untranslated()


def _facts_of(row) -> tuple:
    """Everything a result page's statement read after the user's columns, hashable: JSON values as text with
    sorted keys, the aggregated lists (text) sorted (their order is the database's)."""
    import json

    def fact(value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True)
        return ",".join(sorted(value.split(","))) if isinstance(value, str) else value

    return tuple(fact(value) for value in row[8:])


PAGES["courses.attempt"] = AttemptPage()


def _identifier(environ) -> str:
    """flask_login.utils._create_identifier for this request (the address it sees, then the User-Agent)."""
    address = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
    if address is not None:
        address = address.encode("utf-8").split(b",")[0].strip()
    agent = environ.get("HTTP_USER_AGENT")
    if agent is not None:
        agent = agent.encode("utf-8")
    return sha512(f"{address}|{agent}".encode()).hexdigest()


def _user_columns():
    """The first eight columns of both statements: what the session's user must be for the lane to answer."""
    from accounts.services import SESSION_USER_FACTS

    users = User.__table__
    member = SESSION_USER_FACTS.get("has_memberships")
    return [
        users.c.session_version,
        users.c.active,
        users.c.role,
        users.c.email_verified_at,
        users.c.locale,
        users.c.name,
        (member if member is not None else users.c.id.is_(None)).label("member"),
        contentcache.version_column(),
    ]


def _signed_in(*columns, outerjoin=None, join=None):
    """SELECT the user's columns and ``columns`` for this user and login (an ended login finds nothing);
    ``join(users ⋈ logins)`` joins more."""
    users, logins = User.__table__, LoginSession.__table__
    joined = users.join(logins, logins.c.user_id == users.c.id)
    if outerjoin is not None:
        joined = joined.outerjoin(*outerjoin)
    if join is not None:
        joined = join(joined)
    return (
        select(*_user_columns(), *columns)
        .select_from(joined)
        .where(
            users.c.id == bindparam("user_id"),
            logins.c.token_hash == bindparam("token_hash"),
            logins.c.ended_at.is_(None),
        )
    )


def joiner(dialect: str):
    # func.aggregate_strings would render its separator as a post-compiled parameter (unusable on a raw cursor)
    return func.string_agg if dialect == "postgresql" else func.group_concat


def _statement(dialect: str, *, quiz: bool = False):
    """The read for the course, lesson and catalog pages (see the module docstring, 3.); ``quiz``: and a quiz
    page's, which also reads the learner's attempts at the module's quiz in this cycle (as
    ``courses.services.attempts_for``), as "number;score;passed;submitted at" joined by commas."""
    from courses.models import Course, Enrollment, LessonProgress, Module, Quiz, QuizAttempt

    users = User.__table__
    e, lp, qa = Enrollment.__table__, LessonProgress.__table__, QuizAttempt.__table__
    course_id = select(Course.__table__.c.id).where(Course.__table__.c.slug == bindparam("slug")).scalar_subquery()
    joined = joiner(dialect)
    lessons = select(joined(cast(lp.c.lesson_id, String), literal_column("','"))).where(lp.c.enrollment_id == e.c.id)
    quizzes = select(joined(cast(qa.c.quiz_id, String), literal_column("','"))).where(
        qa.c.enrollment_id == e.c.id,
        qa.c.passed.is_(True),
        or_(e.c.renewal_started_at.is_(None), qa.c.submitted_at >= e.c.renewal_started_at),
    )
    columns = [course_id.label("course_id"), e.c.id, e.c.completed_at, lessons.scalar_subquery()]
    columns.append(quizzes.scalar_subquery())
    if quiz:
        q, m = Quiz.__table__, Module.__table__
        quiz_id = (
            select(q.c.id)
            .select_from(q.join(m, m.c.id == q.c.module_id))
            .where(m.c.course_id == course_id, m.c.slug == bindparam("module"))
            .scalar_subquery()
        )
        semicolon = literal_column("';'")
        entry = cast(qa.c.attempt_no, String).concat(semicolon)
        entry = entry.concat(func.coalesce(cast(qa.c.score, String), literal_column("''"))).concat(semicolon)
        entry = entry.concat(func.coalesce(cast(qa.c.passed, String), literal_column("''"))).concat(semicolon)
        entry = entry.concat(func.coalesce(cast(qa.c.submitted_at, String), literal_column("''")))
        attempts = select(joined(entry, literal_column("','"))).where(
            qa.c.enrollment_id == e.c.id,
            qa.c.quiz_id == quiz_id,
            or_(e.c.renewal_started_at.is_(None), qa.c.started_at >= e.c.renewal_started_at),
        )
        columns.append(attempts.scalar_subquery())
    return _signed_in(*columns, outerjoin=(e, and_(e.c.user_id == users.c.id, e.c.course_id == course_id)))


def text_of(*columns):
    """One text value from ``columns`` (NULL as empty), for comparing rows as read twice."""
    parts = []
    for column in columns:
        if parts:
            parts.append(literal_column("':'"))
        parts.append(func.coalesce(cast(column, String), literal_column("''")))
    value = parts[0]
    for part in parts[1:]:
        value = value.concat(part)
    return value


# What else a learner's dashboard shows, by the rooms above this one: {name: build(dialect) -> a scalar SQL
# expression correlated to users.id that changes whenever what that room shows on the dashboard does, including
# at the moment a status changes with time (``bindparam("now")``, this moment)}. credentials adds its certificates.
DASHBOARD_PARTS: dict = {}


def _dashboard_statement(dialect: str):
    """The read for the dashboard: the user's columns, then everything the dashboard shows of theirs, each as one
    text value (the page is kept for as long as all of them read the same)."""
    from courses.models import Enrollment, LessonProgress, ProgramEnrollment, QuizAttempt

    users = User.__table__
    e, lp, qa, pe = Enrollment.__table__, LessonProgress.__table__, QuizAttempt.__table__, ProgramEnrollment.__table__
    joined, comma = joiner(dialect), literal_column("','")
    mine = e.c.user_id == users.c.id
    enrollments = select(
        joined(
            text_of(
                e.c.id, e.c.course_id, e.c.enrolled_at, e.c.last_activity_at, e.c.completed_at, e.c.renewal_started_at
            ),
            comma,
        )
    ).where(mine)
    # progress rows are added, never changed: their number and ids tell any change
    lessons = (
        select(text_of(func.count(lp.c.id), func.max(lp.c.id), func.sum(lp.c.id)))
        .select_from(lp.join(e, e.c.id == lp.c.enrollment_id))
        .where(mine)
    )
    passed = (
        select(text_of(func.count(qa.c.id), func.max(qa.c.id), func.sum(qa.c.id)))
        .select_from(qa.join(e, e.c.id == qa.c.enrollment_id))
        .where(mine, qa.c.passed.is_(True))
    )
    programs = select(joined(text_of(pe.c.id, pe.c.program_id, pe.c.enrolled_at, pe.c.completed_at), comma)).where(
        pe.c.user_id == users.c.id
    )
    parts = [enrollments, lessons, passed, programs]
    columns = [part.scalar_subquery() for part in parts]
    columns += [build(dialect) for _, build in sorted(DASHBOARD_PARTS.items())]
    return _signed_in(*columns)


def install(app: Flask) -> None:
    lane.install(app, SignedInLane)


def find(app: Flask) -> SignedInLane | None:
    """This app's lane (tests, benchmarks)."""
    layer = app.wsgi_app
    while layer is not None:
        if isinstance(layer, SignedInLane):
            return layer
        layer = getattr(layer, "inner", None) or getattr(layer, "app", None)
    return None
