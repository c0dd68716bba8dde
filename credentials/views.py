"""Verification (public), my certificates (learners), bulk checks (employers), lifecycle (admins)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts.forms import ConfirmForm
from accounts.models import Role
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import csrf, db, limit_storage, limiter
from core.permissions import roles_required
from courses.services import enrollment_completed, renewal_requested
from credentials import openbadges, services
from credentials import programs as program_certificates  # connects the program-certificate receivers
from credentials.forms import CredentialUploadForm, DecisionForm, NameChangeForm, RevokeForm, VerifyForm
from credentials.ids import format_public_id, normalize_public_id
from credentials.keys import KeyError_, did_document
from credentials.models import (
    Certificate,
    CertificateStatus,
    NameChangeRequest,
    NameChangeStatus,
    RevocationReason,
    StatusList,
)
from credentials.pdf import CertificateData, render_pdf
from credentials.permissions import can_download

bp = Blueprint("credentials", __name__)
admin_bp = Blueprint("admin_certificates", __name__, url_prefix="/admin")


@enrollment_completed.connect
def _issue_on_completion(enrollment, now: datetime, **_) -> None:
    services.issue_for_enrollment(enrollment, now=now, issuer=current_app.config["ISSUER_NAME"])


@renewal_requested.connect
def _renewal_only_in_its_window(enrollment, now: datetime, **_) -> None:
    certificate = db.session.scalar(
        select(Certificate).where(
            Certificate.user_id == enrollment.user_id, Certificate.course_id == enrollment.course_id
        )
    )
    problem = services.renewal_window_problem(certificate, now)
    if problem:
        raise DomainError(problem)


def issuer() -> openbadges.Issuer:
    cfg = current_app.config
    return openbadges.Issuer(cfg["ISSUER_URL"], cfg["ISSUER_NAME"], cfg.get("ISSUER_EMAIL"))


def resign_status_list(certificate: Certificate) -> None:
    """Re-sign the status lists of the certificate and of program certificates stacking it before the admin's
    request returns (flush only)."""
    list_ids = {c.status_list_id for c in [certificate, *program_certificates.stacking(certificate)]} - {None}
    try:
        for list_id in sorted(list_ids):
            openbadges.signed_status_list(list_id, issuer(), now=utcnow())
    except KeyError_ as error:
        current_app.logger.warning("status lists %s not re-signed: %s", sorted(list_ids), error)
        flash("The signing key is not available: the revocation list will be re-signed once it is.", "warning")


def ld_json(document: dict) -> Response:
    response = Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/ld+json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def signing_unavailable(error: Exception):
    current_app.logger.error("signing unavailable: %s", error)
    return jsonify(
        status="unavailable",
        message="Signed credentials are temporarily unavailable: the issuer's "
        "signing key is not configured. Verification of certificates still works.",
    ), 503


def verify_limit():
    return limiter.limit(lambda: current_app.config["RATELIMIT_VERIFY"])


def verify_url(public_id: str) -> str:
    return f"{current_app.config['ISSUER_URL'].rstrip('/')}/verify/{format_public_id(public_id)}"


def _date(moment: datetime | None) -> str | None:
    return f"{moment:%B} {moment.day}, {moment.year}" if moment else None


def first_sentence(text: str, limit: int = 150) -> str:
    """The course summary's first sentence, shortened at a word to ``limit`` characters."""
    text = " ".join((text or "").split())
    end = text.find(". ")
    sentence = text[: end + 1] if 0 < end < limit else text
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return sentence


def alignment_text(goals: list[dict], shown: int = 2) -> str | None:
    """The plan goals a course serves, as one plain sentence (goal IDs are for the verify page)."""
    titles = [g["title"][0].lower() + g["title"][1:] if g["title"][:2] != "AI" else g["title"] for g in goals]
    if not titles:
        return None
    more = len(titles) - shown
    listed = "; ".join(titles[:shown]) + (f"; and {more} more" if more > 0 else "")
    return f"Aligned with the workforce goals of America's AI Action Plan (July 2025): {listed}."


