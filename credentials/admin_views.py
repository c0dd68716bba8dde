"""Admins' certificate pages: search, one certificate's history, revoke / reinstate / reissue (the signed
status list is re-signed before the answer), and deciding name corrections."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts.permissions import permission_required
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from core.forms import ButtonForm
from credentials import openbadges, services
from credentials import programs as program_certificates
from credentials.blueprints import admin_bp
from credentials.forms import DecisionForm, RevokeForm, SuspendForm
from credentials.identity import issuer
from credentials.ids import format_public_id
from credentials.keys import KeyError_
from credentials.labels import suspension_text
from credentials.models import Certificate, NameChangeRequest, NameChangeStatus, RevocationReason
from credentials.permissions import can_manage_certificates


def resign_status_list(certificate: Certificate) -> None:
    """Re-sign the status lists (revocation and suspension) of the certificate and of program certificates
    stacking it before the admin's request returns (flush only)."""
    list_ids = {
        i for c in [certificate, *program_certificates.stacking(certificate)] for i in openbadges.list_ids_of(c)
    }
    try:
        for list_id in sorted(list_ids):
            openbadges.signed_status_list(list_id, issuer(), now=utcnow())
    except KeyError_ as error:
        current_app.logger.warning("status lists %s not re-signed: %s", sorted(list_ids), error)
        flash(_("The signing key is not available: the status lists will be re-signed once it is."), "warning")


@admin_bp.get("/certificates")
@permission_required(can_manage_certificates)
def list_certificates():
    now = utcnow()
    query = (request.args.get("q") or "")[:100]
    status = (
        request.args.get("status")
        if request.args.get("status") in {"valid", "suspended", "expired", "revoked"}
        else None
    )
    page = db.paginate(
        services.search_certificates(query, status, now=now),
        page=min(request.args.get("page", 1, type=int), 10_000),
        per_page=25,
        max_per_page=100,
        error_out=False,
    )
    pending = db.session.scalar(select(db.func.count()).where(NameChangeRequest.status == NameChangeStatus.PENDING))
    return render_template(
        "credentials/admin_list.html", page=page, q=query, status=status, now=now, fmt=format_public_id, pending=pending
    )


def _admin_certificate(public_id: str) -> Certificate:
    certificate = services.get_certificate(public_id)
    if certificate is None:
        abort(404)
    return certificate


@admin_bp.get("/certificates/<public_id>")
@permission_required(can_manage_certificates)
def certificate_detail(public_id: str):
    certificate = _admin_certificate(public_id)
    db.session.refresh(certificate)
    events = certificate.events
    now = utcnow()
    return _detail_page(certificate, events, now)


def _detail_page(certificate: Certificate, events, now, *, revoke_form=None, suspend_form=None):
    suspension = suspension_text(certificate, now)
    # a program certificate suspended while a course credential it stacks is: lifting that one lifts this one
    held_by = (
        [p for p in program_certificates.parts_of(certificate) if p.revoked_at is None and p.suspended_at_time(now)]
        if suspension and certificate.is_program
        else []
    )
    return render_template(
        "credentials/admin_detail.html",
        certificate=certificate,
        events=events,
        now=now,
        status=certificate.status_at(now),
        suspension=suspension,
        held_by=held_by,
        fmt=format_public_id,
        display_id=format_public_id(certificate.public_id),
        revoke_form=revoke_form or RevokeForm(),
        suspend_form=suspend_form or SuspendForm(formdata=None),
        confirm_form=ButtonForm(),
    )


def _admin_action(public_id: str, action, success: str):
    certificate = _admin_certificate(public_id)
    try:
        action(certificate)
        resign_status_list(certificate)  # revocation visible in the signed list before we answer
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("admin_certificates.certificate_detail", public_id=public_id), 303)
    db.session.commit()
    flash(success, "success")
    return redirect(
        url_for("admin_certificates.certificate_detail", public_id=format_public_id(certificate.public_id)), 303
    )


