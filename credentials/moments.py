"""The moments a worker remembers: finishing a course, sharing the certificate, and being told plainly when a
certificate stops counting (what happened, what to do, whom to write to). Routes are added to the
credentials blueprint; helpers are shared with its other pages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, format_percent, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from accounts.permissions import permission_required
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import db
from courses.models import Course, CourseStatus, Enrollment
from courses.services import related_courses
from credentials import services
from credentials.blueprints import admin_bp, bp, verify_limit
from credentials.identity import verify_url
from credentials.ids import format_public_id, normalize_public_id
from credentials.labels import suspension_text
from credentials.models import Certificate, CertificateStatus, RevocationReason
from credentials.permissions import can_edit_branding
from credentials.presenters import hours_text, linkedin_url
from credentials.storage import pdf_storage, stored_pdf


def support_email() -> str:
    """Whom a worker or employer writes to: SUPPORT_EMAIL, else ISSUER_EMAIL, else help@ the mail sender's domain
    (never the no-reply sender itself)."""
    cfg = current_app.config
    address = cfg.get("SUPPORT_EMAIL") or cfg.get("ISSUER_EMAIL")
    if address:
        return address
    sender = cfg.get("MAIL_DEFAULT_SENDER") or "no-reply@academy.local"
    return "help@" + sender.rstrip(">").rsplit("@", 1)[-1]


def preview_version(certificate: Certificate, now: datetime) -> str:
    """Part of the preview image's URL, so a browser or unfurler that kept the old image fetches the new one
    after a revocation, expiry or reissue."""
    return f"{certificate.status_at(now).value}.{certificate.revision}"


@dataclass(frozen=True)
class ShareLinks:
    url: str
    email: str
    sms: str
    linkedin_profile: str
    linkedin_post: str
    credential: str
    badge: str
    badge_png: str


def share_links(certificate: Certificate) -> ShareLinks:
    url = verify_url(certificate.public_id)
    display_id = format_public_id(certificate.public_id)
    subject = gettext("My certificate: %(course)s", course=certificate.course_title)
    body = gettext(
        "I earned the certificate “%(course)s” from %(issuer)s. Anyone can check it here: %(url)s",
        course=certificate.course_title,
        issuer=certificate.issuer_name,
        url=url,
    )
    return ShareLinks(
        url=url,
        email="mailto:?" + urlencode({"subject": subject, "body": body}, quote_via=quote),
        # "sms:?body=" is the form both Android and current iOS read
        sms="sms:?" + urlencode({"body": body}, quote_via=quote),
        linkedin_profile=linkedin_url(certificate),
        linkedin_post="https://www.linkedin.com/sharing/share-offsite/?" + urlencode({"url": url}),
        credential=url_for("credentials.credential_json", public_id=display_id),
        badge=url_for("credentials.badge_svg", public_id=display_id),
        badge_png=url_for("credentials.badge_png", public_id=display_id),
    )


# what a worker can do about each revocation reason (the admin's note stays internal)
REVOCATION_ADVICE = {
    RevocationReason.ISSUED_IN_ERROR: _l(
        "It was issued by mistake. If you believe you did meet the course requirements, write to us with the "
        "certificate ID and we will look at it again."
    ),
    RevocationReason.ACADEMIC_MISCONDUCT: _l(
        "It was withdrawn after a review of how the course was completed. You can ask for that decision to be "
        "reviewed: write to us with the certificate ID."
    ),
    RevocationReason.IDENTITY_MISMATCH: _l(
        "We could not confirm that the name on it is yours. Ask for a name correction with proof of your legal "
        "name, or write to us."
    ),
    RevocationReason.SUPERSEDED: _l(
        "Another certificate replaces this one: use that one instead (see My certificates). Write to us if you "
        "cannot find it."
    ),
    RevocationReason.HOLDER_REQUEST: _l("It was withdrawn because you asked. Write to us if you want it back."),
    RevocationReason.OTHER: _l("Write to us with the certificate ID to learn why and what you can do."),
}


@dataclass(frozen=True)
class StatusView:
    """What the holder sees about a certificate's status. ``shareable`` is False for anything but valid."""

    status: str
    headline: str
    reason: str | None
    advice: str
    contact: str
    renewable: bool
    shareable: bool
    name_correction: bool = False


