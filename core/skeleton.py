"""Signed-in pages rendered once per content version and filled in per request.

A signed-in course, lesson or catalog page is mostly content that changes only when an admin publishes (course
text, outline, filter pickers, navigation), around a few values that belong to the person asking: their progress,
the ✓ marks of their outline, the CSRF token of its forms, their name in the header. Rendering all of it per request
was most of such a page's CPU. So the view renders the template once per *key* with a marker in place of each
personal value, the markup is kept per process in the content cache (core/contentcache.py: dropped when the content
version changes), and each request only replaces the markers, in one pass, by its own values (escaped exactly as the
template would escape them).

The key is what the view passes (the page and every state its template branches on: enrolled, completed, lesson
done…) plus everything the page frame depends on: the content version, the page language, the full address (the
``hreflang`` links), and the answers of the permission predicates the header asks. Nothing personal is ever in a
key or in the stored markup:

- values go in as markers only (``fills``), and the CSRF token of every form rendered meanwhile is a marker too;
- a page is rendered this way only for a signed-in person in no organization (members' headers list their own
  organizations), with no flashed message waiting, who cannot manage certificates (their pages warn about the
  signing key, which is not content);
- as a tripwire, markup holding the person's name or email address is never stored.

Markers carry a random per-process nonce, so no content (a course title an admin typed) can forge one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from flask import current_app, g, request, session
from flask_login import current_user
from markupsafe import Markup, escape

from core import contentcache

_NONCE = secrets.token_hex(6)
_MARK_RE = re.compile("\x1eawa-" + _NONCE + r"-([a-z_]+)\x1e")
CSRF_FIELD = "csrf_token"


def mark(name: str) -> Markup:
    """The marker standing for the per-request value ``name`` in rendered markup (lowercase letters and _)."""
    return Markup(f"\x1eawa-{_NONCE}-{name}\x1e")  # noqa: S704  (ours: no user input)


def rendering() -> bool:
    """Whether a skeleton is being rendered now (the header then keeps its markers)."""
    return bool(g.get("awa_skeleton"))


def _header_values() -> dict[str, Callable[[], str]]:
    from flask_wtf.csrf import generate_csrf

    from core.i18n import page_without_language

    return {
        "csrf": lambda: str(escape(generate_csrf())),
        "next": lambda: str(escape(page_without_language())),
        "name": lambda: str(escape(current_user.name)),
    }


HEADER_MARKS = frozenset({"csrf", "next", "name"})
# set by a WSGI lane in front of the app (courses/lane.py) when it wants to keep this request's page: the view's
# skeleton then also leaves the page with only the header's markers in it, under SKELETON_PAGE
LANE_WANTS = "awa.lane_wants"
SKELETON_PAGE = "awa.skeleton_page"


def fill(html: str, values: dict[str, str | Markup], keep: frozenset[str] = frozenset()) -> Markup:
    """``html`` with every marker replaced by its value (str escaped, Markup as is), in one pass: a value holding
    something that looks like a marker is never substituted again. Markers named in ``keep`` stay as they are."""
    computed: dict[str, str] = {name: str(mark(name)) for name in keep}
    lazy = _header_values()

    def value(found: re.Match) -> str:
        name = found.group(1)
        if name not in computed:
            if name in values:
                given = values[name]
                computed[name] = given if isinstance(given, Markup) else str(escape(given))
            else:
                computed[name] = lazy[name]()
        return computed[name]

    return Markup(_MARK_RE.sub(value, html))  # noqa: S704  (every value escaped above)


def _frame_key(path: str | None = None) -> tuple | None:
    """What the page frame depends on, or None when this request must be rendered in full (see the docstring).
    ``path``: what stands for the request's path (a page that holds its address only as markers)."""
    if not current_app.config["CONTENT_CACHE"] or request.method != "GET" or "_flashes" in session:
        return None
    user = current_user._get_current_object()
    if not getattr(user, "is_authenticated", False) or getattr(user, "has_memberships", None) is not False:
        return None
    if current_app.jinja_env.globals["can_manage_certificates"](user):
        return None
    from core.header import grants
    from core.i18n import current_language

    environ = request.environ
    return (
        environ["wsgi.url_scheme"],
        request.host,
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", "") if path is None else path,
        environ.get("QUERY_STRING", ""),
        current_language(),
        grants(user),
    )