def certificate_data(certificate: Certificate, now: datetime) -> CertificateData:
    from credentials.branding import current_branding, data_uri
    from credentials.moments import hours_text

    course = certificate.course
    branding = current_branding()
    return CertificateData(
        kind="program" if certificate.is_program else "course",
        stacks=[
            f"{p.course_title} ({format_public_id(p.public_id)})" for p in program_certificates.parts_of(certificate)
        ],
        public_id=certificate.public_id,
        display_id=format_public_id(certificate.public_id),
        holder_name=certificate.holder_name,
        course_title=certificate.course_title,
        course_version=certificate.course_version,
        skills=[s["name"] for s in certificate.skills],
        goals=[f"{g['id']}: {g['title']}" for g in certificate.goals],
        score=certificate.score,
        issuer_name=certificate.issuer_name,
        awarded_on=_date(certificate.awarded_at),
        issued_on=_date(certificate.issued_at),
        expires_on=_date(certificate.expires_at),
        verify_url=verify_url(certificate.public_id),
        stamp=services.stamp_for(certificate, now),
        hours=hours_text(course.estimated_minutes) if course and course.estimated_minutes else None,
        description=first_sentence(course.summary) if course else None,
        alignment=alignment_text(certificate.goals),
        issuer_address=branding.issuer_address,
        seal_uri=data_uri(branding.seal_png),
        seal_alt=branding.seal_alt or f"Seal of {certificate.issuer_name}",
        signatory_name=branding.signatory_name,
        signatory_title=branding.signatory_title,
        signature_uri=data_uri(branding.signature_png),
    )


def public_facts(certificate: Certificate, now: datetime) -> dict:
    """What anyone may learn about a certificate: never the holder's email."""
    status = certificate.status_at(now)
    facts = {
        "id": format_public_id(certificate.public_id),
        "status": status.value,
        "holder_name": certificate.holder_name,
        "kind": "program" if certificate.is_program else "course",
        # for a program certificate, the program's title and version (kept under "course" for existing clients)
        "course": {"title": certificate.course_title, "version": certificate.course_version},
        "skills": certificate.skills,
        "plan_goals": certificate.goals,
        "score": certificate.score,
        "issuer": certificate.issuer_name,
        "awarded_at": certificate.awarded_at.isoformat(),
        "issued_at": certificate.issued_at.isoformat(),
        "expires_at": certificate.expires_at.isoformat() if certificate.expires_at else None,
        "verification_url": verify_url(certificate.public_id),
    }
    if status is CertificateStatus.REVOKED:
        facts["revoked_at"] = certificate.revoked_at.isoformat()
        facts["revocation_reason"] = certificate.revocation_reason.value
    if certificate.is_program:
        facts["stacks"] = [
            {
                "id": format_public_id(part.public_id),
                "course": part.course_title,
                "status": part.status_at(now).value,
                "verification_url": verify_url(part.public_id),
            }
            for part in program_certificates.parts_of(certificate)
        ]
    return facts


# ---- public verification -------------------------------------------------------------------


def count_verification(certificate: Certificate, now: datetime) -> None:
    """Count a verification, at most once per client per certificate per UTC day (so reloads or a script
    cannot inflate "verified N times"). Clients are told apart by a keyed hash of their address, kept in the
    rate limiter's storage until the day ends; the address itself is never stored."""
    cfg = current_app.config
    client = hmac.new(
        cfg["SECRET_KEY"].encode(), f"{get_remote_address()}|{certificate.id}|{now:%Y-%m-%d}".encode(), "sha256"
    ).hexdigest()[:32]
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    storage = limit_storage()
    if (
        storage is not None
        and storage.incr(f"awa/verified/{client}", max(1, int((midnight - now).total_seconds()))) > 1
    ):
        return
    services.verification_counter.note(
        certificate.id, now, batch=cfg["VERIFY_COUNT_BATCH"], seconds=cfg["VERIFY_COUNT_SECONDS"]
    )


@bp.get("/verify")
def verify():
    form = VerifyForm(request.args)
    if request.args.get("id") is not None and form.validate():
        public_id = normalize_public_id(form.id.data)
        if public_id:
            return redirect(url_for("credentials.verify_certificate", public_id=format_public_id(public_id)))
        form.id.errors = ["That is not a certificate ID. IDs have 28 letters and digits, like 7K3Q-9XWM-…"]
    status = 422 if form.id.errors else 200
    return render_template("credentials/verify.html", form=form), status