def status_view(certificate: Certificate, now: datetime, *, course_published: bool) -> StatusView:
    status = certificate.status_at(now)
    contact = support_email()
    if status is CertificateStatus.VALID:
        return StatusView("valid", gettext("Valid"), None, "", contact, False, True)
    if status is CertificateStatus.EXPIRED:
        advice = (
            gettext(
                "Renew it by passing the course quizzes again: your lessons stay complete and the certificate keeps "
                "its ID."
            )
            if course_published
            else gettext(
                "The course no longer takes learners, so it cannot be renewed. Look at the related courses below, "
                "or write to us."
            )
        )
        return StatusView(
            "expired",
            gettext("Expired on %(date)s", date=format_date(certificate.expires_at, "long")),
            gettext("Its validity period has ended"),
            advice,
            contact,
            course_published,
            False,
        )
    if status is CertificateStatus.SUSPENDED:  # shown to its holder with the reason, never shared meanwhile
        return StatusView(
            "suspended",
            suspension_text(certificate, now),
            (certificate.suspension_reason or "").rstrip(".") or None,  # the page adds the full stop
            gettext(
                "It does not count while it is suspended and counts again when the suspension ends. Write to us "
                "if you have questions about it."
            ),
            contact,
            False,
            False,
        )
    reason = certificate.revocation_reason or RevocationReason.OTHER
    revoked = certificate.revoked_at
    return StatusView(
        "revoked",
        gettext("Revoked on %(date)s", date=format_date(revoked, "long")),
        reason.label,
        str(REVOCATION_ADVICE[reason]),
        contact,
        False,
        False,
        name_correction=reason is RevocationReason.IDENTITY_MISMATCH,
    )


# ---- the completion moment -------------------------------------------------------------------------


@bp.get("/courses/<slug>/done")
@login_required
def completed(slug: str):
    """Where finishing the last lesson or quiz lands: the certificate, shown and ready to share."""
    row = db.session.execute(
        select(Course, Enrollment)
        .join(Enrollment, Enrollment.course_id == Course.id)
        .where(Course.slug == slug, Enrollment.user_id == current_user.id)
    ).first()
    if row is None or row.Enrollment.completed_at is None:
        abort(404)
    course, enrollment = row
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.user_id == current_user.id, Certificate.course_id == course.id)
    )
    if certificate is None:
        abort(404)
    now = utcnow()
    display_id = format_public_id(certificate.public_id)
    return render_template(
        "credentials/completed.html",
        course=course,
        enrollment=enrollment,
        certificate=certificate,
        display_id=display_id,
        view=status_view(certificate, now, course_published=course.status is CourseStatus.PUBLISHED),
        share=share_links(certificate),
        next_courses=related_courses(course, current_user),
        version=preview_version(certificate, now),
    )


# ---- the preview image (public: the verify page's Open Graph image) ---------------------------------


@bp.get("/verify/<public_id>/certificate.png")
@verify_limit()
def certificate_png(public_id: str):
    canonical_id = normalize_public_id(public_id)
    if canonical_id is None:
        abort(404)
    if public_id != format_public_id(canonical_id):
        return redirect(url_for("credentials.certificate_png", public_id=format_public_id(canonical_id)), 301)
    certificate = services.lookup(canonical_id)
    if certificate is None:
        abort(404)
    from credentials.preview import cached_png

    try:
        pdf = stored_pdf(certificate, utcnow())
        db.session.commit()  # keeps the stored PDF's hash and a freshly signed credential
        digest = certificate.pdf_sha256 or hashlib.sha256(pdf).hexdigest()
        png = cached_png(pdf_storage(), certificate.public_id, digest, pdf)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("could not render the preview of certificate %s", certificate.public_id)
        response = Response(gettext("The certificate image is being prepared. Try again in a minute."), 503)
        response.headers["Retry-After"] = "60"
        return response
    response = Response(png, mimetype="image/png")
    # short: a revocation re-stamps the PDF and so the image; unfurlers fetch once anyway
    response.headers["Cache-Control"] = "public, max-age=300"
    response.set_etag(digest[:32])  # the preview is a pure function of the PDF
    return response.make_conditional(request)


