"""Public verification: the verify page (by ID), the certificate's verify result, the JSON facts API, and
checking a submitted credential, PDF or badge (page and API). No account needed."""

from __future__ import annotations

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from werkzeug.http import parse_options_header

from core.database import utcnow
from core.extensions import csrf, db
from credentials import answers, moments, openbadges, services
from credentials import programs as program_certificates
from credentials.blueprints import bp, signing_unavailable, verify_limit
from credentials.counter import count_verification
from credentials.document_views import credential_json
from credentials.forms import CredentialUploadForm, VerifyForm
from credentials.identity import issuer, verify_url
from credentials.ids import format_public_id, normalize_public_id
from credentials.keys import KeyError_
from credentials.models import StatusList
from credentials.presenters import public_facts


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
    shared = answers.page_is_shared()
    # a signed-in viewer's page is kept per holder-or-not (the holder's own page may differ): read who holds it
    row = answers.find(canonical_id, page=True, holder=not shared) if canonical_id else None
    if row is not None and wants_credential():
        return credential_json(format_public_id(canonical_id))
    if row is None:
        return render_template(
            "credentials/verify_result.html",
            certificate=None,
            malformed=canonical_id is None,
            typed=public_id[:64],
            form=VerifyForm(),
        ), 404
    count_verification(row.id, now)
    if row.program_id is None and shared:
        return answers.page_body(row, now, lambda view, status: _result_page(view, status, now, public_id))
    if row.program_id is None and current_user.is_authenticated and current_app.config["VERIFY_CACHE_SIZE"] > 0:
        # a course certificate seen by a signed-in person: the page once per certificate state, filled in with
        # their header's values and this request's "Checked …" time (core/skeleton.py, answers.signed_in_page)
        return answers.signed_in_page(row, now, lambda view, status: _result_page(view, status, now, public_id))
    # the full path: a program's stacked certificates, or a visitor with a session (their own navigation)
    certificate = services.lookup(canonical_id)
    return _result_page(certificate, certificate.status_at(now), now, public_id)


def _result_page(certificate, status, now, display_id: str) -> str:
    return answers.render_page(
        certificate=certificate,
        now=now,
        status=status,
        display_id=display_id,
        verify_url=verify_url(certificate.public_id),
        parts=program_certificates.parts_of(certificate),
        fmt=format_public_id,
        earned=moments.what_was_earned(certificate),
        preview_url=moments.absolute_url(
            "credentials.certificate_png", public_id=display_id, v=moments.preview_version(certificate, now)
        ),
        preview_height=927 if current_app.config["CERTIFICATE_PAPER"] == "Letter" else 849,
    )


@bp.get("/api/v1/certificates/<public_id>")
@verify_limit()
def api_certificate(public_id: str):
    now = utcnow()
    canonical_id = normalize_public_id(public_id)
    if canonical_id is None:
        return jsonify(status="invalid_id", message=gettext("Certificate IDs have 28 letters and digits.")), 400
    row = answers.find(canonical_id)
    if row is None:
        return jsonify(status="not_found", message=gettext("No certificate has this ID.")), 404
    count_verification(row.id, now)
    if row.program_id is None:
        response = current_app.response_class(answers.facts_body(row, now), mimetype=current_app.json.mimetype)
    else:  # the stacked course certificates' statuses: the full path
        response = jsonify(public_facts(services.lookup(canonical_id), now))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"  # any employer system may read public facts
    return response


CREDENTIAL_TYPES = ("application/ld+json", "application/vc+ld+json", "application/vc")


def _quality(media_type: str, *, any_type: bool) -> float:
    """The q the request's Accept header gives ``media_type``: that of its most specific entry (exact, then
    ``major/*``, then ``*/*`` when ``any_type``). Parameters such as ``profile="…"`` do not change the media
    type (RFC 9110, 12.5.1), so they are set aside; werkzeug's own matching would treat them as another type."""
    major = media_type.split("/", 1)[0]
    ranks = {media_type: 3, f"{major}/*": 2} | ({"*/*": 1} if any_type else {})
    best_rank, best_q = 0, 0.0
    for value, q in request.accept_mimetypes:
        rank = ranks.get(parse_options_header(value)[0].lower(), 0)
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q


def wants_credential() -> bool:
    """The client prefers the signed credential (JSON-LD) to the HTML page; ``*/*`` alone means the page."""
    credential = max(_quality(media_type, any_type=False) for media_type in CREDENTIAL_TYPES)
    return credential > 0 and credential > _quality("text/html", any_type=True)


@bp.after_request
def _vary_on_accept(response):
    # the verify address answers HTML or the JSON-LD credential by Accept: caches must key on it
    if request.endpoint == "credentials.verify_certificate":
        response.vary.add("Accept")
    return response


def online_check(credential: dict):
    """Check a submitted credential: ours against our published keys, live status lists and records; another
    issuer's against its own DID and status lists (credentials/displayer.py)."""
    from credentials import displayer, verification
    from credentials.keys import public_keys

    now = utcnow()

    def status_bits(list_id: int, purpose: str) -> bytes | None:
        status_list = db.session.get(StatusList, list_id)
        if status_list is None or status_list.purpose != purpose:
            return None
        return openbadges.list_bits(status_list, now)  # the served list's bits, without compressing them

    the_issuer = issuer()
    prefix = the_issuer.base_url + "/credentials/"

    def record(credential_id: str) -> verification.Record | None:
        canonical = normalize_public_id(credential_id[len(prefix) :]) if credential_id.startswith(prefix) else None
        certificate = services.lookup(canonical) if canonical else None
        if certificate is None:
            return None
        suspended = certificate.revoked_at is None and certificate.suspended_at_time(now)
        return verification.Record(
            holder_name=certificate.holder_name,
            course_title=certificate.course_title,
            awarded=openbadges.iso(certificate.awarded_at),
            issued=openbadges.iso(certificate.issued_at),
            suspended=suspended,
            suspended_until=openbadges.iso(certificate.suspended_until)
            if suspended and certificate.suspended_until
            else None,
        )

    return displayer.check(
        credential, issuer=the_issuer, keys=public_keys(), status_bits=status_bits, now=now, record=record
    )


@bp.post("/api/v1/verify")
@csrf.exempt  # a public API for machines: no cookies, no session, nothing to forge
@verify_limit()
def api_verify():
    from credentials.verification import SubmissionError, read_submission

    # a multipart upload's "file" part, else the body itself, whatever its declared type: curl -d sends a JSON
    # credential as application/x-www-form-urlencoded (the input guard keeps that raw body for us)
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
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
            form.file.errors = [
                gettext("Credential checks are briefly unavailable. Check the certificate by its ID instead.")
            ]
            status = 503
    elif form.errors:
        status = 422
    return render_template("credentials/verify_upload.html", form=form, report=report), status