@bp.get("/verify/<public_id>")
@verify_limit()
def verify_certificate(public_id: str):
    now = utcnow()
    canonical_id = normalize_public_id(public_id)
    if canonical_id is not None and public_id != format_public_id(canonical_id):
        # typed in lower case or without dashes: one canonical address, counted once
        return redirect(url_for("credentials.verify_certificate", public_id=format_public_id(canonical_id)), 301)
    certificate = services.lookup(canonical_id) if canonical_id else None
    if certificate is not None and wants_credential():
        return credential_json(format_public_id(canonical_id))
    if certificate is None:
        return render_template(
            "credentials/verify_result.html",
            certificate=None,
            malformed=canonical_id is None,
            typed=public_id[:64],
            form=VerifyForm(),
        ), 404
    count_verification(certificate, now)
    return render_template(
        "credentials/verify_result.html",
        certificate=certificate,
        now=now,
        status=certificate.status_at(now),
        display_id=public_id,
        verify_url=verify_url(certificate.public_id),
        parts=program_certificates.parts_of(certificate),
        fmt=format_public_id,
        earned=moments.what_was_earned(certificate),
        preview_url=moments.absolute_url(
            "credentials.certificate_png", public_id=public_id, v=moments.preview_version(certificate, now)
        ),
        preview_height=927 if current_app.config["CERTIFICATE_PAPER"] == "Letter" else 849,
    )


@bp.get("/api/v1/certificates/<public_id>")
@verify_limit()
def api_certificate(public_id: str):
    now = utcnow()
    canonical_id = normalize_public_id(public_id)
    if canonical_id is None:
        return jsonify(status="invalid_id", message="Certificate IDs have 28 letters and digits."), 400
    certificate = services.lookup(canonical_id)
    if certificate is None:
        return jsonify(status="not_found", message="No certificate has this ID."), 404
    count_verification(certificate, now)
    response = jsonify(public_facts(certificate, now))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"  # any employer system may read public facts
    return response


CREDENTIAL_TYPES = ("application/ld+json", "application/vc+ld+json", "application/vc")


def wants_credential() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", *CREDENTIAL_TYPES])
    return best in CREDENTIAL_TYPES and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def signed_for(public_id: str):
    """(certificate, signed credential), or (error response, None) for unknown IDs or a missing key."""
    canonical_id = normalize_public_id(public_id)
    certificate = services.lookup(canonical_id) if canonical_id else None
    if certificate is None:
        return (jsonify(status="not_found", message="No certificate has this ID."), 404), None
    try:
        document = openbadges.signed_credential(certificate, issuer(), now=utcnow())
    except KeyError_ as error:
        db.session.rollback()
        return signing_unavailable(error), None
    db.session.commit()  # keeps the signed copy for the next request
    return certificate, document


@bp.get("/credentials/<public_id>.json")
@verify_limit()
def credential_json(public_id: str):
    certificate, document = signed_for(public_id)
    if document is None:
        return certificate  # the error response
    response = ld_json(document)
    response.headers["Vary"] = "Accept"
    return response


@dataclass
class _CachedList:
    """One status list as served: the signed JSON, its gzip, its ETag, and when its bits were last checked."""

    updated_at: datetime
    checked_at: float
    body: bytes
    gzipped: bytes
    etag: str


_status_cache: dict[int, _CachedList] = {}


def _cached_status_list(list_id: int) -> _CachedList:
    """The served copy: rebuilt when the stored signed list changed (a revocation re-signs it at once) and
    re-checked against the certificates at most once per ttl. Raises LookupError or KeyError_."""
    stored = db.session.scalar(select(StatusList.updated_at).where(StatusList.id == list_id))
    if stored is None:
        raise LookupError(list_id)
    cached = _status_cache.get(list_id)
    fresh = time.monotonic() - cached.checked_at < openbadges.STATUS_TTL_SECONDS if cached else False
    if cached is not None and fresh and cached.updated_at == stored:
        return cached
    document = openbadges.signed_status_list(list_id, issuer(), now=utcnow())  # re-signs only if bits changed
    db.session.commit()
    body = json.dumps(document, separators=(",", ":")).encode()
    row = db.session.get(StatusList, list_id)
    cached = _CachedList(
        updated_at=row.updated_at,
        checked_at=time.monotonic(),
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=hashlib.sha256(body).hexdigest()[:32],
    )
    _status_cache[list_id] = cached
    return cached


@bp.get("/credentials/status/<int:list_id>")
@limiter.limit(lambda: current_app.config["RATELIMIT_STATUS_LIST"])
def status_list(list_id: int):
    try:
        cached = _cached_status_list(list_id)
    except LookupError:
        return jsonify(status="not_found", message="No such status list."), 404
    except KeyError_ as error:
        db.session.rollback()
        return signing_unavailable(error)
    gzipped = "gzip" in request.accept_encodings
    response = Response(cached.gzipped if gzipped else cached.body, mimetype="application/ld+json")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.set_etag(cached.etag + ("-gz" if gzipped else ""))  # one tag per representation
    response.headers["Cache-Control"] = f"public, max-age={openbadges.STATUS_TTL_SECONDS}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@bp.get("/.well-known/did.json")
