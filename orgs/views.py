"""Organization pages: the "for employers and programs" page, creation and email verification, the admin queue,
the organization home, its shared candidate list and bulk verification. Cohorts are in cohort_views.py.

Views: load → authorize → validate → service → commit → redirect; mail goes out after the commit.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from accounts.permissions import authorize, permission_required
from core.csv import csv_response
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import db, limiter
from core.forms import ButtonForm
from core.mail import send_mail
from credentials import bulk
from credentials.forms import BulkVerifyForm
from credentials.ids import format_public_id, normalize_public_id
from credentials.services import lookup
from orgs import permissions, services
from orgs.forms import CreateOrgForm, DecisionForm, DomainForm, SaveCandidateForm, StaffForm
from orgs.models import AutoApproveDomain, Cohort, CohortMember, Membership, Organization, OrgKind, OrgRole, OrgStatus

bp = Blueprint("orgs", __name__, cli_group="orgs")


def limit(key: str, default: str):
    """A POST rate limit read from config at request time (FLASK_RATELIMIT_… overrides the default)."""
    return limiter.limit(lambda: current_app.config.get(key, default), methods=["POST"])


def my_memberships() -> list[Membership]:
    """The current user's memberships, loaded once per request (the navigation asks on every page); no query
    at all when the session's user came with ``has_memberships`` false (orgs/services.py)."""
    if "org_memberships" not in g:
        user = current_user._get_current_object()
        g.org_memberships = [] if getattr(user, "has_memberships", None) is False else services.memberships_of(user)
    return g.org_memberships


@bp.app_context_processor
def _template_helpers():
    return {
        "my_memberships": my_memberships,
        "can_bulk_verify": lambda user=None: permissions.can_bulk_verify(current_user, my_memberships()),
        "can_manage_org": permissions.can_manage_org,
    }


def load_org(slug: str) -> tuple[Organization, Membership]:
    """The organization and the current user's membership; 404 for strangers (no hint that it exists)."""
    org = db.first_or_404(select(Organization).where(Organization.slug == slug))
    membership = next((m for m in my_memberships() if m.organization_id == org.id), None)
    authorize(permissions.can_see_org(membership), hide=True)
    return org, membership


def send_verification(org: Organization) -> None:
    link = url_for("orgs.verify_email", token=services.email_verification_token(org), _external=True)
    site = current_app.config["ISSUER_NAME"]
    # the person who created the organization is the one reading it: their language is the request's
    send_mail(
        org.contact_email,
        _("Confirm %(org)s on %(site)s", org=org.name, site=site),
        _(
            "Someone (we hope you) asked to register %(org)s on %(site)s with this address.\n\n"
            "To confirm that this is your work email, open this link within 3 days:\n\n%(link)s\n\n"
            "If this was not you, ignore this message; nothing happens without this link.\n",
            org=org.name,
            site=site,
            link=link,
        ),
    )


# ---- for employers and programs ------------------------------------------------------------------------------


@bp.get("/organizations")
def about():
    return render_template("orgs/about.html", kinds=list(OrgKind))


@bp.route("/organizations/new", methods=["GET", "POST"])
@login_required
@limit("RATELIMIT_ORG_CREATE", "5 per hour")
def create():
    form = CreateOrgForm()
    if form.validate_on_submit():
        try:
            org = services.create_organization(
                current_user,
                name=form.name.data,
                kind=OrgKind(form.kind.data),
                website=form.website.data or "",
                contact_email=form.contact_email.data,
                now=utcnow(),
            )
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            send_verification(org)
            flash(_("We sent a link to %(email)s. Open it to confirm the address.", email=org.contact_email), "success")
            return redirect(url_for("orgs.home", slug=org.slug), 303)
    return render_template("orgs/create.html", form=form), 422 if form.errors or form.form_errors else 200


@bp.get("/organizations/verify/<token>")
@limiter.limit(lambda: current_app.config.get("RATELIMIT_ORG_JOIN", "30 per minute; 200 per hour"))
def verify_email(token: str):
    try:
        org = services.verify_email(token[:1000], now=utcnow())
    except DomainError as error:
        db.session.rollback()
        return render_template("orgs/message.html", title=_("Link not valid"), message=error.message), 400
    db.session.commit()
    if org.is_approved:
        message = _("The email address of %(org)s is confirmed and the organization is approved.", org=org.name)
    else:
        message = _(
            "The email address of %(org)s is confirmed. A site administrator will review the organization; "
            "until then you can verify certificates one at a time like anyone.",
            org=org.name,
        )
    return render_template("orgs/message.html", title=_("Email confirmed"), message=message, org=org)


