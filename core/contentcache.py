"""Caching what changes only when content changes (courses, programs, the skills framework), keyed by a
content version that lives in the database.

Why the version is a database row and the cache is per process:

- Every write to a content model (a class with ``__content__ = True``: courses, modules, lessons, quizzes,
  programs, plan goals, skills, occupations, their tag lists) gives the ``content_versions`` row a new random
  token in the same transaction (a ``before_flush`` hook). Publishing in the studio, `flask courses import`,
  `flask skills load` and any other writer are covered without each remembering to invalidate, and the new
  token becomes visible exactly when the content does (at commit), to every app server and every process
  reading the same database: a publish on server A shows on server B's next request.
- Anything cached is keyed by that token, so an entry never changes once written: each process can keep its
  own copy (a plain in-memory LRU, no pickling, no network hop) without ever serving stale content. A shared
  store (Redis) would only save each process its first render per version, for one more round trip per hit.
- The token is read once per request, *before* any content is read (``content_version``), so content read
  after it can only be as new or newer than the token says, never older.
- A missing row (a database emptied by hand or by the test suite) turns caching off until the next content
  write inserts a new token; tokens are random, so entries from before can never match again.

What may be cached: data that depends only on content and on the page and course language (part of the
key). Never a fragment holding a user's data or a CSRF token: ``cached_page`` serves whole pages only to
visitors who are not logged in, and refuses to store a page whose rendering touched the session or made a
CSRF token.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, has_app_context, make_response, request, session
from sqlalchemy import String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.database import utcnow
from core.extensions import db

T = TypeVar("T")
ROW_ID = 1
VERSION_SQL = f"SELECT token FROM content_versions WHERE id = {ROW_ID}"  # noqa: S608  (a constant)
_MISS = MISS = object()
# set in the WSGI environ when the answer is a kept visitor's page: (content version, page language, the query
# parameters the view reads, whether the route has a rate limit); core/lane.py's PageLane keeps those answers
KEPT_PAGE = "awa.kept_page"


class ContentVersion(db.Model):
    """One row: the token of the content as last committed (see the module docstring)."""

    __tablename__ = "content_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


def new_token() -> str:
    return secrets.token_hex(16)


@event.listens_for(Session, "before_flush")
def _bump_on_content_change(session: Session, flush_context, instances) -> None:
    # a changed tag list marks its owner dirty, so tags are covered by their course/skill/program
    changed = (session.new, session.dirty, session.deleted)
    if not any(getattr(obj, "__content__", False) for group in changed for obj in group):
        return
    with session.no_autoflush:
        row = session.get(ContentVersion, ROW_ID)
        if row is None:
            session.add(ContentVersion(id=ROW_ID, token=new_token(), changed_at=utcnow()))
        else:
            row.token, row.changed_at = new_token(), utcnow()
    if has_app_context():
        g.pop("content_version", None)  # this context reads the new token from now on


def content_version() -> str | None:
    """This request's content token (read once per request; None: caching is off)."""
    if "content_version" not in g:
        # plain SQL on the request's own connection: an ORM select cost a third of a cached page
        g.content_version = db.session.connection().exec_driver_sql(VERSION_SQL).scalar()
    return g.content_version


def version_column():
    """The token as a column of another select, so the first statement of a signed-in request (loading its user,
    accounts/services.py) reads it too; hand the value to ``note_version``."""
    return (
        select(ContentVersion.__table__.c.token)
        .where(ContentVersion.__table__.c.id == ROW_ID)
        .scalar_subquery()
        .label("awa_content_version")
    )


def note_version(token: str | None) -> None:
    """This request's token as read by ``version_column`` (read before any content, like ``content_version``);
    a token read earlier in the request stays."""
    if has_app_context() and "content_version" not in g:
        g.content_version = token


