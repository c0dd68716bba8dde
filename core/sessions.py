"""Flask's signed-cookie session, with its signing serializer built once per secret instead of per request.

Flask builds a new ``URLSafeTimedSerializer`` (key list, salt, signer options) each time it opens or saves a
session: ~0.05 ms, on every request, for an object that depends only on SECRET_KEY and SECRET_KEY_FALLBACKS.
It is kept here, keyed by those two values, so a changed or rotated key is used from the next request on. The
cookie, its signature, its lifetime and every cookie attribute are Flask's own (same class, same salt, digest,
key derivation and JSON serializer); the signed-in lane (courses/lane.py) opens cookies with this same serializer.
"""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class SessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._kept: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._kept
        if kept is not None and kept[0] == key:
            return kept[1]
        serializer = super().get_signing_serializer(app)
        self._kept = (key, serializer)
        return serializer