@bp.post("/organizations/<slug>/resend")
@login_required
@limit("RATELIMIT_ORG_CREATE", "5 per hour")
def resend(slug: str):
    org, membership = load_org(slug)
    authorize(permissions.can_resend_verification(membership))
    if not ButtonForm().validate_on_submit():
        abort(400)
    if org.email_verified_at is None:
        send_verification(org)
        flash(_("We sent a new link to %(email)s.", email=org.contact_email), "success")
    return redirect(url_for("orgs.home", slug=org.slug), 303)


@bp.get("/organizations/<slug>")
@login_required
def home(slug: str):
    org, membership = load_org(slug)
    cohorts, archived_count = [], 0
    show_archived = request.args.get("archived") == "1"
    if permissions.can_use_org(org, membership):
        counts = (
            select(CohortMember.cohort_id, func.count().label("n"))
            .where(CohortMember.left_at.is_(None))
            .group_by(CohortMember.cohort_id)
            .subquery()
        )
        cohorts = db.session.execute(
            select(Cohort, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.cohort_id == Cohort.id)
            .where(
                Cohort.organization_id == org.id,
                Cohort.archived_at.is_not(None) if show_archived else Cohort.archived_at.is_(None),
            )
            .order_by(Cohort.created_at.desc(), Cohort.id.desc())
        ).all()
        # archived cohorts leave the default list; a link shows them
        archived_count = db.session.scalar(
            select(func.count()).where(Cohort.organization_id == org.id, Cohort.archived_at.is_not(None))
        )
    staff = db.session.scalars(
        select(Membership)
        .where(Membership.organization_id == org.id)
        .options(selectinload(Membership.user))
        .order_by(Membership.id)
    ).all()
    return render_template(
        "orgs/home.html",
        org=org,
        membership=membership,
        cohorts=cohorts,
        show_archived=show_archived,
        archived_count=archived_count,
        staff=staff,
        can_manage=permissions.can_manage_org(org, membership),
        can_use=permissions.can_use_org(org, membership),
        can_manage_staff=permissions.can_manage_staff(org, membership),
        can_resend=permissions.can_resend_verification(membership),
        staff_form=StaffForm(),
        form=ButtonForm(),
    )


@bp.post("/organizations/<slug>/staff")
@login_required
@limit("RATELIMIT_ORG_INVITE", "60 per hour")
def add_staff(slug: str):
    org, membership = load_org(slug)
    authorize(permissions.can_manage_staff(org, membership))
    form = StaffForm()
    if form.validate_on_submit():
        try:
            added = services.add_staff(
                current_user, org, email=form.email.data, role=OrgRole(form.role.data), now=utcnow()
            )
        except DomainError as error:
            db.session.rollback()
            flash(error.message, "error")
        else:
            db.session.commit()
            flash(
                {
                    OrgRole.OWNER: _("%(name)s is now an owner of %(org)s."),
                    OrgRole.MANAGER: _("%(name)s is now a manager of %(org)s."),
                    OrgRole.VIEWER: _("%(name)s is now a viewer of %(org)s."),
                }[added.role]
                % {"name": added.user.name, "org": org.name},
                "success",
            )
    else:
        flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
    return redirect(url_for("orgs.home", slug=org.slug), 303)


@bp.post("/organizations/<slug>/staff/<int:membership_id>/remove")
@login_required
def remove_staff(slug: str, membership_id: int):
    org, membership = load_org(slug)
    authorize(permissions.can_manage_staff(org, membership))
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.remove_staff(current_user, org, membership_id)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        db.session.commit()
        flash(_("Removed from the staff."), "success")
    return redirect(url_for("orgs.home", slug=org.slug), 303)


# ---- candidates (shared by the organization's staff) ---------------------------------------------------------


@bp.get("/organizations/<slug>/candidates")
@login_required
def candidates(slug: str):
    org, membership = load_org(slug)
    authorize(permissions.can_use_org(org, membership))
    rows = services.candidates(org, now=utcnow())
    if request.args.get("format") == "csv":
        return csv_response(
            f"candidates-{org.slug}.csv",
            ["certificate_id", "status", "holder_name", "course", "expires", "note", "added", "added_by"],
            (
                (
                    format_public_id(row.certificate.public_id),
                    status,
                    row.certificate.holder_name,
                    row.certificate.course_title,
                    row.certificate.expires_at.date().isoformat() if row.certificate.expires_at else "",
                    row.note,
                    row.added_at.date().isoformat(),
                    row.added_by.name if row.added_by else "",
                )
                for row, status in rows
            ),
        )
    return render_template(
        "orgs/candidates.html",
        org=org,
        rows=rows,
        fmt=format_public_id,
        form=ButtonForm(),
        can_manage=permissions.can_manage_org(org, membership),
    )


