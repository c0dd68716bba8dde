"""Wallet issuance over a VC-API exchange: "Add to wallet" opens a single-use, expiring exchange; the wallet answers
with a DIDAuth presentation and receives the credential bound to its DID, freshly signed. Flush only; views commit.

Two ways in, both for the DCC's Learner Credential Wallet and any VC-API wallet:

- the LCW deep link ``https://lcw.app/request.html?issuer=…&auth_type=bearer&challenge=…&vc_request_url=…``: the
  wallet signs a presentation with the challenge and POSTs it, bare, to ``vc_request_url`` (the exchange URL);
- the VCALM interaction URL ``…/wallet/interactions/<id>?iuv=1``: a GET (JSON) names the exchange under
  ``protocols.vcapi``; the wallet POSTs ``{}`` there, gets a ``verifiablePresentationRequest`` (DIDAuthentication,
  challenge, domain), and POSTs ``{"verifiablePresentation": …}`` back.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select, update

from accounts.models import User
from core.errors import DomainError
from core.extensions import db
from credentials import clr, didauth, identity, openbadges
from credentials.models import Certificate, CertificateEvent, CertificateStatus, WalletExchange

EXCHANGE_TTL = timedelta(minutes=15)  # long enough to install the wallet app from the store and scan again
MAX_BODY = 64 * 1024  # a DIDAuth presentation is ~1.5 KB
LCW_REQUEST = "https://lcw.app/request.html"


MAX_DEPTH = 12  # a wrapped DIDAuth presentation nests 4 levels; canonicalization recurses on each


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON nests deeper than ``limit`` (checked without recursion)."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


class ExchangeError(Exception):
    """The exchange cannot go on; ``status`` is the HTTP status, the message says why. Nothing was issued."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# ---- opening an exchange (the learner, signed in) -----------------------------------------------


def open_exchange(user: User, certificate: Certificate | None, *, now: datetime) -> WalletExchange:
    """A new exchange for one of the user's certificates, or for their whole record (``certificate`` None).

    Raises DomainError when the certificate is not valid or the record is empty. Flush only; the caller commits.
    """
    if certificate is not None:
        if certificate.user_id != user.id:  # views load the user's own certificates; this keeps the rule here too
            raise DomainError(gettext("You can add only your own certificates to a wallet."))
        if certificate.status_at(now) != CertificateStatus.VALID:
            raise DomainError(gettext("Only a valid certificate can be added to a wallet."))
    elif not clr.record_certificates(user, now):
        raise DomainError(gettext("Your record is empty: it holds your valid certificates, and you have none yet."))
    exchange = WalletExchange(
        public_id=secrets.token_urlsafe(24),
        challenge=secrets.token_urlsafe(24),
        user_id=user.id,
        certificate_id=certificate.id if certificate is not None else None,
        created_at=now,
        expires_at=now + EXCHANGE_TTL,
    )
    db.session.add(exchange)
    db.session.flush()
    return exchange


def _base_url() -> str:
    return current_app.config["ISSUER_URL"].rstrip("/")


def domain() -> str:
    """The domain a VC-API presentation must name: our public host (and port)."""
    return urlsplit(_base_url()).netloc


def exchange_url(exchange: WalletExchange) -> str:
    return f"{_base_url()}/wallet/exchanges/{exchange.public_id}"


def interaction_url(exchange: WalletExchange) -> str:
    return f"{_base_url()}/wallet/interactions/{exchange.public_id}?iuv=1"


def lcw_deep_link(exchange: WalletExchange) -> str:
    query = {
        "issuer": _base_url(),
        "auth_type": "bearer",
        "challenge": exchange.challenge,
        "vc_request_url": exchange_url(exchange),
    }
    return f"{LCW_REQUEST}?{urlencode(query)}"


def interaction(exchange: WalletExchange) -> dict:
    """What a GET of the interaction URL answers a wallet: the protocols it can continue with."""
    return {"protocols": {"vcapi": exchange_url(exchange), "lcw": lcw_deep_link(exchange)}}


def find(public_id: str) -> WalletExchange | None:
    if not isinstance(public_id, str) or len(public_id) > 43:
        return None
    return db.session.scalar(select(WalletExchange).where(WalletExchange.public_id == public_id))


def state(exchange: WalletExchange, now: datetime) -> str:
    """ "open", "used" or "expired"."""
    if exchange.redeemed_at is not None:
        return "used"
    return "expired" if exchange.expires_at <= now else "open"


# ---- the wallet's side (no session: the challenge is the authority) -------------------------------


