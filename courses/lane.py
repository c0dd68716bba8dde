"""Signed-in learners' course and lesson pages answered in front of Flask (issue 17).

A learner's course or lesson page is, since core/skeleton.py, a kept skeleton filled with their progress and three
header values (the CSRF token, their name, the page address). What was left per request was mostly Flask itself:
the request context, opening the session cookie, Flask-Login's loader, the response hooks. This WSGI layer answers
such a request before Flask when it can prove the app would answer exactly these bytes:

1. the request: a GET of ``/courses/<slug>`` or ``/courses/<slug>/<module>/<lesson>`` (matched by the app's own
   URL map), no query string, no conditional or Range header, a session cookie, a Host the app accepts;
2. the session cookie, opened as Flask's session interface opens it (the app's own signing serializer: same secret
   and fallbacks, salt, key derivation, digest, max age). It must hold only the keys a settled login holds
   (``_user_id``, ``_id``, ``_fresh``, ``csrf_token``): anything else (flashed messages, a remember-me order, a
   permanent session, no CSRF secret yet) means Flask would change or rewrite the cookie, and Flask answers.
   Its ``_id`` must equal Flask-Login's identifier for this client (session protection "strong" drops the session
   otherwise);
3. one statement on the lane's autocommit connection: the user's row joined to their login (an ended login, a
   logout on the server, returns nothing), the content version, whether they belong to an organization, and their
   enrollment in this course with its completed lessons and the quizzes passed in the current cycle. A stale
   session version, an inactive, unverified or non-learner account, an organization member (their header lists
   their organizations), a completed enrollment (the page links a certificate), a lesson page without an
   enrollment: Flask answers;
4. a kept answer for (content version, address, language, role, the learner's state as the page shows it). The
   learner state is reduced to what the page depends on: for the course page, enrolled or not and the ✓ of each
   step of the current outline; for a lesson page, whether this lesson is done and how many steps are. A kept
   answer holds the app's status line and headers (after every response hook) and its body with only the three
   header markers left in; the lane fills them with this request's values, escaped as the template escapes them.

Answers are kept only from the app itself: on a miss the lane asks (``skeleton.LANE_WANTS``) and the view leaves its
content version, language, user, course plan and learner state in the environ, and core/skeleton.py the page with
header markers. The lane keeps it only when all of those equal what its own statement read, the status is 200, no
cookie is set, and the page filled with the app's own values is byte for byte the body the app sent. Nothing is
invalidated: a publish changes the version, progress changes the state, a logout or role change the row.
"""

from __future__ import annotations

import logging
from hashlib import sha512

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import escape
from sqlalchemy import String, and_, bindparam, cast, func, literal_column, or_, select
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.routing import RequestRedirect

from accounts.models import LoginSession, Role, User
from core import contentcache, lane, skeleton
from core.contentcache import MISS, LocalStore

# set by the course and lesson views when the lane asked: (content version, language, user id, plan, state)
LANE_STATE = "awa.signed_in_state"
ENDPOINTS = {"courses.course": "course", "courses.lesson": "lesson"}
SESSION_KEYS = frozenset({"_user_id", "_id", "_fresh", "csrf_token"})
LEARNER = Role.LEARNER.value
PLANS = 2000  # courses' plans kept per process (one per course per content version)


def plan_of(course) -> tuple:
    """What the lane needs of a course's current outline: (course id, its lesson ids, its quiz ids,
    {(module slug, lesson slug): lesson id})."""
    lessons, quizzes, by_slug = set(), set(), {}
    for module in course.modules:
        for lesson in module.lessons:
            lessons.add(lesson.id)
            by_slug[(module.slug, lesson.slug)] = lesson.id
        if module.quiz is not None:
            quizzes.add(module.quiz.id)
    return course.id, frozenset(lessons), frozenset(quizzes), by_slug


def state_of(kind: str, plan: tuple, lesson_id, enrolled: bool, completed: bool, lessons, quizzes) -> tuple:
    """The learner's state as the page shows it: the course page shows a ✓ per step and what follows from them;
    a lesson page whether this lesson is done and the share of steps done."""
    _, plan_lessons, plan_quizzes, _ = plan
    done_lessons, done_quizzes = plan_lessons.intersection(lessons), plan_quizzes.intersection(quizzes)
    if kind == "course":
        return kind, enrolled, completed, done_lessons, done_quizzes
    return kind, enrolled, completed, lesson_id in done_lessons, len(done_lessons) + len(done_quizzes)


def offer(environ, kind: str, course, lesson_id, enrollment, progress, version, language, user_id) -> None:
    """Called by the views: leave this request's facts for the lane, when it asked (see the module docstring)."""
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
    environ[LANE_STATE] = (version, language, user_id, plan, state)


def _ids(text) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",")) if text else frozenset()


