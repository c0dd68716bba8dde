"""OAuth 2.0 clients, authorization codes and tokens for the Open Badges API.

Nothing secret is stored as given: client secrets, codes, access and refresh tokens are kept as the SHA-256 of
a random value of at least 192 bits (a slow hash adds nothing to a value that cannot be guessed), so a copy of
the database lets no one call the API or impersonate an app. Rows are never reused: a code is spent by a
conditional UPDATE, a token is revoked by stamping it, so a value can never come back to life for someone else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from core.database import utcnow
from core.extensions import db


def digest(value: str) -> str:
    """The stored form of a secret value (hex SHA-256)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def scope_list(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split(" ") if s]


class OAuthClient(db.Model):
    """An app registered through RFC 7591 dynamic registration (a backpack, an LER wallet)."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)  # public; 192 random bits
    client_secret_hash: Mapped[str] = mapped_column(String(64))
    client_id_issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    name: Mapped[str] = mapped_column(String(200))
    client_uri: Mapped[str | None] = mapped_column(String(2000))
    # JSON list of the registered redirect URIs, matched exactly (no prefix, no normalization)
    redirect_uris: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(1000))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    # everything else the app registered and we accepted (logo_uri, tos_uri, policy_uri, software_id, contacts…)
    client_metadata: Mapped[str] = mapped_column(Text)

    # ---- authlib ClientMixin --------------------------------------------------------------------

    @property
    def metadata_dict(self) -> dict:
        return json.loads(self.client_metadata)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # OB 3.0 clients always send redirect_uri; never guess one

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope when the app registered all of it; None (invalid_scope) for an empty request or
        any scope it did not register: no silent narrowing, no escalation."""
        requested = scope_list(scope)
        if not requested or not set(requested) <= set(scope_list(self.scope)):
            return None
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in json.loads(self.redirect_uris)  # exact string match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(digest(client_secret), self.client_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        return method in ("client_secret_basic", "client_secret_post")  # revocation: either way of sending it

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class OAuthAuthorizationCode(db.Model):
    """One authorization code: bound to the app, the learner, the redirect URI, the scope and the PKCE challenge;
    short-lived; spent once (``used_at``). Tokens issued from it point back to it, so a replayed code revokes them."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    client: Mapped[OAuthClient] = relationship()
    user: Mapped[User] = relationship()

    # ---- authlib AuthorizationCodeMixin ---------------------------------------------------------

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class OAuthToken(db.Model):
    """An access token and its refresh token, issued to one app for one learner. Revoking stamps both."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (Index("ix_oauth_tokens_user_id_client_id", "user_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # the code the family of tokens descends from (kept across refreshes): a replayed code revokes all of them
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_authorization_codes.id", ondelete="SET NULL"), index=True
    )
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(1000))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    access_expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    client: Mapped[OAuthClient] = relationship()
    user: Mapped[User] = relationship()

    # ---- authlib TokenMixin ---------------------------------------------------------------------

    def check_client(self, client: OAuthClient) -> bool:
        return self.client_id == client.id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at) / timedelta(seconds=1))

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> OAuthClient:
        return self.client
