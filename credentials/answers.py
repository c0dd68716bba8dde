"""The verification fast path: what /verify/<id> and /api/v1/certificates/<id> answer, from one narrow SELECT.

Employers check certificates far more often than certificates change. A check reads the certificate with one
Core SELECT of the columns an answer can show (no ORM objects, no signed copy or PDF bookkeeping), and the
answer itself (the JSON bytes, or the page an anonymous visitor gets) is kept per app process under a key made
of that row and the status it has now. Whatever changes a certificate (revocation, reinstatement, suspension,
reissue, name correction, renewal, expiry passing) changes its row or its status and so the key: every app
server answers from the database's current state on the very next request, with nothing to invalidate.

Program certificates (their answer also shows each stacked course certificate's status) and visitors with a
session or remember-me cookie (their page shows their own navigation and forms) take the full path in views.py.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_percent as babel_format_percent
from flask import Flask, current_app, render_template, request
from flask_babel import format_percent, get_locale, get_timezone
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import JSON, Row, Text, bindparam, cast, select

from core.extensions import db
from courses.models import Course
from credentials.ids import format_public_id
from credentials.models import Certificate

# what no answer shows (or what changes without changing an answer: the counter's columns): left out of the
# SELECT so the row, and with it the cache key, stays small and stable
NOT_SHOWN = frozenset(
    {
        "user_id",
        "enrollment_id",
        "revocation_note",
        "pdf_path",
        "pdf_sha256",
        "pdf_rendered_at",
        "pdf_stamp",
        "subject_salt",
        "signed_credential",
        "signed_revision",
        "verification_count",
        "last_verified_at",
    }
)
JSON_COLUMNS = frozenset(c.name for c in Certificate.__table__.c if isinstance(c.type, JSON))


def _columns():
    # every other column, so a column added later (a suspension, say) reaches status_at and the templates without
    # a change here; JSON columns come as their text, which is hashable and parsed only when an answer is built
    table = Certificate.__table__
    return [cast(c, Text).label(c.name) if c.name in JSON_COLUMNS else c for c in table.c if c.name not in NOT_SHOWN]


FACTS_QUERY = select(*_columns()).where(Certificate.__table__.c.public_id == bindparam("public_id"))
# the page also says how long the course takes ("about 2 hours of study"): the same SELECT, joined on the key
PAGE_QUERY = (
    select(*_columns(), Course.__table__.c.estimated_minutes.label("course_estimated_minutes"))
    .select_from(Certificate.__table__)
    .outerjoin(Course.__table__, Course.__table__.c.id == Certificate.__table__.c.course_id)
    .where(Certificate.__table__.c.public_id == bindparam("public_id"))
)

# a signed-in viewer's page: also who holds the certificate (the last column), since their page is kept apart
SIGNED_PAGE_QUERY = PAGE_QUERY.add_columns(Certificate.__table__.c.user_id.label("holder_id"))


def find(canonical_id: str, *, page: bool = False, holder: bool = False) -> Row | None:
    """The certificate's row (see ``NOT_SHOWN``; ``holder``: the page's, then the holder's user id), or None: one
    indexed SELECT on a pooled connection, no write."""
    query = SIGNED_PAGE_QUERY if holder else PAGE_QUERY if page else FACTS_QUERY
    with db.engine.connect() as connection:
        return connection.execute(query, {"public_id": canonical_id}).first()


def status_of(row: Row, now: datetime):
    """The certificate's status now, by the model's own rule (a Row has the attributes it reads)."""
    return Certificate.status_at(row, now)


@dataclass(frozen=True)
class _CourseFacts:
    estimated_minutes: int | None


class CertificateView:
    """A certificate's row read like a ``Certificate`` by the presenters and templates (columns, ``status_at``,
    ``is_program``, ``course.estimated_minutes``); the JSON columns parsed."""

    status_at = Certificate.status_at
    suspended_at_time = Certificate.suspended_at_time
    is_program = Certificate.is_program

    def __init__(self, row: Row) -> None:
        values = dict(row._mapping)
        for name in JSON_COLUMNS:
            values[name] = json.loads(values[name]) if values.get(name) is not None else None
        minutes = values.pop("course_estimated_minutes", None)
        values["course"] = _CourseFacts(minutes) if values.get("course_id") is not None else None
        self.__dict__.update(values)


class _Kept:
    """A bounded map of built answers. The oldest entry goes first: keys of certificates that changed are never
    asked for again and age out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: dict = {}
        self.lock = threading.Lock()

    def get(self, key):
        return self.items.get(key)

    def put(self, key, value) -> None:
        if self.size <= 0:
            return
        with self.lock:
            while len(self.items) >= self.size:
                del self.items[next(iter(self.items))]
            self.items[key] = value


