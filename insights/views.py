"""Employers' candidate lists; learning-record export and forwarding (admins)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import click
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length, Optional

from accounts.models import Role
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from core.permissions import roles_required
from credentials.ids import format_public_id, normalize_public_id
from credentials.services import csv_safe, lookup
from insights import services, xapi

bp = Blueprint("insights", __name__, cli_group="insights")
EMPLOYERS = (Role.EMPLOYER.value, Role.ADMIN.value)


class SaveCandidateForm(FlaskForm):
    certificate_id = HiddenField(validators=[DataRequired(), Length(max=64)])
    note = StringField("Note (e.g. the role they applied for)", validators=[Optional(), Length(max=200)])


class RemoveForm(FlaskForm):
    pass


@bp.post("/employer/candidates")
@roles_required(*EMPLOYERS)
def save_candidate():
    form = SaveCandidateForm()
    public_id = normalize_public_id(form.certificate_id.data) if form.validate_on_submit() else None
    certificate = lookup(public_id) if public_id else None
    if certificate is None:
        abort(404)
    _, created = services.save_candidate(current_user, certificate, note=form.note.data or "", now=utcnow())
    db.session.commit()
    flash("Added to your candidates." if created else "Already on your candidates list.", "success")
    return redirect(url_for("insights.candidates"), 303)


@bp.get("/employer/candidates")
@roles_required(*EMPLOYERS)
def candidates():
    rows = services.candidates(current_user, now=utcnow())
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["certificate_id", "status", "holder_name", "course", "expires", "note", "added"])
        for row, status in rows:
            c = row.certificate
            writer.writerow(
                [
                    csv_safe(v)
                    for v in (
                        format_public_id(c.public_id),
                        status,
                        c.holder_name,
                        c.course_title,
                        c.expires_at.date().isoformat() if c.expires_at else "",
                        row.note,
                        row.added_at.date().isoformat(),
                    )
                ]
            )
        response = Response(out.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="candidates.csv"'
        return response
    return render_template("insights/candidates.html", rows=rows, fmt=format_public_id, form=RemoveForm())


@bp.post("/employer/candidates/<int:row_id>/remove")
@roles_required(*EMPLOYERS)
def remove_candidate(row_id: int):
    if not RemoveForm().validate_on_submit():
        abort(400)
    try:
        services.remove_candidate(current_user, row_id)
    except DomainError:
        abort(404)
    db.session.commit()
    flash("Removed from your list.", "success")
    return redirect(url_for("insights.candidates"), 303)


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


def _report(start: datetime, end: datetime, window: int):
    from insights import reports

    return reports.build(start, end, window_days=window, now=utcnow())


def _period() -> tuple[datetime, datetime, int]:
    now = utcnow()
    end = _day(request.args.get("to"), (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0))
    start = _day(request.args.get("from"), _days_before(end, 90))
    window = request.args.get("window", 180, type=int)
    if start >= end or not 1 <= window <= 3650:
        abort(400)
    return start, end, window


@bp.get("/admin/insights/charts/<kind>.svg")
@roles_required(Role.ADMIN.value)
def chart(kind: str):
    from insights.charts import CHARTS, chart_svg

    if kind not in CHARTS:
        abort(404)
    start, end, window = _period()
    rows = _report(start, end, window).tables()[kind]
    response = Response(chart_svg(kind, rows), mimetype="image/svg+xml")
    # an image: styles inline in the SVG are fine, scripts and everything else are not
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.get("/admin/insights")
@roles_required(Role.ADMIN.value)
def dashboard():
    from insights import reports

    start, end, window = _period()
    report = _report(start, end, window)
    tables = report.tables()
    table = request.args.get("table")
    if request.args.get("format") == "csv":
        if table not in tables:
            abort(400)
        rows = tables[table]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(list(rows[0]) if rows else ["no rows"])
        for row in rows:
            writer.writerow([csv_safe(v) for v in row.values()])
        response = Response(out.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{table}-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
        return response
    return render_template(
        "insights/dashboard.html",
        overview=report.overall,
        tables=tables,
        start=start,
        end=end,
        window=window,
        quizzes=reports.quizzes(),
    )


@bp.get("/admin/insights/quizzes/<int:quiz_id>")
@roles_required(Role.ADMIN.value)
def item_analysis(quiz_id: int):
    from courses.models import Quiz
    from insights import reports

    quiz = db.get_or_404(Quiz, quiz_id)
    return render_template("insights/items.html", quiz=quiz, rows=reports.item_analysis(quiz_id))


@bp.get("/admin/xapi.jsonl")
@roles_required(Role.ADMIN.value)
def export_xapi():
    """Statements for [from, to) as JSON lines, streamed (dates as YYYY-MM-DD, UTC)."""
    end = _day(request.args.get("to"), utcnow() + timedelta(days=1))
    start = _day(request.args.get("from"), _days_before(end, 30))
    if start >= end or end - start > timedelta(days=3660):
        abort(400)
    response = Response(stream_with_context(xapi.export_lines(start, end)), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = f'attachment; filename="xapi-{start:%Y%m%d}-{end:%Y%m%d}.jsonl"'
    return response


@bp.cli.command("xapi-forward")
@click.option("--batch", type=click.IntRange(1, 100_000), default=500, show_default=True)
def forward_command(batch: int) -> None:
    """Send unsent xAPI statements to the configured LRS (retries; never sends one twice)."""
    cfg = current_app.config
    if not cfg.get("XAPI_LRS_ENDPOINT"):
        raise click.ClickException("Set FLASK_XAPI_LRS_ENDPOINT (and _USERNAME, _PASSWORD) first.")
    sent, failed = xapi.forward(
        endpoint=cfg["XAPI_LRS_ENDPOINT"],
        username=cfg.get("XAPI_LRS_USERNAME") or "",
        password=cfg.get("XAPI_LRS_PASSWORD") or "",
        now=utcnow,
        batch=batch,
    )
    click.echo(f"Sent {sent} statements; {failed} failed and will be retried next run.")
    if failed:
        raise SystemExit(1)
