"""Cohorts: create, invite (email, link, code, roster), join with consent, leave, dashboard, member page, reminders."""

from __future__ import annotations

import contextlib

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, format_date, format_number, format_percent, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts.models import User
from accounts.permissions import authorize
from core.csv import csv_response
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import db, limiter
from core.forms import ButtonForm
from core.mail import send_mail
from credentials.ids import format_public_id
from orgs import dashboard, permissions, roster, services
from orgs.forms import (
    CohortForm,
    ConsentForm,
    InviteForm,
    JoinCodeForm,
    LinkForm,
    RosterConfirmForm,
    RosterForm,
)
from orgs.models import Cohort, CohortMember, Invitation, InvitationKind, Organization
from orgs.views import bp, limit, load_org

JOIN_LIMIT = ("RATELIMIT_ORG_JOIN", "30 per minute; 200 per hour")


def load_cohort(slug: str, cohort_id: int, *, manage: bool = False) -> tuple[Organization, Cohort]:
    """The cohort, only through an organization the user belongs to; another organization's cohort is a 404."""
    org, membership = load_org(slug)
    authorize(permissions.can_manage_org(org, membership) if manage else permissions.can_use_org(org, membership))
    cohort = db.session.scalar(
        select(Cohort)
        .where(Cohort.id == cohort_id, Cohort.organization_id == org.id)
        .options(selectinload(Cohort.courses))
    )
    if cohort is None:
        abort(404)
    return org, cohort


def invitation_mail(org: Organization, cohort: Cohort, invitation: Invitation, secret: str) -> None:
    with invitee_locale(invitation.email):
        _send_invitation(org, cohort, invitation, secret)


def _send_invitation(org: Organization, cohort: Cohort, invitation: Invitation, secret: str) -> None:
    link = url_for("orgs.join", token=secret, _external=True)
    greeting = _("Hello %(name)s,", name=invitation.name) if invitation.name else _("Hello,")
    body = _(
        "%(org)s invites you to join “%(cohort)s” on %(site)s, to take: %(courses)s.\n\n"
        "Open this link to see exactly what %(org)s would see of your progress, and to accept:\n\n%(link)s\n\n"
        "The link works once, for %(email)s, until %(date)s. If you do not have an account yet, you can create one "
        "from that page. If you do not want to join, ignore this message.\n",
        org=org.name,
        cohort=cohort.name,
        site=current_app.config["ISSUER_NAME"],
        courses=", ".join(c.title for c in cohort.courses),
        link=link,
        email=invitation.email,
        date=format_date(invitation.expires_at, "long"),
    )
    send_mail(
        invitation.email,
        _("%(org)s invites you to %(cohort)s", org=org.name, cohort=cohort.name),
        f"{greeting}\n\n{body}",
    )


def recipient_locale(user: User):
    """Mail to a learner goes out in the language they chose (English when they chose none, as other mail)."""
    return force_locale(user.locale or "en")


def invitee_locale(email: str):
    """An invitee with an account and a chosen language gets it; anyone else the inviting manager's language
    (the one they are reading as they send it: they know the people they invite)."""
    chosen = db.session.scalar(select(User.locale).where(User.email == email))
    return force_locale(chosen) if chosen else contextlib.nullcontext()


def reminder_mail(org: Organization, cohort: Cohort, row, link: str) -> tuple[str, str]:
    """Subject and text of a reminder to a member who is behind, in the current locale."""
    values = {
        "org": org.name,
        "cohort": cohort.name,
        "name": row.user.name,
        "percent": format_percent(row.percent / 100),
        "link": link,
    }
    if cohort.due_on:
        keep_going = _(
            "%(org)s asks you to keep going with “%(cohort)s” by %(date)s.",
            date=format_date(cohort.due_on, "long"),
            **values,
        )
    else:
        keep_going = _("%(org)s asks you to keep going with “%(cohort)s”.", **values)
    body = _(
        "You are %(percent)s of the way through.\n\nPick up where you left off: %(link)s\n\n"
        "You get this because you joined %(org)s's cohort; you can leave it from your account at any time.\n",
        **values,
    )
    greeting = _("Hello %(name)s,", **values)
    return _("A reminder from %(org)s: %(cohort)s", **values), f"{greeting}\n\n{keep_going} {body}"


# ---- creating a cohort ---------------------------------------------------------------------------------------


def _program_choices(programs) -> list[tuple[int, str]]:
    return [(0, _("No program: the courses ticked below")), *((p.id, p.title) for p in programs)]


