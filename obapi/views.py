"""The Open Badges API routes (under /ims/ob/v3p0), the consent page, and "Disconnect" on the account page.

The machine endpoints carry no cookies and no CSRF token: registration is open, the token and revocation
endpoints authenticate the app by its secret, and the resource endpoints by the bearer token. The two pages a
person uses (consent, disconnect) are forms with CSRF like every other.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user, login_required

from core.database import utcnow
from core.errors import DomainError
from core.extensions import csrf, db, limiter
from core.forms import ButtonForm
from core.security import CSP
from credentials import clr, openbadges
from credentials.identity import issuer
from credentials.keys import KeyError_
from obapi import api, server, services

bp = Blueprint("obapi", __name__)

MAX_OAUTH_BODY = 16 * 1024  # a registration is a few hundred bytes, a token request less
OAUTH_ENDPOINTS = {"obapi.register", "obapi.token", "obapi.revoke"}
PAGES = {"obapi.authorize", "obapi.privacy", "obapi.disconnect"}


@bp.record_once
def _setup(state) -> None:
    server.init_app(state.app)
    # errors raised before or around our views (404, 405, 413, 429, 500) in the API's own shapes
    state.app.extensions.setdefault("error_renderers", {})[api.API_PREFIX] = _render_error


def _render_error(code: int, message: str):
    if request.endpoint in PAGES:
        return None  # people's pages: the usual HTML error page
    if request.endpoint in OAUTH_ENDPOINTS:
        error = "temporarily_unavailable" if code in (429, 503) else "invalid_request"
        response = jsonify(error=error, error_description=message)
        response.status_code = code
        response.headers["Cache-Control"] = "no-store"
        return response
    return api.status_info(code, message)


def _oauth_error(status: int, error: str, description: str):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _body_too_large():
    if request.content_length is not None and request.content_length > MAX_OAUTH_BODY:
        return _oauth_error(413, "invalid_request", f"The body is larger than {MAX_OAUTH_BODY // 1024} KB.")
    return None


def _limit(key: str):
    return limiter.limit(lambda: current_app.config[key])


# ---- discovery and registration ----------------------------------------------------------------------------


@bp.get(f"{api.API_PREFIX}/discovery")
def discovery():
    response = jsonify(api.discovery_document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.post(f"{api.API_PREFIX}/register")
@csrf.exempt
@_limit("RATELIMIT_OB_REGISTER")
def register():
    """RFC 7591 dynamic registration: 201 with the client's id and secret (the secret is shown this once)."""
    if (too_large := _body_too_large()) is not None:
        return too_large
    if request.mimetype != "application/json":
        return _oauth_error(400, "invalid_client_metadata", "Send the registration as application/json.")
    body = request.stream.read(MAX_OAUTH_BODY + 1)
    if len(body) > MAX_OAUTH_BODY:
        return _oauth_error(413, "invalid_request", f"The body is larger than {MAX_OAUTH_BODY // 1024} KB.")
    try:
        metadata = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _oauth_error(400, "invalid_client_metadata", "The body is not valid JSON.")
    if not isinstance(metadata, dict):
        return _oauth_error(400, "invalid_client_metadata", "The registration must be a JSON object.")
    g.obapi_registration = metadata
    response = server.authorization.create_endpoint_response("client_registration")
    if response.status_code == 201:
        db.session.commit()
    else:
        db.session.rollback()
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- authorization (the learner's consent) ----------------------------------------------------------------


def _refused_page(error: OAuth2Error):
    """An authorization request we cannot send back to the app (unknown client, redirect URI not registered):
    RFC 6749 §4.1.2.1 forbids redirecting, so the learner is told here."""
    reasons = {
        "invalid_client": gettext("This app is not registered with us, or its registration was removed."),
        "invalid_request": gettext(
            "The app asked to send you back to an address it did not register, or left out part of its "
            "request. For your safety, nothing was shared."
        ),
        "unsupported_response_type": gettext("The app asked for a kind of access we do not offer."),
    }
    message = reasons.get(error.error, reasons["invalid_request"])
    return render_template("obapi/refused.html", message=message, detail=error.description or error.error), 400


# RFC 6749 §5.2's character set for error descriptions, which Authlib builds from some of these parameters
_OAUTH_TEXT = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_ECHOED = ("response_type", "client_id", "redirect_uri", "scope", "code_challenge", "code_challenge_method")


def _consent_grant():
    if any(not _OAUTH_TEXT.fullmatch(v) for key in _ECHOED for v in request.args.getlist(key)):
        db.session.rollback()
        return None, _refused_page(InvalidRequestError("Parameters must be printable ASCII without quotes."))
    try:
        return server.authorization.get_consent_grant(end_user=current_user._get_current_object()), None
    except OAuth2Error as error:
        db.session.rollback()
        if error.redirect_uri:  # a known app and a registered address: the app is told, with the state
            return None, server.authorization.handle_error_response(None, error)
        return None, _refused_page(error)


@bp.route(f"{api.API_PREFIX}/authorize", methods=["GET", "POST"])
@login_required
def authorize():
    grant, refusal = _consent_grant()
    if refusal is not None:
        return refusal
    form = ButtonForm()  # the CSRF token; the decision is the button pressed
    if request.method == "POST":
        decisions = request.form.getlist("decision")  # one button pressed: exactly one value, allow or deny
        if not form.validate_on_submit() or decisions not in (["allow"], ["deny"]):
            abort(400)
        decision = decisions[0]
        user = current_user._get_current_object() if decision == "allow" else None
        response = server.authorization.create_authorization_response(grant_user=user, grant=grant)
        if user is not None and response.status_code == 302 and "code=" in response.headers.get("Location", ""):
            services.record_connection(
                user, grant.request.client, grant.request.scope, grant.redirect_uri, now=utcnow()
            )
            db.session.commit()
        else:
            db.session.rollback()
        return response
    client = grant.request.client
    target = urlsplit(grant.redirect_uri)
    response = Response(
        render_template(
            "obapi/consent.html",
            form=form,
            client=client,
            client_host=urlsplit(client.client_uri).hostname if client.client_uri else None,
            return_host=target.netloc,
            can=services.scope_words(grant.request.scope),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    # the browser follows the form's answer (a redirect to the app) only if form-action names the app's origin;
    # the registered URI's host was checked to hold nothing but host-name characters (server.uri_problem)
    response.headers["Content-Security-Policy"] = CSP.replace(
        "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}"
    )
    return response


# ---- tokens -----------------------------------------------------------------------------------------------


def _after_refusal(response):
    db.session.rollback()
    code_id, token_id = g.pop("obapi_replayed_code", None), g.pop("obapi_replayed_refresh", None)
    if code_id is not None or token_id is not None:
        services.revoke_family(code_id=code_id, token_id=token_id, now=utcnow())
        db.session.commit()
    return response


@bp.post(f"{api.API_PREFIX}/token")
@csrf.exempt
@_limit("RATELIMIT_OB_TOKEN")
def token():
    if (too_large := _body_too_large()) is not None:
        return too_large
    response = server.authorization.create_token_response()
    if response.status_code != 200:
        return _after_refusal(response)
    db.session.commit()
    return response


@bp.post(f"{api.API_PREFIX}/revoke")
@csrf.exempt
@_limit("RATELIMIT_OB_TOKEN")
def revoke():
    """RFC 7009: 200 whether the token was live, already revoked or unknown (nothing to learn from the answer)."""
    if (too_large := _body_too_large()) is not None:
        return too_large
    response = server.authorization.create_endpoint_response("revocation")
    if response.status_code == 200:
        db.session.commit()
    else:
        db.session.rollback()
    return response


# ---- resources ----------------------------------------------------------------------------------------------


def _token_for(scope: str):
    """(token, None) or (None, an Imsx_StatusInfo 401/403 with the Bearer challenge)."""
    try:
        return server.require_oauth.acquire_token([scope]), None
    except OAuth2Error as error:
        messages = {
            401: gettext(
                "Send a valid access token (Authorization: Bearer …); it is missing, unknown, expired or revoked."
            ),
            403: gettext("The access token does not carry the scope this operation needs."),
        }
        status = error.status_code if error.status_code in messages else 401
        # RFC 6750 §3: the challenge names the scheme; an error code only when a token was sent
        challenge = 'Bearer realm="Open Badges API"'
        if status == 403:
            challenge += f', error="insufficient_scope", scope="{scope}"'
        elif error.error == "invalid_token":
            challenge += ', error="invalid_token"'
        return None, api.status_info(status, messages[status], headers={"WWW-Authenticate": challenge})


@bp.get(f"{api.API_PREFIX}/credentials")
@_limit("RATELIMIT_OB_API")
def get_credentials():
    token, refusal = _token_for(server.CREDENTIAL_READ)
    if refusal is not None:
        return refusal
    try:
        limit, offset, since = api.page_request(request.args)
    except api.QueryProblem as problem:
        return api.status_info(400, str(problem), minor="invalid_query_parameter")
    now = utcnow()
    total, page = api.select_page(clr.record_certificates(token.user, now), limit=limit, offset=offset, since=since)
    try:
        credentials = [openbadges.signed_credential(c, issuer(), now=now) for c in page]
    except KeyError_:
        db.session.rollback()
        return api.status_info(503, gettext("Credentials cannot be signed right now; try again later."))
    db.session.commit()  # keeps newly signed copies
    response = Response(json.dumps({"credential": credentials}, ensure_ascii=False), mimetype="application/json")
    response.headers.update(api.paging_headers(total=total, limit=limit, offset=offset, since=since))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get(f"{api.API_PREFIX}/profile")
@_limit("RATELIMIT_OB_API")
def get_profile():
    token, refusal = _token_for(server.PROFILE_READ)
    if refusal is not None:
        return refusal
    response = jsonify(api.profile_of(token.user))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post(f"{api.API_PREFIX}/credentials")
@csrf.exempt
def upsert_credential():
    """upsertCredential is not offered: we are the issuer of every credential we hold, and storing other issuers'
    credentials for a learner (a backpack's job) is not part of this platform."""
    return api.status_info(
        405,
        gettext("This provider does not store credentials sent to it; it only serves the ones it issued."),
        headers={"Allow": "GET"},
    )


@bp.put(f"{api.API_PREFIX}/profile")
@csrf.exempt
def put_profile():
    """putProfile is not offered: the learner changes their name on their account page (legal name changes go
    through a reviewed request, since certificates print it)."""
    return api.status_info(
        405,
        gettext("The profile cannot be changed through the API; the learner changes it on their account page."),
        headers={"Allow": "GET"},
    )


# ---- the learner's side ------------------------------------------------------------------------------------


@bp.post("/account/connected-apps/<client_id>/disconnect")
@login_required
def disconnect(client_id: str):
    """Revoke everything the app holds for this learner, at once (its next API call answers 401)."""
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        client = services.disconnect(current_user, client_id, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "info")
        return redirect(url_for("accounts.profile", _anchor="apps-h"), 303)
    db.session.commit()
    flash(
        gettext("%(name)s is disconnected: it can no longer see your certificates or profile.", name=client.name),
        "success",
    )
    return redirect(url_for("accounts.profile", _anchor="apps-h"), 303)


@bp.get("/privacy/connected-apps")
def privacy():
    return render_template("obapi/privacy.html")