class SignedInLane(lane.BaseLane):
    def __init__(self, app: Flask, inner) -> None:
        super().__init__(app, inner)
        self.pages = LocalStore(int(app.config["CONTENT_CACHE_PAGE_BYTES"]))
        self.plans = LocalStore(PLANS)
        self.answered = 0  # requests this lane answered, and statements it ran (tests, benchmarks)
        self.reads = 0
        self._serializers: tuple | None = None
        self._statement: dict[str, tuple] = {}

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
            and not environ.get("QUERY_STRING")
            and bool(cookie)
            and config["SESSION_COOKIE_NAME"] + "=" in cookie
            and not config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST")
            and not config.get("SERVER_NAME")
            and type(self.app.session_interface) is SecureCookieSessionInterface
            and "\x00" not in environ.get("PATH_INFO", "")
            and not any(name in environ for name in lane.CONDITIONAL)
        )

    # ---- the answer ---------------------------------------------------------------------------------------

    def _answer(self, environ):
        """("hit", (status, headers, body)), or ("keep", what to check the app's answer against), or None."""
        if self.current_url(environ) is None:
            return None
        try:
            endpoint, args = self.app.url_map.bind_to_environ(environ).match()
        except (HTTPException, RequestRedirect):
            return None
        kind = ENDPOINTS.get(endpoint)
        if kind is None:
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
        row = self._read(user_id, token, args["slug"])
        if row is None:
            return None
        (
            row_version,
            active,
            role,
            verified_at,
            locale,
            name,
            member,
            content,
            course_id,
            enrollment_id,
            completed_at,
            lessons,
            quizzes,
        ) = row
        if row_version != session_version or not active or role != LEARNER or verified_at is None or member:
            return None
        if content is None or course_id is None:
            return None
        supported = self.app.extensions["i18n_languages"]
        language = locale if locale in supported else self.language(environ)
        facts = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST") or environ.get("SERVER_NAME"))
        facts += (environ.get("SERVER_PORT"), environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""))
        facts += (language, role)
        learner = (enrollment_id is not None, completed_at is not None, _ids(lessons), _ids(quizzes))
        values = {
            "csrf": self._csrf(session["csrf_token"]),
            "name": str(escape(name)),
            "next": "/" + environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace").lstrip("/"),
        }
        expect = (content, language, user_id, course_id, kind, args, learner, facts, values, session["csrf_token"])
        plan = self.plans.get(content, ("plan", args["slug"]))
        if plan is MISS:
            return "keep", expect
        if plan[0] != course_id:
            return None
        key = self._key(kind, args, plan, learner, facts)
        if key is None:
            return None
        kept = self.pages.get(content, key)
        if kept is MISS:
            return "keep", expect
        status, headers, parts = kept
        body = "".join(part if index % 2 == 0 else values[part] for index, part in enumerate(parts)).encode()
        length = str(len(body))
        return "hit", (status, [(n, length) if n == "Content-Length" else (n, v) for n, v in headers], body)

    @staticmethod
    def _key(kind: str, args: dict, plan: tuple, learner: tuple, facts: tuple) -> tuple | None:
        enrolled, completed = learner[0], learner[1]
        if completed and kind == "course":
            return None  # links the learner's certificate: never kept (courses/views.py)
        lesson_id = None
        if kind == "lesson":
            lesson_id = plan[3].get((args["module_slug"], args["lesson_slug"]))
            if lesson_id is None or not enrolled:
                return None  # the app's 404 or 403
        return (*facts, state_of(kind, plan, lesson_id, *learner))

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

    def _read(self, user_id: int, token: str, slug: str):
        from accounts.services import _hash_token

        sql, order, constants = self._compiled()
        params = {"user_id": user_id, "token_hash": _hash_token(token), "slug": slug}
        if order is not None:  # a positional paramstyle (SQLite)
            return self.read_row(sql, tuple(params.get(name, constants.get(name)) for name in order))
        return self.read_row(sql, {**constants, **params})

    def _compiled(self) -> tuple[str, tuple | None, dict]:
        """(the statement as the driver takes it, its parameter names in order when positional, its constants)."""
        dialect = self.reader().dialect
        found = self._statement.get(dialect.name)
        if found is None:
            compiled = _statement(dialect.name).compile(dialect=dialect)
            mine = {"user_id": 0, "token_hash": "", "slug": ""}
            constants = {k: v for k, v in compiled.construct_params(mine).items() if k not in mine}
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._statement[dialect.name] = (str(compiled), order, constants)
        return found

    def read_row(self, sql: str, params):
        """The first row of ``sql`` with ``params``, on this thread's autocommit reading connection (see
        ``BaseLane.read_value``)."""
        held = self._connection()
        self.reads += 1
        try:
            return held[1].driver_connection.execute(sql, params).fetchone()
        except Exception:
            self._raw.connection = None
            try:
                held[1].invalidate()
            finally:
                raise

    def _connection(self):
        import os

        held = getattr(self._raw, "connection", None)
        if held is None or held[0] != (os.getpid(), self._generation):
            held = (os.getpid(), self._generation), self.reader().raw_connection()
            with self._lock:
                self._held.append(held)
            self._raw.connection = held
        return held

    # ---- keeping the app's answer ---------------------------------------------------------------------------

    def _keeping(self, environ, start_response, expect: tuple):
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        environ[skeleton.LANE_WANTS] = True
        result = self.inner(environ, capture)
        state, page = environ.get(LANE_STATE), environ.get(skeleton.SKELETON_PAGE)
        if state is None or page is None or not answer:
            return result
        headers = _replayable(answer[0], answer[1])
        content, language, user_id, course_id, kind, args, learner, facts, values, secret = expect
        version, app_language, app_user, plan, app_state = state
        if headers is None or (version, app_language, app_user, plan[0]) != (content, language, user_id, course_id):
            return result
        key = self._key(kind, args, plan, learner, facts)
        if key is None or key[-1] != app_state:
            return result  # the learner's state changed between the two reads (or the app saw it otherwise)
        parts = skeleton.segments(page[0])
        if parts is None:
            return result
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        filled = "".join(part if index % 2 == 0 else page[1][part] for index, part in enumerate(parts))
        # the app's token is signed at its own second: it must carry the same secret, not the same timestamp
        same_values = page[1]["name"] == values["name"] and page[1]["next"] == values["next"]
        if filled.encode() == body and same_values and self._token_secret(page[1]["csrf"]) == secret:
            self.plans.put(content, ("plan", args["slug"]), plan)
            self.pages.put(content, key, (answer[0], headers, parts), len(body) + 1000)
        return [body]