@bp.post("/organizations/<slug>/candidates")
@login_required
def save_candidate(slug: str):
    org, membership = load_org(slug)
    authorize(permissions.can_manage_org(org, membership))
    form = SaveCandidateForm()
    public_id = normalize_public_id(form.certificate_id.data) if form.validate_on_submit() else None
    certificate = lookup(public_id) if public_id else None
    if certificate is None:
        abort(404)
    _row, created = services.save_candidate(current_user, org, certificate, note=form.note.data or "", now=utcnow())
    db.session.commit()
    flash(
        _("Added to %(org)s’s candidates.", org=org.name) if created else _("Already on the candidates list."),
        "success",
    )
    return redirect(url_for("orgs.candidates", slug=org.slug), 303)


@bp.post("/organizations/<slug>/candidates/<int:row_id>/remove")
@login_required
def remove_candidate(slug: str, row_id: int):
    org, membership = load_org(slug)
    authorize(permissions.can_manage_org(org, membership))
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.remove_candidate(org, row_id)
    except DomainError:
        abort(404)
    db.session.commit()
    flash(_("Removed from the list."), "success")
    return redirect(url_for("orgs.candidates", slug=org.slug), 303)


@bp.route("/verify/bulk", methods=["GET", "POST"])
@login_required
def bulk_verify():
    authorize(permissions.can_bulk_verify(current_user, my_memberships()))
    form = BulkVerifyForm()
    results = None
    status = 200
    if form.validate_on_submit():
        data = bulk.bulk_input(form, current_app.config["MAX_CONTENT_LENGTH"])
        try:
            if data is None:
                raise bulk.BulkError(_("Choose a CSV file to upload, or paste the IDs."))
            rows = bulk.parse_bulk_csv(data)
        except bulk.BulkError as error:
            form.file.errors = [error.message]
            status = 422
        else:
            now = utcnow()
            results = bulk.bulk_verify(rows, now=now)
            if form.download.data:
                return csv_response(f"verification-{now:%Y%m%d-%H%M}.csv", *bulk.bulk_table(results))
    elif form.errors:
        status = 422
    return render_template("credentials/bulk.html", form=form, results=results), status


# ---- site admins: the approval queue -------------------------------------------------------------------------


@bp.get("/admin/organizations")
@permission_required(permissions.can_manage_orgs)
def queue():
    orgs = db.session.scalars(
        select(Organization).order_by(
            (Organization.status == OrgStatus.PENDING).desc(), Organization.created_at.desc(), Organization.id.desc()
        )
    ).all()
    domains = db.session.scalars(select(AutoApproveDomain).order_by(AutoApproveDomain.domain)).all()
    return render_template(
        "orgs/queue.html",
        orgs=orgs,
        domains=domains,
        decision=DecisionForm(),
        domain_form=DomainForm(),
        form=ButtonForm(),
    )


@bp.post("/admin/organizations/<int:org_id>/decide")
@permission_required(permissions.can_manage_orgs)
def decide(org_id: int):
    org = db.get_or_404(Organization, org_id)
    form = DecisionForm()
    if not form.validate_on_submit() or not (form.approve.data or form.decline.data):
        abort(400)
    try:
        services.decide(current_user, org, approve=bool(form.approve.data), note=form.note.data or "", now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("orgs.queue"), 303)
    db.session.commit()
    flash((_("%(org)s is approved.") if org.is_approved else _("%(org)s is declined.")) % {"org": org.name}, "success")
    return redirect(url_for("orgs.queue"), 303)


@bp.post("/admin/organizations/domains")
@permission_required(permissions.can_manage_orgs)
def add_domain():
    form = DomainForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        row = services.add_auto_domain(current_user, form.domain.data, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("orgs.queue"), 303)
    db.session.commit()
    flash(_("Verified organizations on %(domain)s are now approved automatically.", domain=row.domain), "success")
    return redirect(url_for("orgs.queue"), 303)


@bp.post("/admin/organizations/domains/<int:domain_id>/remove")
@permission_required(permissions.can_manage_orgs)
def remove_domain(domain_id: int):
    row = db.get_or_404(AutoApproveDomain, domain_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    db.session.delete(row)
    db.session.commit()
    flash(_("%(domain)s removed.", domain=row.domain), "success")
    return redirect(url_for("orgs.queue"), 303)


from orgs import cli, cohort_views, receivers  # noqa: E402,F401  (routes, commands and receivers)