def absolute_url(endpoint: str, **values) -> str:
    """A link for other sites (unfurlers, mail), built on ISSUER_URL, never on the request's Host header."""
    return current_app.config["ISSUER_URL"].rstrip("/") + url_for(endpoint, **values)


def what_was_earned(certificate: Certificate) -> str:
    """One sentence on what the holder did to earn the certificate, from the snapshot and the course."""
    score = format_percent(certificate.score / 100)
    if certificate.is_program:
        return gettext(
            "To earn it, %(holder)s completed every course of the program “%(program)s”, each with its own "
            "certificate, with a mean final score of %(score)s.",
            holder=certificate.holder_name,
            program=certificate.course_title,
            score=score,
        )
    course = certificate.course
    if course and course.estimated_minutes:
        return gettext(
            "To earn it, %(holder)s completed every lesson of “%(course)s” (about %(hours)s of study) and passed "
            "each module quiz, with a final score of %(score)s (the average of the best attempt at each quiz).",
            holder=certificate.holder_name,
            course=certificate.course_title,
            hours=hours_text(course.estimated_minutes),
            score=score,
        )
    return gettext(
        "To earn it, %(holder)s completed every lesson of “%(course)s” and passed each module quiz, with a final "
        "score of %(score)s (the average of the best attempt at each quiz).",
        holder=certificate.holder_name,
        course=certificate.course_title,
        score=score,
    )


@bp.get("/about/issuer")
def issuer_about():
    """The issuer, for people: who issues these certificates, how to check them, whom to contact."""
    from credentials.branding import current_branding

    return render_template("credentials/issuer.html", branding=current_branding(), contact=support_email())


# ---- admins: the branding page ----------------------------------------------------------------------


@admin_bp.route("/branding", methods=["GET", "POST"])
@permission_required(can_edit_branding)
def branding():
    from credentials.branding import BrandingChange, current_branding, data_uri, update_branding
    from credentials.forms import BrandingForm

    current = current_branding()
    form = BrandingForm(
        data={
            "issuer_address": current.issuer_address,
            "signatory_name": current.signatory_name,
            "signatory_title": current.signatory_title,
            "seal_alt": current.seal_alt,
        }
    )
    if form.validate_on_submit():
        limit = current_app.config["MAX_IMAGE_BYTES"]

        def upload(field) -> bytes | None:
            return field.data.read(limit + 1) if field.data and getattr(field.data, "filename", "") else None

        change = BrandingChange(
            issuer_address=form.issuer_address.data or "",
            signatory_name=form.signatory_name.data or "",
            signatory_title=form.signatory_title.data or "",
            seal_alt=form.seal_alt.data or "",
            seal=upload(form.seal),
            signature=upload(form.signature),
            remove_seal=form.remove_seal.data,
            remove_signature=form.remove_signature.data,
        )
        try:
            update_branding(current_user, change, max_bytes=limit, now=utcnow())
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            flash(gettext("Branding saved. Certificates rendered from now on show it."), "success")
            return redirect(url_for("admin_certificates.branding"), 303)
        current = current_branding()
    return render_template(
        "credentials/branding.html",
        form=form,
        branding=current,
        seal=data_uri(current.seal_png),
        signature=data_uri(current.signature_png),
    ), 422 if form.errors else 200
