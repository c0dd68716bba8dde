"""The workforce report of an organization: page with charts, CSV and JSON downloads, and `flask reports workforce`.

Members of an approved organization (owners, managers, viewers) see its report; everyone else gets a 404 (no hint
that it exists) or a 403. Thin views: load → authorize → read the period → report → render.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import click
from flask import Blueprint, Response, abort, render_template, request
from flask_login import login_required
from sqlalchemy import select

from accounts.permissions import authorize
from core.database import utcnow
from core.extensions import db
from courses.models import CourseStatus, Program
from insights import workforce
from orgs import permissions
from orgs.models import Cohort, Organization

bp = Blueprint("reports", __name__, cli_group="reports")
MAX_DAYS = 3 * 366


def _day(name: str, default: date) -> date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400)


def _scope(org: Organization):
    """The period, cohort and program the request asks for; 400 for nonsense, 404 for another org's cohort."""
    today = utcnow().date()
    end = _day("to", today)
    start = _day("from", end - timedelta(days=89))
    if end < start or (end - start).days > MAX_DAYS:
        abort(400)
    cohort = None
    if request.args.get("cohort"):
        cohort_id = request.args.get("cohort", type=int)
        cohort = db.session.get(Cohort, cohort_id) if cohort_id else None
        if cohort is None or cohort.organization_id != org.id:
            abort(404)
    program = None
    if request.args.get("program"):
        program = db.session.scalar(select(Program).where(Program.slug == request.args["program"]))
        if program is None or program.status is CourseStatus.DRAFT:
            abort(404)
    return start, end, cohort, program


def _load(slug: str) -> Organization:
    from orgs.views import load_org

    org, membership = load_org(slug)
    authorize(permissions.can_use_org(org, membership))
    return org


def _report(org: Organization, start: date, end: date, cohort, program) -> workforce.Report:
    """The report from the cache (insights/report_cache.py), stored for the next request when it was not there."""
    from insights.report_cache import cached_workforce_report

    report = cached_workforce_report(org, start=start, end=end, now=utcnow(), cohort=cohort, program=program)
    db.session.commit()
    return report


@bp.get("/organizations/<slug>/reports/workforce")
@login_required
def workforce_report(slug: str):
    org = _load(slug)
    start, end, cohort, program = _scope(org)
    fmt = request.args.get("format")
    name = f"workforce-{org.slug}-{start:%Y%m%d}-{end:%Y%m%d}"
    if fmt == "pirl":
        from insights import participants

        records = participants.participant_records(
            org, start=start, end=end, now=utcnow(), cohort=cohort, program=program
        )
        response = Response(participants.to_pirl_csv(records), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="participants-{name[10:]}.csv"'
        response.headers["Cache-Control"] = "private, no-store"  # names and emails
        return response
    report = _report(org, start, end, cohort, program)
    if fmt == "csv":
        response = Response(workforce.to_csv(report), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    if fmt == "json":
        response = Response(json.dumps(workforce.to_json(report), indent=2), mimetype="application/json")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response
    cohorts = list(db.session.scalars(select(Cohort).where(Cohort.organization_id == org.id).order_by(Cohort.name)))
    programs = list(
        db.session.scalars(select(Program).where(Program.status != CourseStatus.DRAFT).order_by(Program.title))
    )
    return render_template(
        "insights/workforce.html",
        org=org,
        report=report,
        cohorts=cohorts,
        programs=programs,
        cohort=cohort,
        program=program,
        columns=workforce.COLUMNS,
        args={k: v for k, v in request.args.items() if k in ("from", "to", "cohort", "program")},
    )


@bp.get("/organizations/<slug>/reports/workforce/<kind>.svg")
@login_required
def workforce_chart(slug: str, kind: str):
    from insights.charts import WORKFORCE_CHARTS, workforce_chart_svg

    org = _load(slug)
    if kind not in WORKFORCE_CHARTS:
        abort(404)
    start, end, cohort, program = _scope(org)
    report = _report(org, start, end, cohort, program)
    rows = report.rows["program"] if kind == "outcomes" else report.rows["course"]
    response = Response(workforce_chart_svg(kind, rows), mimetype="image/svg+xml")
    # an image: styles inline in the SVG are fine, scripts and everything else are not
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.cli.command("workforce")
@click.option("--org", "org_slug", required=True, help="The organization's slug.")
@click.option("--program", "program_slug", help="Only this program's courses.")
@click.option("--cohort", "cohort_id", type=int, help="Only this cohort's members (its id).")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day, YYYY-MM-DD.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option(
    "--per-participant",
    is_flag=True,
    help="One row per consenting participant (PIRL data elements we can fill) instead of the totals.",
)
def workforce_command(org_slug, program_slug, cohort_id, start, end, fmt, per_participant) -> None:
    """Print the workforce report of an organization (consenting members who have not left) for a period."""
    org = db.session.scalar(select(Organization).where(Organization.slug == org_slug))
    if org is None:
        raise click.ClickException(f"No organization with slug '{org_slug}'.")
    program = None
    if program_slug:
        program = db.session.scalar(select(Program).where(Program.slug == program_slug))
        if program is None:
            raise click.ClickException(f"No program with slug '{program_slug}'.")
    cohort = None
    if cohort_id is not None:
        cohort = db.session.get(Cohort, cohort_id)
        if cohort is None or cohort.organization_id != org.id:
            raise click.ClickException(f"Organization '{org_slug}' has no cohort {cohort_id}.")
    if end < start:
        raise click.ClickException("--to is before --from.")
    if per_participant:
        from insights import participants

        records = participants.participant_records(
            org, start=start.date(), end=end.date(), now=utcnow(), cohort=cohort, program=program
        )
        if fmt == "json":
            click.echo(json.dumps(records, indent=2))
        else:
            click.echo(participants.to_pirl_csv(records), nl=False)
        return
    report = workforce.workforce_report(
        org, start=start.date(), end=end.date(), now=utcnow(), cohort=cohort, program=program
    )
    if fmt == "json":
        click.echo(json.dumps(workforce.to_json(report), indent=2))
    else:
        click.echo(workforce.to_csv(report), nl=False)


@bp.cli.command("rebuild-learning-days")
def rebuild_learning_days_command() -> None:
    """Recompute the report's day rollup from every lesson completed and quiz attempt (after bulk SQL edits)."""
    from insights import learning_days
    from insights.report_cache import bump_all

    count = learning_days.rebuild()
    bump_all()  # bulk SQL went around the hooks that keep cached reports current
    db.session.commit()
    click.echo(f"learning_days rebuilt: {count} day rows.")