@admin_bp.post("/certificates/<public_id>/revoke")
@permission_required(can_manage_certificates)
def revoke(public_id: str):
    form = RevokeForm()
    if not form.validate_on_submit():
        certificate = _admin_certificate(public_id)
        return _detail_page(certificate, certificate.events, utcnow(), revoke_form=form), 422
    return _admin_action(
        public_id,
        lambda c: services.revoke(
            current_user, c, reason=RevocationReason(form.reason.data), note=form.note.data, now=utcnow()
        ),
        _("The certificate is revoked. Verifiers now see “Revoked”."),
    )


@admin_bp.post("/certificates/<public_id>/reinstate")
@permission_required(can_manage_certificates)
def reinstate(public_id: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    return _admin_action(
        public_id, lambda c: services.reinstate(current_user, c, now=utcnow()), _("The certificate is valid again.")
    )


@admin_bp.post("/certificates/<public_id>/suspend")
@permission_required(can_manage_certificates)
def suspend(public_id: str):
    form = SuspendForm()
    certificate = _admin_certificate(public_id)
    now = utcnow()
    if form.validate_on_submit():
        day = form.suspended_until.data
        until = datetime.combine(day, time(), UTC) if day else None
        try:
            services.suspend(current_user, certificate, reason=form.suspension_reason.data, until=until, now=now)
            resign_status_list(certificate)  # the suspension list says so before we answer
        except DomainError as error:
            db.session.rollback()
            if error.field in form:  # the admin corrects the field: the form stays filled in
                form[error.field].errors.append(error.message)
            else:  # already suspended (a double submit) or revoked meanwhile: the page says how it stands
                flash(error.message, "error")
                return redirect(url_for("admin_certificates.certificate_detail", public_id=public_id), 303)
        else:
            db.session.commit()
            flash(_("The certificate is suspended. Verifiers now see “Suspended”."), "success")
            return redirect(
                url_for("admin_certificates.certificate_detail", public_id=format_public_id(certificate.public_id)),
                303,
            )
    return _detail_page(certificate, certificate.events, now, suspend_form=form), 422


@admin_bp.post("/certificates/<public_id>/lift-suspension")
@permission_required(can_manage_certificates)
def lift_suspension(public_id: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    return _admin_action(
        public_id,
        lambda c: services.lift_suspension(current_user, c, now=utcnow()),
        _("The suspension is lifted. Verifiers see the certificate's status without it again."),
    )


@admin_bp.post("/certificates/<public_id>/reissue")
@permission_required(can_manage_certificates)
def reissue(public_id: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    return _admin_action(
        public_id,
        lambda c: services.reissue(current_user, c, now=utcnow(), why="admin reissue"),
        _("Reissued with the same holder name and a new issue time; the PDF will be replaced."),
    )


@admin_bp.get("/name-corrections")
@permission_required(can_manage_certificates)
def name_corrections():
    requests = list(
        db.session.scalars(
            select(NameChangeRequest)
            .options(selectinload(NameChangeRequest.user))
            .order_by(
                (NameChangeRequest.status == NameChangeStatus.PENDING).desc(), NameChangeRequest.created_at.desc()
            )
            .limit(200)
        )
    )
    return render_template("credentials/admin_names.html", requests=requests, form=DecisionForm())


@admin_bp.post("/name-corrections/<int:request_id>")
@permission_required(can_manage_certificates)
def decide_name_correction(request_id: int):
    name_request = db.get_or_404(NameChangeRequest, request_id)
    form = DecisionForm()
    if not form.validate_on_submit() or not (form.approve.data or form.reject.data):
        abort(400)
    try:
        reissued = services.decide_name_change(
            current_user, name_request, approve=bool(form.approve.data), note=form.note.data or "", now=utcnow()
        )
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        db.session.commit()
        flash(
            ngettext(
                "Approved: %(num)d certificate reissued.", "Approved: %(num)d certificates reissued.", len(reissued)
            )
            if form.approve.data
            else _("Request rejected."),
            "success",
        )
    return redirect(url_for("admin_certificates.name_corrections"), 303)