class LocalStore:
    """A bounded in-process LRU of one content version's entries (older versions are dropped on sight).

    Bounded by ``limit`` units: each entry costs 1 (objects) or its size in bytes (whole pages, whose keys
    include the query string a visitor chooses), so no URL pattern can grow a process without bound.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.version: str | None = None
        self.entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def holds(self, key: tuple) -> bool:
        """Whether an entry for ``key`` is kept, under whatever version (no lock: one dict lookup)."""
        return key in self.entries

    def get(self, version: str, key: tuple) -> Any:
        with self.lock:
            if version != self.version:
                return _MISS
            entry = self.entries.get(key)
            if entry is None:
                return _MISS
            self.entries.move_to_end(key)
            return entry[0]

    def put(self, version: str, key: tuple, value: Any, cost: int = 1) -> None:
        if cost > self.limit:
            return
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.used = 0
                self.version = version
            previous = self.entries.pop(key, None)
            if previous is not None:
                self.used -= previous[1]
            self.entries[key] = (value, cost)
            self.used += cost
            while self.used > self.limit:
                self.used -= self.entries.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.used = 0
            self.version = None


def _store(app: Flask | None = None) -> LocalStore:
    return (app or current_app).extensions["content_cache"]


def _pages(app: Flask | None = None) -> LocalStore:
    return (app or current_app).extensions["content_cache_pages"]


def remember(key: tuple, build: Callable[[], T]) -> T:
    """``build()``'s result for this content version and ``key`` (include every language it depends on).

    The value is shared by every request of this process until the content changes: treat it as read-only,
    and never put a user's data in it. ``build`` runs after the version was read (see the module docstring).
    """
    version = content_version()
    if version is None or not current_app.config["CONTENT_CACHE"]:
        return build()
    store = _store()
    value = store.get(version, key)
    if value is _MISS:
        value = build()
        store.put(version, key, value)
    return value


def peek(key: tuple) -> Any:
    """The cached value for ``key`` in this content version, or None when there is none (yet)."""
    version = content_version()
    if version is None or not current_app.config["CONTENT_CACHE"]:
        return None
    value = _store().get(version, key)
    return None if value is _MISS else value


def page_get(key: tuple) -> str | None:
    """Markup kept by ``page_put`` for ``key`` in this content version (core/skeleton.py), or None."""
    version = content_version()
    if version is None or not current_app.config["CONTENT_CACHE"]:
        return None
    value = _pages().get(version, key)
    return None if value is _MISS else value


def page_put(key: tuple, html: str) -> None:
    """Keep ``html`` (no personal data: see core/skeleton.py) for ``key`` until the content changes; its size
    counts against the same byte budget as whole visitor pages."""
    version = content_version()
    if version is not None and current_app.config["CONTENT_CACHE"]:
        _pages().put(version, key, html, cost=len(html) + 200)


def remember_html(key: tuple, build: Callable[[], str]) -> str:
    """Like ``remember``, for rendered fragments: kept in the byte-bounded page store, where keys holding values
    (a percentage, a date) can be many without crowding out the outlines. Never for a fragment holding a
    user's data."""
    html = page_get(key)
    if html is None:
        html = build()
        page_put(key, html)
    return html


def _anonymous_get() -> bool:
    from flask_login import current_user

    # a visitor with flashed messages waiting must see them: that page is theirs alone
    return request.method == "GET" and not current_user.is_authenticated and "_flashes" not in session


def cached_page(view: Callable | None = None, *, query: tuple[str, ...] = ()) -> Callable:
    """Serve the whole page from the content cache to visitors who are not logged in.

    Keyed by the full URL (host, path, query: the filters, ``?lang=``) and the page language (which also
    follows the ``lang`` cookie and Accept-Language). Only a 200 whose rendering neither touched the session
    nor made a CSRF token is stored; the response hooks (security headers, Vary) run on hits as on misses.
    ``query``: the parameters the view reads besides ``lang``; core/lane.py answers a later request for the
    same page in front of Flask only when the query holds no other (an unknown parameter goes to the app).
    """
    if view is None:
        return lambda view: cached_page(view, query=query)
    params = frozenset((*query, "lang"))

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_app.config["CONTENT_CACHE"] or not _anonymous_get():
            return view(*args, **kwargs)
        from core.i18n import current_language

        environ = request.environ
        # scheme, host, path and query as sent (cheaper than request.url, and as exact)
        key = (
            "page",
            environ["wsgi.url_scheme"],
            request.host,
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            current_language(),
        )
        version = content_version()
        hit = _pages().get(version, key) if version else _MISS
        if hit is not _MISS:
            body, mimetype = hit
            environ[KEPT_PAGE] = (version, key[-1], params, _limited())
            return Response(body, 200, mimetype=mimetype)
        response = make_response(view(*args, **kwargs))
        csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        if (
            version
            and response.status_code == 200
            and not response.direct_passthrough
            and not session.modified
            and csrf_field not in g
        ):
            body = response.get_data()
            _pages().put(version, key, (body, response.mimetype), cost=len(body) + 200)
            environ[KEPT_PAGE] = (version, key[-1], params, _limited())
        return response

    return wrapper


def _limited() -> bool:
    """Whether this request's route has a rate limit of its own (the lane would have to count it: it does not)."""
    from core.extensions import limiter

    view = current_app.view_functions.get(request.endpoint)
    decorated = getattr(getattr(limiter, "limit_manager", None), "_decorated_limits", None)
    if view is None or decorated is None:
        return True
    return bool(decorated.get(f"{view.__module__}.{view.__name__}.{view.__qualname__}"))  # get_qualified_name


def init_app(app: Flask) -> None:
    app.config.setdefault("CONTENT_CACHE", True)
    app.config.setdefault("CONTENT_CACHE_SIZE", 2000)
    app.config.setdefault("CONTENT_CACHE_PAGE_BYTES", 32 * 1024 * 1024)
    app.extensions["content_cache"] = LocalStore(int(app.config["CONTENT_CACHE_SIZE"]))
    app.extensions["content_cache_pages"] = LocalStore(int(app.config["CONTENT_CACHE_PAGE_BYTES"]))


def clear(app: Flask | None = None) -> None:
    """Drop this process's entries (they would never be served again anyway once the token changes)."""
    _store(app).clear()
    _pages(app).clear()
