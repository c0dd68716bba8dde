"""The two blueprints the credentials pages are added to, and what their view modules share.

``credentials`` holds the public verification pages, the documents machines fetch, the learner's own
certificates and the moments (completion, sharing, preview image); ``admin_certificates`` holds the admins'
pages. Each view module adds its routes to one of these; the factory imports them all before registering.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify
from flask_babel import gettext

from core.extensions import limiter

bp = Blueprint("credentials", __name__)
admin_bp = Blueprint("admin_certificates", __name__, url_prefix="/admin")


@bp.record_once
def _fast_lane(state) -> None:
    from credentials.lane import install  # the answers' fast lane in front of the app (lane.py)

    install(state.app)


def ld_json(document: dict) -> Response:
    response = Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/ld+json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def signing_unavailable(error: Exception):
    current_app.logger.error("signing unavailable: %s", error)
    return jsonify(
        status="unavailable",
        message=gettext(
            "Signed credentials are temporarily unavailable: the issuer's signing key is not configured. "
            "Verification of certificates still works."
        ),
    ), 503


def verify_limit():
    return limiter.limit(lambda: current_app.config["RATELIMIT_VERIFY"])