def page(
    key: tuple | None,
    render: Callable[[], str],
    fills: dict[str, str | Markup] | None = None,
    *,
    path: str | None = None,
    full: Callable[[], str] | None = None,
    lane_marks: frozenset[str] = frozenset(),
) -> Markup:
    """The page ``render()`` makes, from the per-process copy for ``key`` when there is one.

    ``render`` must pass ``mark(name)`` wherever the template shows a per-request value and put that value in
    ``fills`` under ``name``; ``key`` must hold every other thing the template branches on that is not content.
    ``render`` runs with the CSRF token set to a marker when the result may be kept. Raises what ``render``
    raises. ``key`` None: this page is never kept (rendered in full, its markers filled; by ``full()`` if given).
    ``path``: what the frame's key holds for the request's path, for a page whose address is only in markers.
    ``lane_marks``: markers of ``fills`` the page is offered to a lane with (its values as this request's).
    """
    fills = fills or {}
    frame = _frame_key(path) if key is not None else None
    if frame is None:
        return Markup(full()) if full is not None else fill(render(), fills)  # noqa: S704 (a rendered page)
    full_key = ("skeleton", *key, *frame)
    html = contentcache.page_get(full_key)
    keepable = True
    if html is None:
        html = _render_skeleton(render)
        user = current_user
        personal = [str(escape(part)) for part in (user.name, user.email) if part]
        keepable = not any(part in html for part in personal)
        if keepable:
            contentcache.page_put(full_key, html)
    if keepable and request.environ.get(LANE_WANTS):
        _offer_to_lane(html, fills, lane_marks)
    return fill(html, fills)


def _offer_to_lane(html: str, fills: dict[str, str | Markup], keep: frozenset[str] = frozenset()) -> None:
    """Leave, for the lane that asked, this page with only the header's markers (csrf, next, name) and those in
    ``keep``, the values this request fills them with and the facts about the person its frame followed (role,
    email confirmed, member of an organization): the lane keeps the page when they are the ones it read, and
    fills it with its own request's values. The facts: (content version, language, user id, role, email
    confirmed, member)."""
    from core.i18n import current_language

    lazy = _header_values()
    user = current_user._get_current_object()
    facts = (contentcache.content_version(), current_language(), user.id, user.role.value)
    facts += (user.email_verified_at is not None, bool(getattr(user, "has_memberships", True)))
    values = {name: lazy[name]() for name in HEADER_MARKS}
    for name in keep:
        if name in fills:
            given = fills[name]
            values[name] = str(given) if isinstance(given, Markup) else str(escape(given))
    request.environ[SKELETON_PAGE] = (str(fill(html, fills, keep=HEADER_MARKS | keep)), values, facts)


def personal_page(render: Callable[[], str]) -> Markup:
    """``render()``: a page that is the person's own (the dashboard). When a lane asked for it (and the frame may
    be kept: see ``_frame_key``), it is rendered with the header's markers and offered, markers and all, to the
    lane, which keeps it for this person alone; otherwise rendered as usual."""
    if not request.environ.get(LANE_WANTS) or _frame_key() is None:
        return Markup(render())  # noqa: S704  (a rendered, autoescaped template)
    html = _render_skeleton(render)
    _offer_to_lane(html, {})
    return fill(html, {})


def segments(html: str, more: frozenset[str] = frozenset()) -> list[str] | None:
    """``html`` split at its markers: text, marker name, text, …; None when a marker other than the header's (or
    those in ``more``) is left in it."""
    parts = _MARK_RE.split(html)
    return parts if set(parts[1::2]) <= HEADER_MARKS | more else None


def split(html: str) -> list[str]:
    """``html`` split at its markers: text, marker name, text, … (any marker; pieces filled per request)."""
    return _MARK_RE.split(html)


def _render_skeleton(render: Callable[[], str]) -> str:
    had_token = CSRF_FIELD in g
    token = g.pop(CSRF_FIELD, None)
    g.awa_skeleton = True
    setattr(g, CSRF_FIELD, str(mark("csrf")))  # what flask_wtf.csrf.generate_csrf returns while it is set
    try:
        return str(render())
    finally:
        g.awa_skeleton = False
        g.pop(CSRF_FIELD, None)
        if had_token:
            setattr(g, CSRF_FIELD, token)


def cached_view(view: Callable) -> Callable:
    """For views whose page holds nothing personal but the header (the catalog): a signed-in person's page is
    the skeleton for this address and language, filled with their header values; the view runs only on a miss.
    Only a 200 HTML page is kept; any other answer is passed on with its markers filled."""
    from functools import wraps

    @wraps(view)
    def wrapper(*args, **kwargs):
        frame = _frame_key()
        if frame is None:
            return view(*args, **kwargs)
        full_key = ("skeleton-view", request.endpoint, *frame)
        html = contentcache.page_get(full_key)
        if html is not None:
            if request.environ.get(LANE_WANTS):
                _offer_to_lane(html, {})
            return fill(html, {})
        response = None

        def render() -> str:
            nonlocal response
            response = current_app.make_response(view(*args, **kwargs))
            return "" if response.direct_passthrough else response.get_data(as_text=True)

        html = _render_skeleton(render)
        if response.direct_passthrough:
            return response
        if response.status_code == 200 and response.mimetype == "text/html":
            personal = [str(escape(part)) for part in (current_user.name, current_user.email) if part]
            if not any(part in html for part in personal):
                contentcache.page_put(full_key, html)
                if request.environ.get(LANE_WANTS):
                    _offer_to_lane(html, {})
        response.set_data(str(fill(html, {})))
        return response

    return wrapper