def _kept(app: Flask, name: str) -> _Kept:
    kept = app.extensions.get(name)
    if kept is None:
        kept = app.extensions.setdefault(name, _Kept(app.config["VERIFY_CACHE_SIZE"]))
    return kept


def kept_facts(app: Flask, row: Row, now: datetime) -> bytes | None:
    """The kept JSON facts of this row as it stands now, or None (credentials/lane.py asks without a request)."""
    kept = app.extensions.get("verify_facts")
    return kept.get((row, status_of(row, now))) if kept is not None else None


def facts_body(row: Row, now: datetime) -> bytes:
    """The JSON facts of a course certificate (``presenters.public_facts``) as ``jsonify`` writes them."""
    from credentials.presenters import public_facts

    app = current_app._get_current_object()
    key = (row, status_of(row, now))
    body = _kept(app, "verify_facts").get(key)
    if body is None:
        body = app.json.response(public_facts(CertificateView(row), now)).get_data()
        _kept(app, "verify_facts").put(key, body)
    return body


def page_is_shared() -> bool:
    """Whether this visitor gets the page every anonymous visitor gets: no session, no remember-me cookie (a
    signed-in person's page has their navigation, their organizations' forms and their flashed messages)."""
    cookies = request.cookies
    cfg = current_app.config
    return cfg["VERIFY_CACHE_SIZE"] > 0 and not (
        cfg["SESSION_COOKIE_NAME"] in cookies or cfg.get("REMEMBER_COOKIE_NAME", "remember_token") in cookies
    )


def checked_tag(now: datetime, locale=None, zone=None) -> str:
    """``core.i18n.time_tag(now, "long", with_time=True)``: the page's "Checked …" time, its words formatted
    once per second, language and time zone (this request's, or those given)."""
    if locale is None:
        locale, zone = get_locale(), get_timezone()
    key = (str(locale), str(zone), now.replace(microsecond=0))
    words = _CHECKED_WORDS.get(key)
    if words is None:
        words = str(Markup.escape(babel_format_datetime(now, "long", tzinfo=zone, locale=locale)))
        if len(_CHECKED_WORDS) > 64:
            _CHECKED_WORDS.clear()
        _CHECKED_WORDS[key] = words
    return f'<time datetime="{now.isoformat()}">{words}</time>'


_CHECKED_WORDS: dict = {}


def page_key(row: Row, status, language: str, url: str) -> tuple:
    return (row, status, language, url)


def kept_page(app: Flask, row: Row, now: datetime, language: str, url: str) -> str | None:
    """The anonymous page of this row as it stands now, in ``language`` at ``url``: kept, or filled in from the
    drawing of its shape; None when there is neither (credentials/lane.py asks without a request)."""
    status = status_of(row, now)
    key = page_key(row, status, language, url)
    pages = app.extensions.get("verify_pages")
    kept = pages.get(key) if pages is not None else None
    if kept is None:
        kept = _from_drawing(app, row, status, now, language, url, key)
        if kept is None:
            return None
    before, after, locale, zone = kept
    return before + checked_tag(now, locale, zone) + after


def page_body(row: Row, now: datetime, render) -> str:
    """The verify page of a course certificate for an anonymous visitor. ``render(certificate, status)`` draws it
    (views.py owns the template's arguments); the drawn page is kept with its "Checked …" time cut out, per
    certificate state, language and address (the path holds the ID as shown; the language links and ``hreflang``
    alternates hold the URL). A certificate whose shape was drawn before is filled in instead of drawn."""
    from core.i18n import time_tag

    status = status_of(row, now)
    app = current_app._get_current_object()
    locale, zone = get_locale(), get_timezone()
    url = request.url
    key = page_key(row, status, str(locale), url)
    kept = _kept(app, "verify_pages").get(key) or _from_drawing(app, row, status, now, str(locale), url, key)
    if kept is not None:
        return kept[0] + checked_tag(now, locale, zone) + kept[1]
    html = render(CertificateView(row), status)
    checked = str(time_tag(now, "long", with_time=True))
    if html.count(checked) == 1 and checked == checked_tag(now, locale, zone):
        before, after = html.split(checked)
        _kept(app, "verify_pages").put(key, (before, after, locale, zone))
        shape = _shape(row, status, str(locale), url)
        if shape is not None and _kept(app, "verify_drawings").get(shape) is None:
            drawing = _draw(row, status, now, render, html, locale, zone)
            if drawing is not None:
                _kept(app, "verify_drawings").put(shape, drawing)
    return html


# ---- a certificate's first page: drawn once per shape, filled in per certificate ---------------------------
#
# The first page of a certificate in this process is not drawn by the template when another certificate of the
# same shape was: same course snapshot (title, version, skills, goals, language, issuer), status, revocation
# reason, which dates the page shows, page language and address. That certificate's page was drawn a second time
# with markers where the values of one certificate go (its ID, the holder's name, the score, the dates, the
# revision in the preview image's address), and those are filled in, escaped as the template escapes them. A
# drawing is kept only if filling it with the values of the certificate it was drawn for gives exactly the page
# the template drew for it; any other column the template might read fails the drawing (``_Unshown``).