def _cohort_fields(form: CohortForm) -> dict:
    """What the new and edit forms hand to the service."""
    return {
        "name": form.name.data,
        "starts_on": form.starts_on.data,
        "ends_on": form.ends_on.data,
        "due_on": form.due_on.data,
        "course_ids": form.course_ids.data or [],
        "program_id": form.program_id.data or None,
    }


@bp.route("/organizations/<slug>/cohorts/new", methods=["GET", "POST"])
@login_required
def new_cohort(slug: str):
    org, membership = load_org(slug)
    authorize(permissions.can_manage_org(org, membership))
    form = CohortForm()
    courses = services.assignable_courses()
    form.course_ids.choices = [(c.id, c.title) for c in courses]
    form.program_id.choices = _program_choices(services.assignable_programs())
    if form.validate_on_submit():
        try:
            cohort = services.create_cohort(
                current_user,
                org,
                **_cohort_fields(form),
                now=utcnow(),
            )
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            flash(_("Cohort “%(cohort)s” created. Now invite people.", cohort=cohort.name), "success")
            return redirect(url_for("orgs.invite", slug=org.slug, cohort_id=cohort.id), 303)
    return render_template("orgs/cohort_new.html", org=org, form=form), 422 if form.errors or form.form_errors else 200


@bp.route("/organizations/<slug>/cohorts/<int:cohort_id>/edit", methods=["GET", "POST"])
@login_required
def edit_cohort(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    form = CohortForm(obj=cohort)
    form.submit.label.text = _("Save cohort")
    choices = {c.id: c.title for c in services.assignable_courses()}
    choices.update({c.id: c.title for c in cohort.courses})  # an assigned course archived since stays listed
    form.course_ids.choices = sorted(choices.items(), key=lambda item: item[1])
    programs = services.assignable_programs()
    if cohort.program is not None and cohort.program not in programs:
        programs.append(cohort.program)  # followed since before it was archived: it may stay
    form.program_id.choices = _program_choices(programs)
    if request.method == "GET":
        form.course_ids.data = [c.id for c in cohort.courses]
    if form.program_id.data is None:  # the cohort follows no program, or the form left the choice out
        form.program_id.data = 0
    if form.validate_on_submit():
        try:
            services.update_cohort(
                current_user,
                cohort,
                **_cohort_fields(form),
                now=utcnow(),
            )
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            flash(_("Cohort “%(cohort)s” saved.", cohort=cohort.name), "success")
            return redirect(url_for("orgs.cohort", slug=org.slug, cohort_id=cohort.id), 303)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("orgs/cohort_edit.html", org=org, cohort=cohort, form=form), status


# ---- inviting ------------------------------------------------------------------------------------------------


def _invite_page(org, cohort, *, form=None, roster_form=None, link=None, code=None, status=200):
    pending = db.session.scalars(
        select(Invitation)
        .where(
            Invitation.cohort_id == cohort.id,
            Invitation.kind == InvitationKind.EMAIL,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(200)
    ).all()
    open_links = {
        i.kind: i
        for i in db.session.scalars(
            select(Invitation).where(
                Invitation.cohort_id == cohort.id,
                Invitation.kind.in_([InvitationKind.LINK, InvitationKind.CODE]),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
        )
    }
    return render_template(
        "orgs/invite.html",
        org=org,
        cohort=cohort,
        form=form or InviteForm(),
        roster_form=roster_form or RosterForm(),
        link_form=LinkForm(),
        pending=pending,
        open_links=open_links,
        new_link=link,
        new_code=code,
        kinds=InvitationKind,
    ), status


def _archived_page(org: Organization, cohort: Cohort, status: int):
    message = _("The cohort “%(cohort)s” is archived: unarchive it before inviting people.", cohort=cohort.name)
    return render_template(
        "orgs/message.html",
        title=_("Cohort archived"),
        message=message,
        org=org,
    ), status


@bp.get("/organizations/<slug>/cohorts/<int:cohort_id>/invite")
@login_required
def invite(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if cohort.is_archived:
        return _archived_page(org, cohort, 200)
    return _invite_page(org, cohort)


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/invite")
@login_required
@limit("RATELIMIT_ORG_INVITE", "60 per hour")
def invite_email(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if cohort.is_archived:
        return _archived_page(org, cohort, 409)
    form = InviteForm()
    if not form.validate_on_submit():
        return _invite_page(org, cohort, form=form, status=422)
    try:
        invitation, secret = services.invite_email(
            current_user, cohort, email=form.email.data, name=form.name.data or "", now=utcnow()
        )
    except DomainError as error:
        db.session.rollback()
        form_error(form, error)
        return _invite_page(org, cohort, form=form, status=422)
    invitation.sent_at = utcnow()
    db.session.commit()
    invitation_mail(org, cohort, invitation, secret)
    flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
    return redirect(url_for("orgs.invite", slug=org.slug, cohort_id=cohort.id), 303)


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/links")
@login_required
@limit("RATELIMIT_ORG_INVITE", "60 per hour")
def new_link(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    form = LinkForm()
    if not form.validate_on_submit() or form.kind.data not in ("link", "code", "close-link", "close-code"):
        abort(400)
    kind = InvitationKind(form.kind.data.removeprefix("close-"))
    if cohort.is_archived and not form.kind.data.startswith("close-"):
        return _archived_page(org, cohort, 409)
    if form.kind.data.startswith("close-"):
        services.close_links(cohort, kind, now=utcnow())
        db.session.commit()
        flash(
            _("The old join link no longer works.")
            if kind is InvitationKind.LINK
            else _("The old join code no longer works."),
            "success",
        )
        return redirect(url_for("orgs.invite", slug=org.slug, cohort_id=cohort.id), 303)
    _invitation, secret = services.open_link(current_user, cohort, kind, now=utcnow())
    db.session.commit()
    # the secret is shown once, on this response; only its hash is stored
    if kind is InvitationKind.LINK:
        return _invite_page(org, cohort, link=url_for("orgs.join", token=secret, _external=True))
    return _invite_page(org, cohort, code=services.format_code(secret))


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/roster")
@login_required
@limit("RATELIMIT_ORG_INVITE", "60 per hour")
def roster_check(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if cohort.is_archived:
        return _archived_page(org, cohort, 409)
    form = RosterForm()
    if not form.validate_on_submit():
        return _invite_page(org, cohort, roster_form=form, status=422)
    try:
        rows = roster.parse(form.file.data.read(roster.MAX_BYTES + 1))
    except roster.RosterError as error:
        return render_template("orgs/roster.html", org=org, cohort=cohort, error=error, rows=None), 422
    members = set(
        db.session.scalars(
            select(User.email)
            .join(CohortMember, CohortMember.user_id == User.id)
            .where(CohortMember.cohort_id == cohort.id, CohortMember.left_at.is_(None))
        )
    )
    token = roster.to_token(rows, cohort_id=cohort.id, secret_key=current_app.config["SECRET_KEY"])
    confirm = RosterConfirmForm(formdata=None, roster=token)
    return render_template(
        "orgs/roster.html", org=org, cohort=cohort, error=None, rows=rows, members=members, confirm=confirm
    )


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/roster/confirm")
@login_required
@limit("RATELIMIT_ORG_INVITE", "60 per hour")
def roster_confirm(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if cohort.is_archived:
        return _archived_page(org, cohort, 409)
    form = RosterConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        rows = roster.from_token(form.roster.data, cohort_id=cohort.id, secret_key=current_app.config["SECRET_KEY"])
    except roster.RosterError as error:
        return render_template("orgs/roster.html", org=org, cohort=cohort, error=error, rows=None), 422
    now = utcnow()
    sent, skipped = [], 0
    for row in rows:
        try:
            with db.session.begin_nested():
                invitation, secret = services.invite_email(
                    current_user, cohort, email=row.email, name=row.name, now=now
                )
                invitation.sent_at = now
        except DomainError:  # already in the cohort
            skipped += 1
            continue
        sent.append((invitation, secret))
    db.session.commit()
    for invitation, secret in sent:
        invitation_mail(org, cohort, invitation, secret)
    message = ngettext("%(num)d invitation sent.", "%(num)d invitations sent.", len(sent))
    if skipped:
        message += " " + ngettext("%(num)d was already in the cohort.", "%(num)d were already in the cohort.", skipped)
    flash(message, "success")
    return redirect(url_for("orgs.invite", slug=org.slug, cohort_id=cohort.id), 303)


@bp.errorhandler(413)
def too_large(error):
    if request.endpoint in ("orgs.roster_check", "orgs.roster_confirm"):
        message = _(
            "The file is larger than we accept. A roster may be at most 1 MB (%(rows)s lines).",
            rows=format_number(roster.MAX_ROWS),
        )
        return render_template("orgs/message.html", title=_("Roster too large"), message=message), 413
    return render_template("orgs/message.html", title=_("Too large"), message=_("What you sent is too large.")), 413


# ---- joining, with consent -----------------------------------------------------------------------------------


def _join(secret: str, *, code: bool):
    now = utcnow()
    try:
        invitation = services.find_invitation(secret[:200], now=now, code=code)
    except DomainError as error:
        return render_template("orgs/message.html", title=_("Invitation not valid"), message=error.message), 400
    cohort = invitation.cohort
    text = services.consent_text(cohort)
    if not current_user.is_authenticated:
        return render_template("orgs/join.html", invitation=invitation, cohort=cohort, text=text, form=None)
    form = ConsentForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            services.accept(current_user, invitation, shown_text=form.shown.data, now=now)
        except DomainError as error:
            db.session.rollback()
            return render_template("orgs/message.html", title=_("Could not join"), message=error.message), 409
        db.session.commit()
        flash(_("You joined %(org)s: %(cohort)s.", org=cohort.organization.name, cohort=cohort.name), "success")
        return redirect(url_for("orgs.my_orgs"), 303)
    if invitation.kind is InvitationKind.EMAIL and invitation.email != current_user.email:
        message = _(
            "This invitation was sent to another email address, not %(email)s. Log in with the address it was sent "
            "to, or ask for an invitation to yours.",
            email=current_user.email,
        )
        return render_template("orgs/message.html", title=_("Invitation for someone else"), message=message), 403
    form.shown.data = text
    return render_template("orgs/join.html", invitation=invitation, cohort=cohort, text=text, form=form)


@bp.route("/join/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config.get(*JOIN_LIMIT))
def join(token: str):
    return _join(token, code=False)


@bp.route("/join/code/<code>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config.get(*JOIN_LIMIT))
def join_with_code(code: str):
    return _join(code, code=True)


@bp.route("/join", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config.get(*JOIN_LIMIT), methods=["POST"])
def join_code():
    form = JoinCodeForm()
    if form.validate_on_submit():
        code = services.normalize_code(form.code.data)
        if code:
            return redirect(url_for("orgs.join_with_code", code=code), 303)
        form.code.errors = [_("A join code has 8 letters and digits, like K7QM-2XWD.")]
    return render_template("orgs/join_code.html", form=form), 422 if form.errors else 200


# ---- the learner's side: my organizations, leaving ------------------------------------------------------------


@bp.get("/account/organizations")
@login_required
def my_orgs():
    return render_template("orgs/mine.html", cohorts=services.my_cohorts(current_user), form=ButtonForm())


@bp.post("/account/organizations/<slug>/leave")
@login_required
def leave(slug: str):
    org = db.first_or_404(select(Organization).where(Organization.slug == slug))
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        services.leave(current_user, org, now=utcnow())
    except DomainError:
        abort(404)
    db.session.commit()
    flash(_("You left %(org)s. It no longer sees your progress, results or certificates.", org=org.name), "success")
    return redirect(url_for("orgs.my_orgs"), 303)


# ---- the dashboard -------------------------------------------------------------------------------------------

FILTERS = {
    "all": _l("Everyone"),
    "behind": _l("Behind the due date"),
    "inactive": _l("No activity in 14 days"),
    "completed": _l("Completed"),
    "not-started": _l("Not started"),
}


def _filtered(rows, which: str, q: str):
    if which == "behind":
        rows = [r for r in rows if r.behind]
    elif which == "inactive":
        rows = [r for r in rows if r.inactive]
    elif which == "completed":
        rows = [r for r in rows if r.completed]
    elif which == "not-started":
        rows = [r for r in rows if all(c.enrolled_at is None for c in r.courses)]
    if q:
        needle = q.casefold()
        rows = [r for r in rows if needle in r.user.name.casefold() or needle in r.user.email]
    return rows


@bp.get("/organizations/<slug>/cohorts/<int:cohort_id>")
@login_required
def cohort(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id)
    _org, membership = load_org(slug)
    now = utcnow()
    which = request.args.get("show", "all")
    if which not in FILTERS:
        which = "all"
    q = (request.args.get("q") or "").strip()[:100]
    all_rows = dashboard.build(cohort, now=now)
    rows = _filtered(all_rows, which, q)
    if request.args.get("format") == "csv":
        return _csv(org, cohort, rows)
    return render_template(
        "orgs/cohort.html",
        org=org,
        cohort=cohort,
        rows=rows,
        total=len(all_rows),
        counts={k: len(_filtered(all_rows, k, "")) for k in FILTERS},
        filters=FILTERS,
        which=which,
        q=q,
        expected=dashboard.expected_percent(cohort, now.date()),
        program_done=sum(1 for r in all_rows if r.completed),
        can_manage=permissions.can_manage_org(org, membership),
        form=ButtonForm(),
        now=now,
    )


def _csv(org: Organization, cohort: Cohort, rows) -> Response:
    header = ["name", "email", "joined", "last_activity", "overall_percent", "inactive_14_days", "behind"] + [
        f"{c.slug}_{k}" for c in cohort.courses for k in ("percent", "attempts", "best_score", "certificate")
    ]
    table = []
    for r in rows:
        cells = [
            r.user.name,
            r.user.email,
            r.member.joined_at.date().isoformat(),
            r.last_activity_at.date().isoformat() if r.last_activity_at else "",
            r.percent,
            "yes" if r.inactive else "no",
            "yes" if r.behind else "no",
        ]
        for c in r.courses:
            cert = f"{format_public_id(c.certificate.public_id)} ({c.certificate_status})" if c.certificate else ""
            cells += [c.percent, c.attempts, "" if c.best_score is None else c.best_score, cert]
        table.append(cells)
    return csv_response(f"{org.slug}-cohort-{cohort.id}.csv", header, table)


@bp.get("/organizations/<slug>/cohorts/<int:cohort_id>/members/<int:member_id>")
@login_required
def member(slug: str, cohort_id: int, member_id: int):
    org, cohort = load_cohort(slug, cohort_id)
    rows = dashboard.build(cohort, now=utcnow(), member_id=member_id)
    if not rows:
        abort(404)  # not in this cohort, or left it: the organization sees nothing of them
    row = rows[0]
    return render_template(
        "orgs/member.html",
        org=org,
        cohort=cohort,
        row=row,
        quizzes=dashboard.quiz_detail(cohort, row.user.id),
        fmt=format_public_id,
    )


# ---- archiving -------------------------------------------------------------------------------------------------


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/archive")
@login_required
def archive_cohort(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if services.archive_cohort(current_user, cohort, now=utcnow()):
        db.session.commit()
        flash(
            _(
                "Cohort “%(cohort)s” archived. It no longer takes new members; its members, their progress and "
                "the reports keep it.",
                cohort=cohort.name,
            ),
            "success",
        )
    else:
        flash(_("Cohort “%(cohort)s” was already archived.", cohort=cohort.name), "info")
    return redirect(url_for("orgs.cohort", slug=org.slug, cohort_id=cohort.id), 303)


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/unarchive")
@login_required
def unarchive_cohort(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if services.unarchive_cohort(current_user, cohort):
        db.session.commit()
        flash(_("Cohort “%(cohort)s” is active again and takes new members.", cohort=cohort.name), "success")
    else:
        flash(_("Cohort “%(cohort)s” was not archived.", cohort=cohort.name), "info")
    return redirect(url_for("orgs.cohort", slug=org.slug, cohort_id=cohort.id), 303)


@bp.post("/organizations/<slug>/cohorts/<int:cohort_id>/remind")
@login_required
@limit("RATELIMIT_ORG_REMIND", "5 per hour")
def remind(slug: str, cohort_id: int):
    org, cohort = load_cohort(slug, cohort_id, manage=True)
    if not ButtonForm().validate_on_submit():
        abort(400)
    now = utcnow()
    behind = [r for r in dashboard.build(cohort, now=now) if r.behind]
    to_send = services.claim_reminders(cohort, [r.member.id for r in behind], now=now)
    db.session.commit()
    link = url_for("courses.dashboard", _external=True)
    for r in behind:
        if r.member.id in to_send:
            with recipient_locale(r.user):
                send_mail(r.user.email, *reminder_mail(org, cohort, r, link))
    skipped = len(behind) - len(to_send)
    message = ngettext(
        "Reminder sent to %(num)d member behind.", "Reminder sent to %(num)d members behind.", len(to_send)
    )
    if skipped:
        message += " " + ngettext(
            "%(num)d was already reminded in the last 24 hours.",
            "%(num)d were already reminded in the last 24 hours.",
            skipped,
        )
    flash(message, "success")
    return redirect(url_for("orgs.cohort", slug=org.slug, cohort_id=cohort.id, show="behind"), 303)
