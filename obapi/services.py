"""Connected apps: what a learner has let in, and taking it back. Flush only; the views commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext, lazy_gettext
from sqlalchemy import delete, func, or_, select, update

from accounts.models import User
from core import audit
from core.errors import DomainError
from core.extensions import db
from obapi import server
from obapi.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, scope_list

# the scopes in the learner's words (consent page, account page); keys as the spec spells them
SCOPE_WORDS = {
    server.CREDENTIAL_READ: lazy_gettext(
        "See your valid course and program certificates, as the signed digital credentials employers can verify"
    ),
    server.PROFILE_READ: lazy_gettext("See your name as printed on your certificates and your email address"),
    server.OFFLINE_ACCESS: lazy_gettext("Keep this access until you disconnect it, without asking you again"),
}


def scope_words(scope: str) -> list[str]:
    return [str(SCOPE_WORDS[s]) for s in scope_list(scope) if s in SCOPE_WORDS]


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    name: str
    uri: str | None
    since: datetime
    can: list[str]


def _live(now: datetime):
    return (
        OAuthToken.revoked_at.is_(None),
        or_(OAuthToken.access_expires_at > now, OAuthToken.refresh_expires_at > now),
    )


def connected_apps(user: User, *, now: datetime) -> list[ConnectedApp]:
    """The apps holding a live token for ``user`` (one query), most recently connected first."""
    rows = db.session.execute(
        select(OAuthClient, OAuthToken.scope, OAuthToken.issued_at)
        .join(OAuthToken, OAuthToken.client_id == OAuthClient.id)
        .where(OAuthToken.user_id == user.id, *_live(now))
        .order_by(OAuthToken.issued_at)
    ).all()
    apps: dict[int, dict] = {}
    for client, scope, issued_at in rows:
        entry = apps.setdefault(client.id, {"client": client, "since": issued_at, "scopes": {}})
        entry["scopes"].update(dict.fromkeys(scope_list(scope)))
    found = [
        ConnectedApp(
            client_id=e["client"].client_id,
            name=e["client"].name,
            uri=e["client"].client_uri,
            since=e["since"],
            can=scope_words(" ".join(e["scopes"])),
        )
        for e in apps.values()
    ]
    return sorted(found, key=lambda a: a.since, reverse=True)


def record_connection(user: User, client: OAuthClient, scope: str, redirect_uri: str, *, now: datetime) -> None:
    """Write the audit row for a learner allowing ``client`` on the consent page: who, which app, which scopes,
    and where the code was sent. Disconnect writes its counterpart. Raises nothing. Flush only; the caller
    commits (with the authorization code, so neither exists without the other)."""
    scopes = scope_list(scope)
    audit.record(
        user,
        "oauth.connected",
        "oauth_client",
        client.client_id,
        f"{user.email}: {client.name} ({' '.join(scopes)})",
        now=now,
        after={"client_name": client.name, "scopes": scopes, "redirect_uri": redirect_uri},
    )


def disconnect(user: User, client_id: str, *, now: datetime) -> OAuthClient:
    """Revoke every token ``client_id`` holds for ``user`` and spend its unused codes, at once: the app's next
    API call answers 401. Raises DomainError when the app holds nothing of this learner's (unknown app, or
    already disconnected — a double click). Flush only; the caller commits."""
    client = server.query_client(client_id)
    revoked = 0
    if client is not None:
        revoked = db.session.execute(
            update(OAuthToken)
            .where(OAuthToken.user_id == user.id, OAuthToken.client_id == client.id, *_live(now))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.execute(
            update(OAuthAuthorizationCode)
            .where(
                OAuthAuthorizationCode.user_id == user.id,
                OAuthAuthorizationCode.client_id == client.id,
                OAuthAuthorizationCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    if not revoked:
        raise DomainError(gettext("That app is not connected to your account (it may have been disconnected already)."))
    audit.record(user, "oauth.disconnected", "oauth_client", client.client_id, f"{user.email}: {client.name}", now=now)
    return client


def revoke_family(*, code_id: int | None = None, token_id: int | None = None, now: datetime) -> int:
    """Revoke every token descending from a replayed code, or from the code of a replayed refresh token (RFC 6749
    §4.1.2, RFC 9700 §4.14.2). Returns how many were live. Flush only; the caller commits."""
    if token_id is not None:
        token = db.session.get(OAuthToken, token_id)
        if token is None:
            return 0
        if token.code_id is None:  # its code is gone (SET NULL): the same app and learner is the family
            family = (OAuthToken.client_id == token.client_id, OAuthToken.user_id == token.user_id)
        else:
            family = (OAuthToken.code_id == token.code_id,)
    elif code_id is not None:
        family = (OAuthToken.code_id == code_id,)
    else:
        return 0
    return db.session.execute(
        update(OAuthToken)
        .where(*family, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


KEEP_AFTER_END = timedelta(days=1)  # ended rows stay a day: a late replay is still recognized (and refused) as one


def prune(*, now: datetime) -> tuple[int, int]:
    """Delete tokens revoked or past their last use for more than a day, and codes expired for more than a day.
    Returns (tokens, codes) deleted. Flush only; the caller (the daily job) commits."""
    cutoff = now - KEEP_AFTER_END
    ended = or_(
        OAuthToken.revoked_at < cutoff,
        func.coalesce(OAuthToken.refresh_expires_at, OAuthToken.access_expires_at) < cutoff,
    )
    tokens = db.session.execute(delete(OAuthToken).where(ended).execution_options(synchronize_session=False)).rowcount
    old_codes = select(OAuthAuthorizationCode.id).where(OAuthAuthorizationCode.expires_at < cutoff)
    # what descends from a deleted code is then one family per app and learner (revoke_family)
    db.session.execute(
        update(OAuthToken)
        .where(OAuthToken.code_id.in_(old_codes))
        .values(code_id=None)
        .execution_options(synchronize_session=False)
    )
    codes = db.session.execute(
        delete(OAuthAuthorizationCode)
        .where(OAuthAuthorizationCode.expires_at < cutoff)
        .execution_options(synchronize_session=False)
    ).rowcount
    return tokens, codes