MARK = "\x00"  # splits a drawing into text and the names of the values to fill in (no page holds a NUL)
HOLDER = "zqzHOLDERzqz"  # letters only: unchanged by HTML escaping and by URL quoting
REVISION = "zqzREVISIONzqz"
# the columns a drawing is keyed by (as they are), and the ones it is filled with
SHAPE = (
    "course_id",
    "course_title",
    "course_slug",
    "course_version",
    "language",
    "skills",
    "goals",
    "issuer_name",
    "revocation_reason",
    "program_id",
    "course_estimated_minutes",
)
FILLED = ("public_id", "holder_name", "revision", "score", "awarded_at", "issued_at", "expires_at", "revoked_at")


class _Refusing:
    def _refuse(self, *args, **kwargs):
        raise LookupError("the verify page read a value a drawing does not hold")


class _Unshown(_Refusing):
    """A column outside the drawing's shape: any use of it while drawing fails the drawing (nothing is kept)."""

    __str__ = __bool__ = __eq__ = __hash__ = __iter__ = __html__ = __getattr__ = _Refusing._refuse


class _Day(datetime):
    """A marker date: formatted (then found and replaced), never compared (a comparison would hold for the
    marker, not for the certificate filled in)."""

    __lt__ = __le__ = __gt__ = __ge__ = _Refusing._refuse


class _Score(int):
    __lt__ = __le__ = __gt__ = __ge__ = _Refusing._refuse


SCORE = _Score(87654321)  # formats to a percentage no certificate has
DATES = {
    "awarded_at": _Day(1901, 2, 3, 4, 5, 6),
    "issued_at": _Day(1902, 3, 4, 5, 6, 7),
    "expires_at": _Day(1903, 4, 5, 6, 7, 8),
    "revoked_at": _Day(1904, 5, 6, 7, 8, 9),
    "suspended_until": _Day(1905, 6, 7, 8, 9, 10),
}
_UNSHOWN = _Unshown()


class _Drawn(CertificateView):
    """The row as a drawing sees it: the shape's columns, markers for the filled ones, every other column refused."""

    def __init__(self, row: Row, status) -> None:
        super().__init__(row)
        for name in list(self.__dict__):
            if name not in SHAPE and name not in ("public_id", "course"):
                self.__dict__[name] = _UNSHOWN
        self.holder_name, self.revision, self.score = HOLDER, REVISION, SCORE
        for name, marker in DATES.items():
            self.__dict__[name] = None if getattr(row, name) is None else marker
        if row.issued_at.date() == row.awarded_at.date():
            self.issued_at = self.awarded_at  # the page says "Last reissued" only when the days differ
        self._status = status

    def status_at(self, now: datetime):
        return self._status


def _shape(row: Row, status, language: str, url: str) -> tuple | None:
    """The drawing key of this row's page at ``url`` (None: a URL with a query string, which the page echoes)."""
    shown = format_public_id(row.public_id)
    if row.program_id is not None or not url.endswith("/" + shown):
        return None
    return (
        *(getattr(row, name) for name in SHAPE),
        *(getattr(row, name) is None for name in DATES),
        row.issued_at.date() == row.awarded_at.date(),
        status,
        language,
        url[: -len(shown)],
    )


def _draw(row: Row, status, now: datetime, render, html: str, locale, zone):
    """The drawing of this row's shape, or None when it cannot be made exact (logged)."""
    from core.i18n import time_tag

    shown = format_public_id(row.public_id)
    try:
        drawn = render(_Drawn(row, status), status)
    except LookupError as error:
        logging.getLogger(__name__).warning("verify page not drawn per shape: %s", error)
        return None
    if MARK in drawn:
        return None
    replaced = [
        (str(time_tag(now, "long", with_time=True)), "checked"),
        (shown, "public_id"),
        (HOLDER, "holder_name"),
        (REVISION, "revision"),
        (format_percent(SCORE / 100), "score"),  # as the template's percent filter and moments.what_was_earned
        *((str(time_tag(marker)), name) for name, marker in DATES.items()),
    ]
    for text, name in replaced:
        drawn = drawn.replace(text, f"{MARK}{name}{MARK}")
    parts = drawn.split(MARK)
    if parts.count("checked") != 1 or "zqz" in drawn or row.public_id in drawn:
        return None
    drawing = (parts, locale, zone)
    before, after = fill(drawing, row)
    if before + str(time_tag(now, "long", with_time=True)) + after != html:
        logging.getLogger(__name__).warning("verify page not drawn per shape: the drawing did not give the page")
        return None
    return drawing


