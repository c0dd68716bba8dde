"""The documents machines fetch, all public: a certificate's signed credential (JSON-LD) and SVG badge, the
Bitstring status lists (cached, gzipped, ETag), the issuer's DID document and profile, the OpenAPI description."""

from __future__ import annotations

import hashlib
import json

from flask import Response, current_app, jsonify, request
from flask_babel import gettext

from core.database import utcnow
from core.extensions import db, limiter
from credentials import openbadges, services, status_cache
from credentials.blueprints import bp, ld_json, signing_unavailable, verify_limit
from credentials.identity import issuer
from credentials.ids import normalize_public_id
from credentials.keys import KeyError_, did_document


def signed_for(public_id: str):
    """(certificate, signed credential), or (error response, None) for unknown IDs or a missing key."""
    canonical_id = normalize_public_id(public_id)
    certificate = services.lookup(canonical_id) if canonical_id else None
    if certificate is None:
        return (jsonify(status="not_found", message=gettext("No certificate has this ID.")), 404), None
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


@bp.get("/credentials/status/<int:list_id>")
@limiter.limit(lambda: current_app.config["RATELIMIT_STATUS_LIST"])
def status_list(list_id: int):
    try:
        cached = status_cache.served_list(list_id)
    except LookupError:
        return jsonify(status="not_found", message=gettext("No such status list.")), 404
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


@bp.get("/credentials/<public_id>.png")
@verify_limit()
def badge_png(public_id: str):
    """The baked PNG badge (the one Learner Credential Wallet imports): the certificate as drawn, with the signed
    credential in an iTXt chunk. Served for revoked certificates too, as the SVG is: the status list says so."""
    from credentials.preview import bake_png, cached_png
    from credentials.storage import pdf_storage, stored_pdf

    certificate, credential = signed_for(public_id)
    if credential is None:
        return certificate  # the error response
    try:
        pdf = stored_pdf(certificate, utcnow())
        db.session.commit()  # keeps the stored PDF's hash
        digest = certificate.pdf_sha256 or hashlib.sha256(pdf).hexdigest()
        png = bake_png(cached_png(pdf_storage(), certificate.public_id, digest, pdf), credential)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("could not draw the PNG badge of certificate %s", certificate.public_id)
        response = Response("The badge image is being prepared. Try again in a minute.", 503)
        response.headers["Retry-After"] = "60"
        return response
    response = Response(png, mimetype="image/png")
    response.headers["Content-Disposition"] = f'inline; filename="badge-{certificate.public_id}.png"'
    # short, as for the certificate preview: a revocation re-stamps the PDF and so the image
    response.headers["Cache-Control"] = "public, max-age=300"
    response.set_etag(hashlib.sha256(png).hexdigest()[:32])
    return response.make_conditional(request)


@bp.get("/api/v1/openapi.json")
def openapi():
    from credentials.openapi import spec

    response = jsonify(spec(current_app.config["ISSUER_URL"], current_app.config["ISSUER_NAME"]))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
