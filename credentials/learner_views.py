"""A learner's own certificates: the list, one certificate's page, its PDF, and asking for a name correction."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from accounts.permissions import authorize
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import db
from credentials import moments, services
from credentials import programs as program_certificates
from credentials.blueprints import bp
from credentials.counter import verification_counter
from credentials.forms import NameChangeForm
from credentials.identity import verify_url
from credentials.ids import format_public_id
from credentials.models import Certificate, NameChangeRequest, NameChangeStatus
from credentials.permissions import can_download
from credentials.storage import stored_pdf


def _owned_or_404(public_id: str) -> Certificate:
    certificate = services.get_certificate(public_id)
    if certificate is None:
        abort(404)
    authorize(can_download(current_user, certificate), hide=True)  # no hint that someone else's certificate exists
    return certificate


@bp.get("/certificates")
@login_required
def my_certificates():
    now = utcnow()
    verification_counter.flush()  # show this worker's latest counts
    certificates = list(
        db.session.scalars(
            select(Certificate).where(Certificate.user_id == current_user.id).order_by(Certificate.awarded_at.desc())
        )
    )
    pending = db.session.scalar(
        select(NameChangeRequest).where(
            NameChangeRequest.user_id == current_user.id, NameChangeRequest.status == NameChangeStatus.PENDING
        )
    )
    return render_template(
        "credentials/mine.html",
        certificates=certificates,
        now=now,
        pending=pending,
        expiring=services.expiring_soon,
        fmt=format_public_id,
    )


@bp.get("/certificates/<public_id>")
@login_required
def my_certificate(public_id: str):
    verification_counter.flush()
    certificate = _owned_or_404(public_id)
    now = utcnow()
    published = certificate.course is not None and certificate.course.status.value == "published"
    return render_template(
        "credentials/certificate_page.html",
        certificate=certificate,
        now=now,
        status=certificate.status_at(now),
        display_id=format_public_id(certificate.public_id),
        view=moments.status_view(certificate, now, course_published=published),
        version=moments.preview_version(certificate, now),
        share=moments.share_links(certificate),
        expiring=services.expiring_soon(certificate, now),
        parts=program_certificates.parts_of(certificate),
        fmt=format_public_id,
    )


@bp.get("/certificates/<public_id>.pdf")
@login_required
def certificate_pdf(public_id: str):
    certificate = _owned_or_404(public_id)
    try:
        pdf = stored_pdf(certificate, utcnow())
        db.session.commit()  # keeps the stored PDF's hash and a freshly signed credential
    except Exception:
        db.session.rollback()
        current_app.logger.exception("could not render the PDF of certificate %s", certificate.public_id)
        response = Response(
            render_template(
                "credentials/pdf_pending.html",
                display_id=format_public_id(certificate.public_id),
                share_url=verify_url(certificate.public_id),
            ),
            status=503,
        )
        response.headers["Retry-After"] = "60"
        return response
    disposition = "attachment" if request.args.get("download") else "inline"
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'{disposition}; filename="certificate-{certificate.public_id}.pdf"'
    response.headers["Cache-Control"] = "private, no-cache"
    response.set_etag(certificate.pdf_sha256 or "")
    return response.make_conditional(request)


@bp.route("/certificates/name-correction", methods=["GET", "POST"])
@login_required
def name_correction():
    form = NameChangeForm()
    if form.validate_on_submit():
        try:
            services.request_name_change(
                current_user, requested_name=form.requested_name.data, reason=form.reason.data or "", now=utcnow()
            )
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            flash("Your name correction was sent for review. You will see the result on this page.", "success")
            return redirect(url_for("credentials.my_certificates"), 303)
    return render_template("credentials/name_correction.html", form=form), 422 if form.errors else 200