def _date_tag(value: datetime, locale) -> str:
    """``core.i18n.time_tag(value)`` (a date in the long format) without a request."""
    day = value.date()
    return f'<time datetime="{day.isoformat()}">{escape(babel_format_date(day, "long", locale=locale))}</time>'


def fill(drawing, row: Row) -> tuple[str, str]:
    """The page of ``row`` from a drawing of its shape: (what comes before the "Checked …" time, what after)."""
    parts, locale, _zone = drawing
    values = {
        "public_id": format_public_id(row.public_id),
        "holder_name": str(escape(row.holder_name)),
        "revision": str(row.revision),
        "score": str(escape(babel_format_percent(row.score / 100, locale=locale))),
    }
    done: list[str] = []
    out: list[str] = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            out.append(part)
        elif part == "checked":
            done, out = out, []
        elif part in DATES:
            out.append(_date_tag(getattr(row, part), locale))
        else:
            out.append(values[part])
    return "".join(done), "".join(out)


def _from_drawing(app: Flask, row: Row, status, now: datetime, language: str, url: str, key: tuple):
    """The page of ``row`` filled in from the drawing of its shape, kept under ``key``; None without a drawing."""
    drawings = app.extensions.get("verify_drawings")
    shape = _shape(row, status, language, url) if drawings is not None else None
    drawing = drawings.get(shape) if shape is not None else None
    if drawing is None:
        return None
    before, after = fill(drawing, row)
    kept = (before, after, drawing[1], drawing[2])
    _kept(app, "verify_pages").put(key, kept)
    return kept


def render_page(**context) -> str:
    return render_template("credentials/verify_result.html", **context)


# ---- a signed-in viewer's page ------------------------------------------------------------------------------

# set when the signed-in lane (courses/lane.py) asked for this request's page: what the page followed (the row as
# SIGNED_PAGE_QUERY reads it but the holder, its status, whether the viewer holds it) and the locale and zone its
# values were written in
SIGNED_IN_STATE = "awa.verify_signed_in"
# the markers of a signed-in page's skeleton: a certificate's values (as a drawing's) and the "Checked …" time
PAGE_MARKS = frozenset({"checked", *FILLED, *DATES})


class _NotKept(Exception):
    """The page could not be drawn per shape: it is not made a skeleton."""


def page_values(row, locale) -> dict[str, str]:
    """The escaped values a drawing of ``row``'s shape is filled with (``fill``), by marker name."""
    values = {
        "public_id": format_public_id(row.public_id),
        "holder_name": str(escape(row.holder_name)),
        "revision": str(row.revision),
        "score": str(escape(babel_format_percent(row.score / 100, locale=locale))),
    }
    for name in DATES:
        day = getattr(row, name)
        if day is not None:
            values[name] = _date_tag(day, locale)
    return values


def signed_in_page(row: Row, now: datetime, render) -> str:
    """The verify page of a course certificate for a signed-in viewer, ``row`` read by SIGNED_PAGE_QUERY.
    ``render(certificate, status)`` draws it. The page is kept (core/skeleton.py: only for a viewer whose header
    may be kept, never holding their name or email) as the drawing of the certificate's shape (see below:
    course snapshot, status, which dates it shows, language, address but the ID) and whether the viewer holds it,
    with markers for the header's values, the certificate's values and the "Checked …" time; each request fills
    them in, so a certificate's first page is not drawn again when one of its shape was. Raises what ``render``
    raises."""
    from core import skeleton
    from core.i18n import time_tag

    status = status_of(row, now)
    view = CertificateView(row)
    locale, zone = get_locale(), get_timezone()
    shape = _shape(row, status, str(locale), request.url)  # None: a query string (which the page echoes)
    if shape is None:
        return render(view, status)
    holder = row.holder_id == current_user.id
    checked = str(time_tag(now, "long", with_time=True))
    fills = {name: Markup(value) for name, value in page_values(row, locale).items()}  # noqa: S704 (escaped)
    fills["checked"] = Markup(checked)  # noqa: S704  (the template's own time tag)

    def draw() -> str:
        html = render(view, status)
        drawing = _draw(row, status, now, render, html, locale, zone) if checked == checked_tag(now) else None
        if drawing is None:
            raise _NotKept
        return "".join(part if n % 2 == 0 else str(skeleton.mark(part)) for n, part in enumerate(drawing[0]))

    shown = format_public_id(row.public_id)
    try:
        page = skeleton.page(
            ("verify", shape, holder),
            draw,
            fills,
            path=request.path[: -len(shown)],
            full=lambda: render(view, status),
            lane_marks=PAGE_MARKS,
        )
    except _NotKept:
        return render(view, status)
    if request.environ.get(skeleton.LANE_WANTS):
        request.environ[SIGNED_IN_STATE] = (tuple(row)[:-1], status, holder, locale, zone)
    return page
