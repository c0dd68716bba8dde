"""Insights and learning-record export (admins). Candidate lists live in orgs/; xapi-forward in cli.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from numbers import Number

from babel.numbers import format_decimal
from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    stream_with_context,
)
from flask_babel import get_locale
from markupsafe import Markup, escape

from accounts.permissions import permission_required
from core import contentcache
from core.csv import csv_response
from core.database import utcnow
from core.extensions import db
from insights import xapi
from insights.permissions import can_view_insights, can_view_learner_records

bp = Blueprint("insights", __name__)


def _day(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        abort(400)


def _days_before(end: datetime, days: int) -> datetime:
    try:
        return end - timedelta(days=days)
    except OverflowError:  # ?to=0001-01-01: there is no earlier period
        abort(400)


@lru_cache(maxsize=4096)
def _formatted(locale: str, value: int | float) -> str:
    """``value|numberformat`` in ``locale``, remembered: the dashboard's tables hold ~900 numbers, mostly the same
    few small ones, and Babel took ~0.15 ms for each."""
    return format_decimal(value, locale=locale)


def _table_rows(locale: str, rows: list[dict], fields: list[str]) -> Markup:
    """The dashboard tables' body rows, as the template wrote them cell by cell. Joined here, each row once per
    language and values: through a Jinja macro the ~1,100 cells cost more CPU than computing the report after a
    write, and a write changes the numbers of a few rows only (its course, the course's tags, all courses)."""
    return Markup("\n    ".join(_row(locale, tuple(row[f] for f in fields)) for row in rows))  # noqa: S704


@lru_cache(maxsize=8192)
def _row(locale: str, values: tuple) -> str:
    """One row: — for none, numbers in ``locale``, text escaped (as ``value|numberformat`` and autoescape would)."""
    return (
        "<tr>"
        + "".join(
            "<td>—</td>"
            if value is None
            else f"<td>{escape(_formatted(locale, value) if isinstance(value, Number) else value)}</td>"
            for value in values
        )
        + "</tr>"
    )


def _chart_data(kind: str, rows: list[dict]) -> tuple:
    """What a chart shows of its table: each row's label and the values of its series."""
    from insights.charts import CHARTS

    _title, label_key, series = CHARTS[kind]
    return tuple((row[label_key], *(row[key] for _name, key in series)) for row in rows)


@lru_cache(maxsize=64)
def _chart(kind: str, locale: str, data: tuple) -> str:
    """A chart's SVG, once per language and numbers (pygal takes ~20 ms of CPU for each): most writes change no
    number either chart shows (a learner's first activity of the day changes neither), so after one the page's
    charts are not drawn again."""
    from insights.charts import CHARTS, chart_svg

    _title, label_key, series = CHARTS[kind]
    keys = [label_key, *(key for _name, key in series)]
    return chart_svg(kind, [dict(zip(keys, values, strict=True)) for values in data])


def _quiz_list() -> Markup:
    from insights import reports

    return Markup(render_template("insights/_quiz_list.html", quizzes=reports.quizzes()))  # noqa: S704


def _entry(start: datetime, end: datetime, window: int):
    from insights import dashboard_cache

    # the page, its two charts and its CSVs ask for the same report: computed once per process until a write or
    # time changes it, and so is what is made from it
    return dashboard_cache.entry(start, end, window_days=window, now=utcnow())


def _period() -> tuple[datetime, datetime, int]:
    now = utcnow()
    end = _day(request.args.get("to"), (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0))
    start = _day(request.args.get("from"), _days_before(end, 90))
    window = request.args.get("window", 180, type=int)
    if start >= end or not 1 <= window <= 3650:
        abort(400)
    return start, end, window


@bp.get("/admin/insights/charts/<kind>.svg")
@permission_required(can_view_insights)
def chart(kind: str):
    from insights.charts import CHARTS

    if kind not in CHARTS:
        abort(404)
    start, end, window = _period()
    entry = _entry(start, end, window)
    tables = entry.remember(("tables",), entry.report.tables)
    locale = str(get_locale())
    svg = entry.remember(("chart", kind, locale), lambda: _chart(kind, locale, _chart_data(kind, tables[kind])))
    response = Response(svg, mimetype="image/svg+xml")
    # an image: styles inline in the SVG are fine, scripts and everything else are not
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.get("/admin/insights")
@permission_required(can_view_insights)
def dashboard():

    start, end, window = _period()
    entry = _entry(start, end, window)
    tables = entry.remember(("tables",), entry.report.tables)
    table = request.args.get("table")
    if request.args.get("format") == "csv":
        if table not in tables:
            abort(400)
        rows = tables[table]
        header = list(rows[0]) if rows else ["no rows"]
        filename = f"{table}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        return csv_response(filename, header, (row.values() for row in rows))
    locale = str(get_locale())
    # a rendered (autoescaped) template: Markup keeps the outer template from escaping it twice
    body = entry.remember(
        ("page", locale),
        lambda: Markup(  # noqa: S704
            render_template(
                "insights/_dashboard_body.html",
                overview=entry.report.overall,
                tables=tables,
                start=start,
                end=end,
                window=window,
                # links: keyed by the script root they start with (the same for every request of a deployment)
                quiz_list=contentcache.remember(("insights", "quiz-list", request.script_root), _quiz_list),
                table_rows=partial(_table_rows, locale),
            )
        ),
    )
    return render_template("insights/dashboard.html", body=body)


@bp.get("/admin/insights/quizzes/<int:quiz_id>")
@permission_required(can_view_insights)
def item_analysis(quiz_id: int):
    from courses.models import Quiz
    from insights import reports

    quiz = db.get_or_404(Quiz, quiz_id)
    return render_template("insights/items.html", quiz=quiz, rows=reports.item_analysis(quiz_id))


@bp.get("/admin/xapi.jsonl")
@permission_required(can_view_insights)
def export_xapi():
    """Statements for [from, to) as JSON lines, streamed (dates as YYYY-MM-DD, UTC)."""
    end = _day(request.args.get("to"), utcnow() + timedelta(days=1))
    start = _day(request.args.get("from"), _days_before(end, 30))
    if start >= end or end - start > timedelta(days=3660):
        abort(400)
    response = Response(stream_with_context(xapi.export_lines(start, end)), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = f'attachment; filename="xapi-{start:%Y%m%d}-{end:%Y%m%d}.jsonl"'
    return response


@bp.get("/admin/learners/<int:user_id>")
@permission_required(can_view_learner_records)
def learner(user_id: int):
    """One learner as an admin sees them: progress, quiz attempts, certificates and the audit trail."""
    from sqlalchemy import or_, select
    from sqlalchemy.orm import selectinload

    from accounts.models import User
    from core.audit import AuditEvent
    from courses.models import Enrollment, QuizAttempt
    from courses.services import dashboard
    from credentials.ids import format_public_id
    from credentials.models import Certificate

    user = db.get_or_404(User, user_id)
    now = utcnow()
    attempts = list(
        db.session.scalars(
            select(QuizAttempt)
            .join(Enrollment, Enrollment.id == QuizAttempt.enrollment_id)
            .where(Enrollment.user_id == user.id)
            .options(
                selectinload(QuizAttempt.quiz), selectinload(QuizAttempt.enrollment).selectinload(Enrollment.course)
            )
            .order_by(QuizAttempt.started_at.desc(), QuizAttempt.id.desc())
            .limit(200)
        )
    )
    certificates = list(
        db.session.scalars(
            select(Certificate).where(Certificate.user_id == user.id).order_by(Certificate.awarded_at.desc())
        )
    )
    public_ids = [c.public_id for c in certificates]
    audit = list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    (AuditEvent.target_type == "user") & (AuditEvent.target_id == str(user.id)),
                    AuditEvent.actor_id == user.id,
                    (AuditEvent.target_type == "certificate") & AuditEvent.target_id.in_(public_ids),
                )
            )
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(100)
        )
    )
    return render_template(
        "insights/learner.html",
        learner=user,
        rows=dashboard(user),
        attempts=attempts,
        certificates=certificates,
        audit=audit,
        now=now,
        fmt=format_public_id,
    )