def did_json():
    try:
        document = did_document(current_app.config["ISSUER_URL"])
    except KeyError_ as error:
        return signing_unavailable(error)
    response = Response(json.dumps(document, indent=2), mimetype="application/did+json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/issuer")
def issuer_profile():
    return ld_json({"@context": [openbadges.vc.VC_V2, openbadges.vc.OB_V3], **issuer().profile()})


def online_check(credential: dict):
    """Check a submitted credential against our published keys and our live status lists."""
    from credentials import verification
    from credentials.keys import public_keys

    def status_bits(list_id: int) -> bytes | None:
        if db.session.get(StatusList, list_id) is None:
            return None
        return openbadges.revoked_bits(list_id)  # the same bits, without compressing them to read them back

    the_issuer = issuer()
    prefix = the_issuer.base_url + "/credentials/"

    def record(credential_id: str) -> verification.Record | None:
        canonical = normalize_public_id(credential_id[len(prefix) :]) if credential_id.startswith(prefix) else None
        certificate = services.lookup(canonical) if canonical else None
        if certificate is None:
            return None
        return verification.Record(
            holder_name=certificate.holder_name,
            course_title=certificate.course_title,
            awarded=openbadges.iso(certificate.awarded_at),
            issued=openbadges.iso(certificate.issued_at),
        )

    return verification.check_credential(
        credential, issuer=the_issuer, keys=public_keys(), status_bits=status_bits, now=utcnow(), record=record
    )


@bp.post("/api/v1/verify")
@csrf.exempt  # a public API for machines: no cookies, no session, nothing to forge
@verify_limit()
def api_verify():
    from credentials.verification import SubmissionError, read_submission

    upload = request.files.get("file")
    data = upload.read(current_app.config["MAX_CONTENT_LENGTH"] + 1) if upload else request.get_data(cache=False)
    try:
        credential = read_submission(data)
        report = online_check(credential)
    except SubmissionError as error:
        return jsonify(verified=False, verdict="unreadable", message=str(error)), 400
    except KeyError_ as error:
        return signing_unavailable(error)
    return jsonify(report.summary())


@bp.route("/verify/credential", methods=["GET", "POST"])
@verify_limit()
def verify_upload():
    from credentials.verification import SubmissionError, read_submission

    form = CredentialUploadForm()
    report, status = None, 200
    if form.validate_on_submit():
        try:
            report = online_check(read_submission(form.file.data.read(current_app.config["MAX_CONTENT_LENGTH"] + 1)))
        except SubmissionError as error:
            form.file.errors = [str(error)]
            status = 422
        except KeyError_:
            form.file.errors = ["Credential checks are briefly unavailable. Check the certificate by its ID instead."]
            status = 503
    elif form.errors:
        status = 422
    return render_template("credentials/verify_upload.html", form=form, report=report), status


@bp.get("/credentials/<public_id>.svg")
@verify_limit()
def badge_svg(public_id: str):
    from credentials.verification import bake_svg

    certificate, credential = signed_for(public_id)
    if credential is None:
        return certificate  # the error response
    response = Response(bake_svg(credential, title=certificate.course_title), mimetype="image/svg+xml")
    response.headers["Content-Disposition"] = f'inline; filename="badge-{certificate.public_id}.svg"'
    return response


@bp.get("/api/v1/openapi.json")
def openapi():
    from credentials.openapi import spec

    response = jsonify(spec(current_app.config["ISSUER_URL"], current_app.config["ISSUER_NAME"]))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# ---- learner: my certificates --------------------------------------------------------------


def _owned_or_404(public_id: str) -> Certificate:
    certificate = services.get_certificate(public_id)
    if certificate is None or not can_download(current_user, certificate):
        abort(404)  # no hint that someone else's certificate exists
    return certificate


@bp.get("/certificates")
@login_required
def my_certificates():
    now = utcnow()
    services.verification_counter.flush()  # show this worker's latest counts
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


def linkedin_url(certificate: Certificate) -> str:
    params = {
        "startTask": "CERTIFICATION_NAME",
        "name": certificate.course_title,
        "organizationName": certificate.issuer_name,
        "issueYear": certificate.awarded_at.year,
        "issueMonth": certificate.awarded_at.month,
        "certUrl": verify_url(certificate.public_id),
        "certId": format_public_id(certificate.public_id),
    }
    if certificate.expires_at:
        params |= {"expirationYear": certificate.expires_at.year, "expirationMonth": certificate.expires_at.month}
    return "https://www.linkedin.com/profile/add?" + urlencode(params)