def _usable(exchange: WalletExchange | None, now: datetime) -> WalletExchange:
    if exchange is None:
        raise ExchangeError(gettext("There is no wallet exchange at this address."), 404)
    if exchange.redeemed_at is not None:
        raise ExchangeError(
            gettext("This exchange was already used: its challenge is valid once. Nothing was issued."), 409
        )
    if exchange.expires_at <= now:
        raise ExchangeError(
            gettext(
                "This exchange expired at %(time)s UTC. Open “Add to wallet” again for a new QR code. "
                "Nothing was issued.",
                time=openbadges.iso(exchange.expires_at),
            ),
            410,
        )
    certificate = exchange.certificate
    if certificate is not None and (
        certificate.user_id != exchange.user_id or certificate.status_at(now) != CertificateStatus.VALID
    ):
        raise ExchangeError(
            gettext("This certificate is no longer valid, so it cannot be issued. Nothing was issued."), 409
        )
    if certificate is None and not clr.record_certificates(db.session.get(User, exchange.user_id), now):
        raise ExchangeError(gettext("The record holds no valid certificate any more. Nothing was issued."), 409)
    return exchange


def presentation_request(exchange: WalletExchange | None, *, now: datetime) -> dict:
    """The VC-API answer to ``{}``: a DIDAuthentication request with our challenge and domain. Raises ExchangeError."""
    exchange = _usable(exchange, now)
    return {
        "verifiablePresentationRequest": {
            "query": [
                {
                    "type": "DIDAuthentication",
                    "acceptedMethods": [{"method": "key"}],
                    "acceptedCryptosuites": [
                        {"cryptosuite": "eddsa-rdfc-2022"},
                        {"cryptosuite": "Ed25519Signature2020"},
                    ],
                }
            ],
            "challenge": exchange.challenge,
            "domain": domain(),
            "interact": {
                "service": [
                    {"type": "UnmediatedHttpPresentationService2021", "serviceEndpoint": exchange_url(exchange)}
                ]
            },
        }
    }


def redeem(exchange: WalletExchange | None, presentation: object, *, vc_api: bool, now: datetime) -> dict:
    """Check the wallet's DIDAuth presentation and return the credential bound to the holder's DID, freshly signed.

    ``vc_api``: the presentation came wrapped (``{"verifiablePresentation": …}``) after our request, which named
    our domain, so the proof must name it too; the LCW deep link flow carries no domain (one is checked if given).
    Raises ExchangeError (nothing written), or keys.KeyError_ after the exchange was claimed (the caller rolls back).
    Flush only; the caller commits.
    """
    exchange = _usable(exchange, now)
    try:
        holder = didauth.check(presentation, challenge=exchange.challenge, domain=domain(), domain_required=vc_api)
    except didauth.PresentationRefused as refused:
        raise ExchangeError(
            gettext("The presentation was refused: %(why)s. Nothing was issued.", why=str(refused)), refused.status
        ) from None
    # one conditional UPDATE decides: a replay, or a second request racing this one, changes no row
    claimed = db.session.execute(
        update(WalletExchange)
        .where(
            WalletExchange.id == exchange.id,
            WalletExchange.redeemed_at.is_(None),
            WalletExchange.expires_at > now,
        )
        .values(redeemed_at=now, holder_did=holder.holder, suite=holder.suite)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise ExchangeError(
            gettext("This exchange was already used: its challenge is valid once. Nothing was issued."), 409
        )
    issuer = identity.issuer()
    certificate = exchange.certificate
    if certificate is None:
        user = db.session.get(User, exchange.user_id)
        return clr.signed_record(user, issuer, now=now, holder=holder.holder)
    credential = bound_credential(certificate, issuer, holder.holder, now=now)
    db.session.add(
        CertificateEvent(
            certificate_id=certificate.id,
            actor_id=exchange.user_id,
            action="wallet",
            at=now,
            detail={"holder": holder.holder, "suite": holder.suite},
        )
    )
    db.session.flush()
    return credential


def bound_credential(certificate: Certificate, issuer: openbadges.Issuer, holder: str, *, now: datetime) -> dict:
    """The certificate's credential with ``credentialSubject.id`` = the holder's DID, signed now. Raises
    keys.KeyError_. The same id and status entry as the credential employers verify: revoking one revokes both."""
    credential = openbadges.build_credential(certificate, issuer)
    credential["credentialSubject"] = {"id": holder, **credential["credentialSubject"]}
    return openbadges._sign(credential, issuer, now)
