"""Wallet pages and the VC-API exchange: "Add to wallet" (learner), the QR page, the exchange the wallet posts to,
the VCALM interaction URL, and the learner's whole record (CLR 2.0) as a download."""

from __future__ import annotations

import json

import segno
from flask import Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from core.database import utcnow
from core.errors import DomainError
from core.extensions import csrf, db, limiter
from core.forms import ButtonForm
from credentials import clr, wallet
from credentials.blueprints import bp, signing_unavailable
from credentials.identity import issuer
from credentials.ids import format_public_id
from credentials.keys import KeyError_
from credentials.learner_views import _owned_or_404


def _exchange_limit():
    return limiter.limit(lambda: current_app.config["RATELIMIT_VERIFY"])


@bp.post("/certificates/<public_id>/wallet")
@login_required
def add_to_wallet(public_id: str):
    certificate = _owned_or_404(public_id)
    if certificate.user_id != current_user.id:  # an admin may see it, but only its holder can bind it to a wallet
        abort(404)
    return _open(certificate, back=url_for("credentials.my_certificate", public_id=format_public_id(public_id)))


@bp.post("/certificates/record/wallet")
@login_required
def add_record_to_wallet():
    return _open(None, back=url_for("credentials.my_certificates"))


def _open(certificate, *, back: str):
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        exchange = wallet.open_exchange(current_user, certificate, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        return render_template("credentials/wallet_refused.html", message=error.message, back=back), 409
    db.session.commit()
    return redirect(url_for("credentials.wallet_offer", exchange_id=exchange.public_id), 303)


@bp.get("/certificates/wallet/<exchange_id>")
@login_required
def wallet_offer(exchange_id: str):
    exchange = wallet.find(exchange_id)
    if exchange is None or exchange.user_id != current_user.id:
        abort(404)
    link = wallet.lcw_deep_link(exchange)
    certificate = exchange.certificate
    return render_template(
        "credentials/wallet.html",
        exchange=exchange,
        certificate=certificate,
        display_id=format_public_id(certificate.public_id) if certificate else None,
        state=wallet.state(exchange, utcnow()),
        deep_link=link,
        interaction_url=wallet.interaction_url(exchange),
        qr=segno.make(link, error="m").svg_data_uri(scale=4, border=2, dark="#111"),
        form=ButtonForm(),
    )


def _json_error(error: wallet.ExchangeError):
    return jsonify(error=error.message, status=error.status), error.status


@bp.post("/wallet/exchanges/<exchange_id>")
@csrf.exempt  # wallets post here without cookies or a session: the single-use challenge is the authority
@_exchange_limit()
def wallet_exchange(exchange_id: str):
    limit = wallet.MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        return _json_error(wallet.ExchangeError(_too_large(), 413))
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _json_error(wallet.ExchangeError(_too_large(), 413))
    too_deep = wallet.ExchangeError(
        gettext("The body nests deeper than a DIDAuth presentation. Nothing was issued."), 400
    )
    try:
        message = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return _json_error(wallet.ExchangeError(gettext("The body is not JSON. Nothing was issued."), 400))
    except RecursionError:  # thousands of nested brackets
        return _json_error(too_deep)
    if wallet.too_deep(message):  # canonicalization recurses on each level: refuse before it runs
        return _json_error(too_deep)
    if not isinstance(message, dict):
        return _json_error(wallet.ExchangeError(gettext("The body must be a JSON object. Nothing was issued."), 400))
    now = utcnow()
    exchange = wallet.find(exchange_id)
    try:
        if not message:  # VC-API: the wallet opens the exchange with {} and gets our presentation request
            response = jsonify(wallet.presentation_request(exchange, now=now))
            response.headers["Cache-Control"] = "no-store"  # it carries the single-use challenge
            return response
        if "verifiablePresentation" in message:
            document = wallet.redeem(exchange, message["verifiablePresentation"], vc_api=True, now=now)
            answer = {
                "verifiablePresentation": {
                    "@context": ["https://www.w3.org/ns/credentials/v2"],
                    "type": ["VerifiablePresentation"],
                    "verifiableCredential": [document],
                }
            }
        else:  # the LCW deep link flow posts the presentation itself and takes the credential itself back
            document = wallet.redeem(exchange, message, vc_api=False, now=now)
            answer = document
    except wallet.ExchangeError as error:
        db.session.rollback()
        return _json_error(error)
    except KeyError_ as error:
        db.session.rollback()  # the exchange stays open: the wallet may try again once signing is back
        return signing_unavailable(error)
    db.session.commit()
    response = Response(json.dumps(answer, ensure_ascii=False), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _too_large() -> str:
    return gettext(
        "The body is larger than %(limit)d KB; a DIDAuth presentation is a few KB. Nothing was issued.",
        limit=wallet.MAX_BODY // 1024,
    )


@bp.get("/wallet/interactions/<exchange_id>")
@_exchange_limit()
def wallet_interaction(exchange_id: str):
    """The VCALM interaction URL: JSON for a wallet (the protocols it may continue with), a page for a person."""
    exchange = wallet.find(exchange_id)
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if best == "application/json":
        if exchange is None:
            return jsonify(error=gettext("There is no wallet exchange at this address."), status=404), 404
        response = jsonify(wallet.interaction(exchange))
        response.headers["Vary"] = "Accept"
        return response
    if exchange is None:
        abort(404)
    response = Response(
        render_template(
            "credentials/wallet_interaction.html",
            deep_link=wallet.lcw_deep_link(exchange),
            state=wallet.state(exchange, utcnow()),
        )
    )
    response.headers["Vary"] = "Accept"
    return response


@bp.get("/certificates/record.json")
@login_required
def learner_record():
    """The learner's whole record as a signed CLR 2.0 credential, to keep or to give an employer or college."""
    try:
        document = clr.signed_record(current_user, issuer(), now=utcnow())
    except KeyError_ as error:
        db.session.rollback()
        return signing_unavailable(error)
    db.session.commit()  # keeps newly signed copies of the record's credentials
    response = Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/ld+json")
    response.headers["Content-Disposition"] = 'attachment; filename="learning-record-clr.json"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
