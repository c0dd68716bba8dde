"""The OAuth 2.0 authorization server and resource protector of the Open Badges API, built on Authlib.

What Authlib does: the protocol (request parsing, client authentication, grant and endpoint flow, error bodies).
What this module decides: the storage (hashed at rest, obapi/models.py), PKCE with S256 only and always, exact
redirect URIs, registration rules, single-use codes and rotating refresh tokens claimed by conditional UPDATEs
(two racing requests cannot both win), and revoking a whole token family when a spent code or a rotated refresh
token is presented again (RFC 9700 §2.1.2, §4.14.2).

OAuth error descriptions stay English ASCII: RFC 6749 §5.2 limits ``error_description`` to US-ASCII, and they are
read by app developers, not by learners (the consent and error pages people see are translated).

Nothing here commits: the views commit a successful answer and roll back every refusal.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.requests import JsonPayload, JsonRequest
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint, InvalidClientMetadataError, InvalidRedirectURIError
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import g
from flask import request as flask_request
from sqlalchemy import select, update

from accounts.models import User
from core.database import utcnow
from core.extensions import db
from obapi.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, digest, scope_list

SCOPE_BASE = "https://purl.imsglobal.org/spec/ob/v3p0/scope/"
CREDENTIAL_READ = SCOPE_BASE + "credential.readonly"
CREDENTIAL_UPSERT = SCOPE_BASE + "credential.upsert"
PROFILE_READ = SCOPE_BASE + "profile.readonly"
PROFILE_UPDATE = SCOPE_BASE + "profile.update"
OFFLINE_ACCESS = "offline_access"  # asked for by the spec's own registration example; refresh tokens come anyway
SPEC_SCOPES = (CREDENTIAL_READ, CREDENTIAL_UPSERT, PROFILE_READ, PROFILE_UPDATE)
# what we grant: we are the issuer, so apps read the learner's credentials and profile; writing them is not offered
# (see obapi/api.py: upsertCredential and putProfile answer 405)
OFFERED_SCOPES = (CREDENTIAL_READ, PROFILE_READ)

CODE_LIFETIME = timedelta(minutes=5)  # RFC 6749 §4.1.2: "a maximum ... of 10 minutes is RECOMMENDED"
ACCESS_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=90)  # rotated on every use; the learner can end it at once from the account page
MAX_SECRET = 256  # no token, code or secret of ours is longer: anything longer is refused before hashing
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
MAX_REDIRECT_URIS = 10
MAX_URI = 2000
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _random_value(*_args, **_kwargs) -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def _bounded(value) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_SECRET else None


# ---- registration rules ---------------------------------------------------------------------------


def uri_problem(uri, *, name: str) -> str | None:
    """Why ``uri`` may not be registered, or None. https anywhere; http only on a loopback address (a native app's
    local listener, RFC 8252 §7.3); never a fragment, user information, spaces or control characters."""
    if not isinstance(uri, str) or not uri:
        return f"{name} must be a non-empty string."
    if len(uri) > MAX_URI:
        return f"{name} is longer than {MAX_URI} characters."
    if _CONTROL.search(uri) or "\\" in uri:
        return f"{name} contains spaces, control characters or backslashes."
    try:
        parts = urlsplit(uri)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return f"{name} is not a valid URL."
    if "#" in uri:
        return f"{name} must not contain a fragment (RFC 6749 section 3.1.2)."
    if "@" in parts.netloc:
        return f"{name} must not contain user information (user@host)."
    if not host:
        return f"{name} must be an absolute URL with a host."
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", host):
        # the host goes into the consent page's CSP form-action: letters, digits, dots, dashes (or an IPv6 literal)
        return f"{name} has characters a host name cannot have."
    scheme = parts.scheme.lower()
    if scheme == "https" or (scheme == "http" and host in LOOPBACK_HOSTS):
        return None
    return f"{name} must use https (http is accepted only on a loopback address)."


def _text(metadata: dict, key: str, *, limit: int, required: bool = False) -> str | None:
    value = metadata.get(key)
    if value is None:
        if required:
            raise InvalidClientMetadataError(f"{key} is required.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidClientMetadataError(f"{key} must be a non-empty string.")
    if len(value) > limit or re.search(r"[\x00-\x1f\x7f]", value):
        raise InvalidClientMetadataError(f"{key} is longer than {limit} characters or contains control characters.")
    return value.strip()


def clean_metadata(metadata: dict) -> dict:
    """The registration request reduced to what we accept, or InvalidClientMetadataError / InvalidRedirectURIError
    naming the first problem. Unknown members are ignored (RFC 7591 §2)."""
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectURIError("redirect_uris must be a non-empty array of URLs.")
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectURIError(f"At most {MAX_REDIRECT_URIS} redirect_uris may be registered.")
    for index, uri in enumerate(uris):
        problem = uri_problem(uri, name=f"redirect_uris[{index}]")
        if problem:
            raise InvalidRedirectURIError(problem)
    cleaned: dict = {"redirect_uris": list(dict.fromkeys(uris))}
    cleaned["client_name"] = _text(metadata, "client_name", limit=200, required=True)
    for key in ("client_uri", "logo_uri", "tos_uri", "policy_uri"):
        if metadata.get(key) is not None or key == "client_uri":
            problem = uri_problem(metadata.get(key), name=key)
            if problem:
                raise InvalidClientMetadataError(problem)
            cleaned[key] = metadata[key]
    for key in ("software_id", "software_version"):
        value = _text(metadata, key, limit=200)
        if value is not None:
            cleaned[key] = value
    contacts = metadata.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list) or len(contacts) > 10:
            raise InvalidClientMetadataError("contacts must be an array of at most 10 strings.")
        cleaned["contacts"] = [_text({"contacts": c}, "contacts", limit=254) for c in contacts]
    cleaned["scope"] = _registered_scope(metadata.get("scope"))
    grant_types = metadata.get("grant_types", ["authorization_code", "refresh_token"])
    if (
        not isinstance(grant_types, list)
        or "authorization_code" not in grant_types
        or not set(grant_types) <= {"authorization_code", "refresh_token"}
    ):
        raise InvalidClientMetadataError(
            "grant_types must be authorization_code and refresh_token (or authorization_code alone)."
        )
    cleaned["grant_types"] = ["authorization_code", "refresh_token"]
    if metadata.get("response_types", ["code"]) != ["code"]:
        raise InvalidClientMetadataError("response_types must be code.")
    cleaned["response_types"] = ["code"]
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadataError(
            "token_endpoint_auth_method must be client_secret_basic or client_secret_post "
            "(public clients are not accepted: every app gets its own secret)."
        )
    cleaned["token_endpoint_auth_method"] = method
    return cleaned


def _registered_scope(scope) -> str:
    """The Open Badges scopes we grant out of those asked for. The spec's own example registers
    ``credential.upsert`` too: a scope of the spec we do not offer is left out (RFC 7591 §2 lets the server
    replace requested values, and the answer says what was registered); a scope outside the spec is refused."""
    if not isinstance(scope, str) or not scope.strip() or len(scope) > 1000:
        raise InvalidClientMetadataError("scope is required: a space-separated list of Open Badges scopes.")
    requested = scope_list(scope)
    unknown = [s for s in requested if s not in SPEC_SCOPES and s != OFFLINE_ACCESS]
    if unknown:
        raise InvalidClientMetadataError(
            "scope may hold only the Open Badges 3.0 scopes and offline_access; unknown: " + _ascii(unknown[0])
        )
    granted = [s for s in dict.fromkeys(requested) if s in OFFERED_SCOPES or s == OFFLINE_ACCESS]
    if not any(s in OFFERED_SCOPES for s in granted):
        raise InvalidClientMetadataError(
            "None of the requested scopes is offered here; ask for credential.readonly and/or profile.readonly."
        )
    return " ".join(granted)


def _ascii(value: str) -> str:
    return value.encode("ascii", "replace").decode()[:100].replace('"', "'").replace("\\", "/")


# ---- Authlib wiring -----------------------------------------------------------------------------------


class _ParsedJson(JsonPayload):
    def __init__(self, data: dict) -> None:
        self._data = data

    @property
    def data(self):
        return self._data


class Server(AuthorizationServer):
    def create_json_request(self, request):
        # the registration view has already read the body under a size cap and parsed it (g.obapi_registration)
        json_request = JsonRequest(flask_request.method, flask_request.url, flask_request.headers)
        json_request.payload = _ParsedJson(g.obapi_registration)
        return json_request


def query_client(client_id) -> OAuthClient | None:
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 64:
        return None
    return db.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))


def save_token(token: dict, request) -> None:
    now = utcnow()
    code = request.authorization_code
    parent = request.refresh_token  # a refresh: the new pair belongs to the same family as the old one
    db.session.add(
        OAuthToken(
            client_id=request.client.id,
            user_id=request.user.id,
            code_id=code.id if code is not None else (parent.code_id if parent is not None else None),
            access_token_hash=digest(token["access_token"]),
            refresh_token_hash=digest(token["refresh_token"]) if token.get("refresh_token") else None,
            scope=token.get("scope") or "",
            issued_at=now,
            access_expires_at=now + timedelta(seconds=token["expires_in"]),
            refresh_expires_at=now + REFRESH_LIFETIME if token.get("refresh_token") else None,
        )
    )
    db.session.flush()


def _active_user(user_id: int) -> User | None:
    user = db.session.get(User, user_id)
    return user if user is not None and user.active else None


class S256CodeChallenge(CodeChallenge):
    """PKCE is required of every client and only S256 is accepted: no ``plain``, and a missing method (which
    RFC 7636 reads as plain) is refused rather than defaulted, so there is no downgrade to argue about."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256; plain (or no method, which means plain) is refused."
            )
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def generate_authorization_code(self) -> str:
        return _random_value()

    def save_authorization_code(self, code: str, request) -> None:
        data = request.payload.data
        db.session.add(
            OAuthAuthorizationCode(
                code_hash=digest(code),
                client_id=request.client.id,
                user_id=request.user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                expires_at=utcnow() + CODE_LIFETIME,
            )
        )
        db.session.flush()

    def query_authorization_code(self, code, client: OAuthClient) -> OAuthAuthorizationCode | None:
        """The code, claimed for this request by one conditional UPDATE; a spent one marks its family for
        revocation (the view does it after rolling the refusal back) and is refused."""
        code = _bounded(code)
        if code is None:
            raise InvalidGrantError("Unknown code.")
        row = db.session.scalar(
            select(OAuthAuthorizationCode).where(
                OAuthAuthorizationCode.code_hash == digest(code), OAuthAuthorizationCode.client_id == client.id
            )
        )
        if row is None:
            raise InvalidGrantError("Unknown code (or a code issued to another client).")
        now = utcnow()
        if row.used_at is None and row.expires_at <= now:
            raise InvalidGrantError("The code expired: codes are valid for 5 minutes. Ask the learner again.")
        claimed = db.session.execute(
            update(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.id == row.id, OAuthAuthorizationCode.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            g.obapi_replayed_code = row.id
            raise InvalidGrantError(
                "The code was already used. Every token issued from it has been revoked (RFC 6749 section 4.1.2)."
            )
        return row

    def delete_authorization_code(self, authorization_code) -> None:
        """Kept, marked spent (query_authorization_code): a replay must still be recognized."""

    def authenticate_user(self, authorization_code: OAuthAuthorizationCode) -> User | None:
        return _active_user(authorization_code.user_id)


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: each refresh token works once

    def authenticate_refresh_token(self, refresh_token) -> OAuthToken | None:
        refresh_token = _bounded(refresh_token)
        if refresh_token is None:
            return None
        row = db.session.scalar(select(OAuthToken).where(OAuthToken.refresh_token_hash == digest(refresh_token)))
        if row is None:
            return None
        if row.client_id != self.request.client.id:
            return None  # another app's token: invalid_grant, and nothing of the owner's is touched
        now = utcnow()
        if row.refresh_expires_at is not None and row.refresh_expires_at <= now and row.revoked_at is None:
            raise InvalidGrantError("The refresh token expired. Ask the learner to connect again.")
        claimed = db.session.execute(
            update(OAuthToken)
            .where(OAuthToken.id == row.id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            g.obapi_replayed_refresh = row.id
            raise InvalidGrantError(
                "The refresh token was already used or revoked. Every token of this connection is now revoked."
            )
        return row

    def authenticate_user(self, refresh_token: OAuthToken) -> User | None:
        return _active_user(refresh_token.user_id)

    def revoke_old_credential(self, refresh_token: OAuthToken) -> None:
        """Already done: the old pair was revoked when its refresh token was claimed."""


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint) -> OAuthToken | None:
        token_string = _bounded(token_string)
        if token_string is None:
            return None
        hashed = digest(token_string)
        columns = [OAuthToken.access_token_hash, OAuthToken.refresh_token_hash]
        if token_type_hint == "refresh_token":  # noqa: S105  (a hint name, not a secret)
            columns.reverse()
        for column in columns:
            row = db.session.scalar(select(OAuthToken).where(column == hashed))
            if row is not None:
                return row
        return None

    def revoke_token(self, token: OAuthToken, request) -> None:
        # RFC 7009 §2.1: revoking either half ends the pair (one row holds both)
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            db.session.flush()


class Registration(ClientRegistrationEndpoint):
    """Open registration (OB 3.0 §7.1.1: a backpack registers itself; there is no initial access token)."""

    def authenticate_token(self, request):
        return True

    def extract_client_metadata(self, request):
        request.payload._data = clean_metadata(request.payload.data)
        return super().extract_client_metadata(request)

    def get_server_metadata(self) -> dict:
        return {
            "scopes_supported": [*OFFERED_SCOPES, OFFLINE_ACCESS],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
        }

    def generate_client_id(self, request) -> str:
        return secrets.token_urlsafe(24)  # 192 bits

    def generate_client_secret(self, request) -> str:
        return _random_value()

    def save_client(self, client_info: dict, client_metadata: dict, request) -> OAuthClient:
        extra = {k: v for k, v in client_metadata.items() if k not in ("redirect_uris", "scope", "client_name")}
        client = OAuthClient(
            client_id=client_info["client_id"],
            client_secret_hash=digest(client_info["client_secret"]),
            client_id_issued_at=utcnow(),
            name=client_metadata["client_name"],
            client_uri=client_metadata.get("client_uri"),
            redirect_uris=json.dumps(client_metadata["redirect_uris"]),
            scope=client_metadata["scope"],
            token_endpoint_auth_method=client_metadata["token_endpoint_auth_method"],
            client_metadata=json.dumps(extra),
        )
        db.session.add(client)
        db.session.flush()
        return client


class TokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string) -> OAuthToken | None:
        token_string = _bounded(token_string)
        if token_string is None:
            return None
        return db.session.scalar(select(OAuthToken).where(OAuthToken.access_token_hash == digest(token_string)))

    def validate_token(self, token, scopes, request) -> None:
        super().validate_token(token, scopes, request)
        if not token.user.active:  # a deactivated learner's connections stop answering at once
            raise InvalidTokenError()


authorization = Server()
authorization.register_grant(CodeGrant, [S256CodeChallenge(required=True)])
authorization.register_grant(RefreshGrant)
authorization.register_endpoint(Revocation)
authorization.register_endpoint(Registration)

require_oauth = ResourceProtector()
require_oauth.register_token_validator(TokenValidator())


def init_app(app) -> None:
    authorization.init_app(app, query_client=query_client, save_token=save_token)
    # after init_app (which installs Authlib's default generator): our random values and lifetimes
    authorization.register_token_generator(
        "default",
        BearerTokenGenerator(
            _random_value, _random_value, lambda client, grant_type: int(ACCESS_LIFETIME.total_seconds())
        ),
    )


__all__ = ["InvalidScopeError", "authorization", "init_app", "require_oauth"]