@bp.get("/certificates/<public_id>")
@login_required
def my_certificate(public_id: str):
    services.verification_counter.flush()
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


def pdf_folder() -> Path:
    return Path(current_app.config["CERTIFICATE_DIR"] or Path(current_app.instance_path) / "certificates")


def stored_pdf(certificate: Certificate, now: datetime) -> bytes:
    """The stored PDF, rendered from the snapshot first if missing, changed, wrongly stamped or unsigned."""
    folder = pdf_folder()
    try:
        credential = json.dumps(openbadges.signed_credential(certificate, issuer(), now=now), ensure_ascii=False)
    except KeyError_ as error:
        current_app.logger.warning(
            "certificate %s PDF made without its signed credential: %s", certificate.public_id, error
        )
        credential = None
    if services.pdf_is_current(certificate, folder, now, signed=credential is not None):
        db.session.commit()  # keeps a freshly signed credential
        return (folder / certificate.pdf_path).read_bytes()
    pdf = render_pdf(replace(certificate_data(certificate, now), credential_json=credential))
    try:
        services.store_pdf(certificate, pdf, folder, now=now, signed=credential is not None)
        db.session.commit()
    except OSError:
        db.session.rollback()
        current_app.logger.exception(
            "could not store the PDF of certificate %s; serving it unstored", certificate.public_id
        )
    return pdf


@bp.get("/certificates/<public_id>.pdf")
@login_required
def certificate_pdf(public_id: str):
    certificate = _owned_or_404(public_id)
    try:
        pdf = stored_pdf(certificate, utcnow())
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


# ---- admins: lifecycle -----------------------------------------------------------------------


@admin_bp.get("/certificates")
@roles_required(Role.ADMIN.value)
def list_certificates():
    now = utcnow()
    query = (request.args.get("q") or "")[:100]
    status = request.args.get("status") if request.args.get("status") in {"valid", "expired", "revoked"} else None
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
@roles_required(Role.ADMIN.value)
def certificate_detail(public_id: str):
    certificate = _admin_certificate(public_id)
    db.session.refresh(certificate)
    events = certificate.events
    now = utcnow()
    return render_template(
        "credentials/admin_detail.html",
        certificate=certificate,
        events=events,
        now=now,
        status=certificate.status_at(now),
        display_id=format_public_id(certificate.public_id),
        revoke_form=RevokeForm(),
        confirm_form=ConfirmForm(),
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
@roles_required(Role.ADMIN.value)
def revoke(public_id: str):
    form = RevokeForm()
    if not form.validate_on_submit():
        certificate = _admin_certificate(public_id)
        now = utcnow()
        return render_template(
            "credentials/admin_detail.html",
            certificate=certificate,
            events=certificate.events,
            now=now,
            status=certificate.status_at(now),
            display_id=format_public_id(certificate.public_id),
            revoke_form=form,
            confirm_form=ConfirmForm(),
        ), 422
    return _admin_action(
        public_id,
        lambda c: services.revoke(
            current_user, c, reason=RevocationReason(form.reason.data), note=form.note.data, now=utcnow()
        ),
        "The certificate is revoked. Verifiers now see “Revoked”.",
    )


@admin_bp.post("/certificates/<public_id>/reinstate")
@roles_required(Role.ADMIN.value)
def reinstate(public_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _admin_action(
        public_id, lambda c: services.reinstate(current_user, c, now=utcnow()), "The certificate is valid again."
    )


@admin_bp.post("/certificates/<public_id>/reissue")
@roles_required(Role.ADMIN.value)
def reissue(public_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _admin_action(
        public_id,
        lambda c: services.reissue(current_user, c, now=utcnow(), why="admin reissue"),
        "Reissued with the same holder name and a new issue time; the PDF will be replaced.",
    )


@admin_bp.get("/name-corrections")
@roles_required(Role.ADMIN.value)
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
@roles_required(Role.ADMIN.value)
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
            f"Approved: {len(reissued)} certificate(s) reissued." if form.approve.data else "Request rejected.",
            "success",
        )
    return redirect(url_for("admin_certificates.name_corrections"), 303)


# the completion page, sharing and the preview image add their routes to these blueprints
from credentials import moments  # noqa: E402
