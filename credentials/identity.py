"""Who we are as an issuer, from the app's configuration: the Open Badges issuer profile and the public
address of a certificate's verify page."""

from __future__ import annotations

from flask import current_app

from credentials import openbadges
from credentials.ids import format_public_id


def issuer() -> openbadges.Issuer:
    cfg = current_app.config
    return openbadges.Issuer(cfg["ISSUER_URL"], cfg["ISSUER_NAME"], cfg.get("ISSUER_EMAIL"))


def verify_url(public_id: str) -> str:
    return f"{current_app.config['ISSUER_URL'].rstrip('/')}/verify/{format_public_id(public_id)}"