def _replayable(status: str, headers) -> list[tuple[str, str]] | None:
    """The app's headers, in its order, when the lane may send them again with only Content-Length made afresh:
    a 200 that sets no cookie and has no other header made per request (core/lane.py's PER_REQUEST)."""
    if not status.startswith("200 "):
        return None
    names = [name.lower() for name, _ in headers]
    if "set-cookie" in names or "content-length" not in names or len(lane.PER_REQUEST.intersection(names)) != 1:
        return None
    return [("Content-Length" if n.lower() == "content-length" else n, v) for n, v in headers]


def _identifier(environ) -> str:
    """flask_login.utils._create_identifier for this request (the address it sees, then the User-Agent)."""
    address = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
    if address is not None:
        address = address.encode("utf-8").split(b",")[0].strip()
    agent = environ.get("HTTP_USER_AGENT")
    if agent is not None:
        agent = agent.encode("utf-8")
    return sha512(f"{address}|{agent}".encode()).hexdigest()


def _statement(dialect: str):
    """The lane's one read (see the module docstring, 3.), for ``dialect`` (how a list of ids is joined)."""
    from accounts.services import SESSION_USER_FACTS
    from courses.models import Course, Enrollment, LessonProgress, QuizAttempt

    users, logins = User.__table__, LoginSession.__table__
    e, lp, qa = Enrollment.__table__, LessonProgress.__table__, QuizAttempt.__table__
    course_id = select(Course.__table__.c.id).where(Course.__table__.c.slug == bindparam("slug")).scalar_subquery()
    member = SESSION_USER_FACTS.get("has_memberships")
    # func.aggregate_strings would render its separator as a post-compiled parameter (unusable on a raw cursor)
    joined = func.string_agg if dialect == "postgresql" else func.group_concat
    lessons = select(joined(cast(lp.c.lesson_id, String), literal_column("','"))).where(lp.c.enrollment_id == e.c.id)
    quizzes = select(joined(cast(qa.c.quiz_id, String), literal_column("','"))).where(
        qa.c.enrollment_id == e.c.id,
        qa.c.passed.is_(True),
        or_(e.c.renewal_started_at.is_(None), qa.c.submitted_at >= e.c.renewal_started_at),
    )
    return (
        select(
            users.c.session_version,
            users.c.active,
            users.c.role,
            users.c.email_verified_at,
            users.c.locale,
            users.c.name,
            (member if member is not None else users.c.id.is_(None)).label("member"),
            contentcache.version_column(),
            course_id.label("course_id"),
            e.c.id,
            e.c.completed_at,
            lessons.scalar_subquery(),
            quizzes.scalar_subquery(),
        )
        .select_from(
            users.join(logins, logins.c.user_id == users.c.id).outerjoin(
                e, and_(e.c.user_id == users.c.id, e.c.course_id == course_id)
            )
        )
        .where(
            users.c.id == bindparam("user_id"),
            logins.c.token_hash == bindparam("token_hash"),
            logins.c.ended_at.is_(None),
        )
    )


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
