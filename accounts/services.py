"""Account rules. Services flush, never commit: the caller (a view or CLI command) commits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from blinker import Namespace
from flask_babel import gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers, make_transient_to_detached

from accounts import passwords
from accounts.models import LoginSession, PasswordResetToken, Role, User
from accounts.permissions import can_change_account
from core import audit, contentcache
from core.database import read_outside_transaction
from core.errors import DomainError
from core.extensions import db
from core.i18n import supported_languages

RESET_SALT = "password-reset"
VERIFY_SALT = "verify-email"
VERIFY_MAX_AGE = 7 * 24 * 3600

signals = Namespace()
email_verified = signals.signal("email-verified")  # sent in the verifying transaction, the first time only


def normalize_email(email: str) -> str:
    return email.strip().lower()


# Facts about the user that rooms above this one need on most pages, read in the same statement that loads the
# session's user instead of one query each per request: {attribute name: a SQL expression correlated to users.id}.
# orgs adds ``has_memberships`` (orgs/services.py); each is set on the loaded user as that attribute.
SESSION_USER_FACTS: dict = {}


def load_session_user(session_id: str) -> User | None:
    """Flask-Login loader: "<id>:<session_version>:<login token>".

    A stale version, an ended or unknown login, or an inactive user is refused. The SESSION_USER_FACTS and the
    content version (core/contentcache.py) come with the user, in the same statement.
    """
    try:
        raw_id, raw_version, token = session_id.split(":", 2)
        user_id, version = int(raw_id), int(raw_version)
    except (ValueError, AttributeError):
        return None
    if not token or len(token) > 64:
        return None
    global _SESSION_USER
    if _SESSION_USER is None:
        _SESSION_USER = _session_user_statement()
    statement, columns, facts = _SESSION_USER
    row = read_outside_transaction(
        db.session.connection(), statement, {"user_id": user_id, "token_hash": _hash_token(token)}
    )
    if row is None:
        return None
    contentcache.note_version(row[-1])
    values = dict(zip(columns, row, strict=False))
    if not values["active"] or values["session_version"] != version:
        return None
    user = _persistent_user(values)
    user.login_token = token
    for index, name in enumerate(facts, start=len(columns)):
        setattr(user, name, row[index])
    return user


# every column but the password hash, which a page never needs (it is loaded on first use: login, password change)
_SESSION_USER_SKIPS = frozenset({"password_hash"})
_SESSION_USER = None  # (statement, column names, fact names): built on first use, after the rooms added their facts


def _session_user_statement():
    """A Core select built once (an ORM select of the user was built, compiled and hydrated per request: a
    sixth of a signed-in page): the user's columns, the facts, then the content token."""
    users, logins = User.__table__, LoginSession.__table__
    columns = [column for column in users.c if column.key not in _SESSION_USER_SKIPS]
    facts = list(SESSION_USER_FACTS.items())
    statement = (
        select(*columns, *(expression.label(name) for name, expression in facts), contentcache.version_column())
        .select_from(users.join(logins, logins.c.user_id == users.c.id))
        .where(
            users.c.id == bindparam("user_id"),
            logins.c.token_hash == bindparam("token_hash"),
            logins.c.ended_at.is_(None),
        )
    )
    return statement, [column.key for column in columns], [name for name, _ in facts]


_USER_MAPPER = None


def _user_mapper():
    """User's mapper, configured. A process's first request can arrive here before any query configured the
    mappers (a second gunicorn worker or server given a session cookie made elsewhere): an unconfigured User has no
    attribute implementations yet and make_transient_to_detached fails (AttributeError, a 500). Configured once,
    the mapper stays so; it is kept, so later requests skip configure_mappers() and inspect() (~10 µs a request)."""
    global _USER_MAPPER
    configure_mappers()
    _USER_MAPPER = inspect(User)
    return _USER_MAPPER


def _persistent_user(values: dict) -> User:
    """The session's User for this row, as if the ORM had loaded it (changes to it are flushed as usual; columns
    not in ``values`` are loaded on first access); the instance already in the session if there is one."""
    session = db.session()
    mapper = _USER_MAPPER or _user_mapper()
    key = mapper.identity_key_from_primary_key((values["id"],))
    present = session.identity_map.get(key)
    if present is not None:
        return present
    user = mapper.class_manager.new_instance()
    user.__dict__.update(values)
    make_transient_to_detached(user)  # no pending changes; the columns not given are expired
    session.add(user)
    return user


def start_login(user: User, *, now: datetime) -> str:
    """Record a new login for ``user`` and return its token (also set on ``user.login_token``). Caller commits."""
    token = secrets.token_urlsafe(16)
    db.session.add(LoginSession(user_id=user.id, token_hash=_hash_token(token), created_at=now))
    db.session.flush()
    user.login_token = token
    return token


def end_login(user: User, *, now: datetime) -> None:
    """End the login this request belongs to: its session and remember-me cookies stop working. Caller commits."""
    if user.login_token:
        db.session.execute(
            update(LoginSession)
            .where(
                LoginSession.user_id == user.id,
                LoginSession.token_hash == _hash_token(user.login_token),
                LoginSession.ended_at.is_(None),
            )
            .values(ended_at=now)
        )


PRUNE_AFTER = timedelta(days=1)


def prune_ended(*, now: datetime) -> tuple[int, int]:
    """Delete logins that ended (logout, "log out everywhere else") and password-reset tokens used or expired more
    than a day ago: they can never open anything again, and one row per login or reset would otherwise pile up.
    Returns (logins, reset tokens) deleted. Flush only; the caller (the daily job) commits."""
    cutoff = now - PRUNE_AFTER
    logins = db.session.execute(delete(LoginSession).where(LoginSession.ended_at < cutoff)).rowcount
    tokens = db.session.execute(
        delete(PasswordResetToken).where(
            or_(PasswordResetToken.used_at < cutoff, PasswordResetToken.expires_at < cutoff)
        )
    ).rowcount
    return logins, tokens


def register_user(*, email: str, name: str, password: str, now: datetime, role: Role = Role.LEARNER) -> User:
    """Create an account. Raises DomainError (weak password, email taken). Caller commits."""
    email = normalize_email(email)
    name = name.strip()
    problem = passwords.password_problem(password, email=email, name=name)
    if problem:
        raise DomainError(problem, field="password")
    user = User(
        email=email,
        name=name,
        legal_name=name,
        role=role,
        password_hash=passwords.hash_password(password),
        created_at=now,
        updated_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(user)
            db.session.flush()
    except IntegrityError:
        raise EmailTaken(email) from None
    return user


class EmailTaken(DomainError):
    """Registration with an email that already has an account. Views answer exactly as for a new account
    (no enumeration) and tell the owner by email instead."""

    def __init__(self, email: str) -> None:
        super().__init__(
            "We could not create an account with those details. If you already have one, "
            "log in or reset your password.",
            field="email",
        )
        self.email = email


def authenticate(*, email: str, password: str, now: datetime) -> User | None:
    """Return the active user for these credentials or None (same time either way).

    Rehashes the password when argon2 parameters changed. Caller commits.
    """
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = now
    db.session.flush()
    return user


def active_user_by_email(email: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    return user if user is not None and user.active else None


def update_profile(user: User, *, name: str, legal_name: str, now: datetime) -> User:
    """Change display and legal names. Caller commits."""
    user.name = name.strip()
    user.legal_name = legal_name.strip()
    user.updated_at = now
    db.session.flush()
    return user


def set_locale(user: User, locale: str | None, *, now: datetime) -> User:
    """Set the language the site and its emails use for ``user`` (None: follow the browser).
    Raises DomainError for a language the site does not offer. Caller commits."""
    if locale is not None and locale not in supported_languages():
        raise DomainError(gettext("Choose one of the languages offered."), field="locale")
    if user.locale != locale:
        user.locale = locale
        user.updated_at = now
        db.session.flush()
    return user


def change_password(user: User, *, current: str, new: str, now: datetime) -> None:
    """Replace the password and invalidate every other session. Raises DomainError. Caller commits."""
    if not passwords.verify_password(user.password_hash, current):
        raise DomainError(gettext("Your current password is not correct."), field="current_password")
    _set_password(user, new, now)


def _set_password(user: User, new: str, now: datetime) -> None:
    problem = passwords.password_problem(new, email=user.email, name=user.name)
    if problem:
        raise DomainError(problem, field="password")
    user.password_hash = passwords.hash_password(new)
    user.updated_at = now
    _bump_session_version(user, now)
    # any reset link still out there stops working once the password changes
    db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    db.session.flush()


def _bump_session_version(user: User, now: datetime) -> None:
    # an atomic increment, so two racing changes cannot both keep an old session alive
    db.session.execute(update(User).where(User.id == user.id).values(session_version=User.session_version + 1))
    db.session.refresh(user, ["session_version"])
    # the version alone already refuses every older cookie; ending the logins too lets the daily prune delete them
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def logout_everywhere(user: User, *, now: datetime) -> None:
    """Invalidate all of the user's sessions and remember-me cookies. Caller commits."""
    _bump_session_version(user, now)


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=RESET_SALT)


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class ResetRequest:
    user: User
    token: str


def request_password_reset(*, email: str, now: datetime, secret_key: str, max_age: int) -> ResetRequest | None:
    """Create a signed single-use reset token for an active account, or None for unknown emails.

    The caller shows the same message either way and mails the link after commit.
    """
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None or not user.active:
        return None
    raw = secrets.token_urlsafe(32)  # 256 random bits; only its hash is stored
    db.session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=_hash_token(raw),
            created_at=now,
            expires_at=now + timedelta(seconds=max_age),
        )
    )
    db.session.flush()
    return ResetRequest(user=user, token=_serializer(secret_key).dumps(raw))


def unused_reset_token(secret_key: str) -> str:
    """A signed token like a real one, for an unknown address: the same work, so the same time. Stored nowhere."""
    return _serializer(secret_key).dumps(secrets.token_urlsafe(32))


def _token_row(token: str, *, now: datetime, secret_key: str, max_age: int) -> PasswordResetToken:
    try:
        raw = _serializer(secret_key).loads(token, max_age=max_age)
    except BadSignature:
        raise DomainError(gettext("This reset link is invalid or has expired. Please request a new one.")) from None
    row = db.session.scalar(select(PasswordResetToken).where(PasswordResetToken.token_hash == _hash_token(str(raw))))
    if row is None or row.used_at is not None or row.expires_at <= now or not row.user.active:
        raise DomainError(gettext("This reset link is invalid, expired or already used. Please request a new one."))
    return row


def check_reset_token(token: str, *, now: datetime, secret_key: str, max_age: int) -> User:
    """Return the user a valid, unused reset token belongs to. Raises DomainError."""
    return _token_row(token, now=now, secret_key=secret_key, max_age=max_age).user


def reset_password(token: str, *, new: str, now: datetime, secret_key: str, max_age: int) -> User:
    """Use a reset token exactly once to set a new password. Raises DomainError. Caller commits."""
    row = _token_row(token, now=now, secret_key=secret_key, max_age=max_age)
    problem = passwords.password_problem(new, email=row.user.email, name=row.user.name)
    if problem:
        raise DomainError(problem, field="password")
    # conditional update: of two racing uses, only one sees rowcount 1
    claimed = db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        raise DomainError(gettext("This reset link has already been used. Please request a new one."))
    _set_password(row.user, new, now)
    return row.user


def email_verification_token(user: User, *, secret_key: str) -> str:
    """A signed link token for this user and address (a changed address makes old links useless)."""
    return URLSafeTimedSerializer(secret_key, salt=VERIFY_SALT).dumps([user.id, user.email])


def verify_email(token: str, *, now: datetime, secret_key: str, max_age: int = VERIFY_MAX_AGE) -> tuple[User, bool]:
    """Mark the token's address verified; (user, True) the first time, (user, False) after that.

    Raises DomainError for a bad, expired or outdated link. Caller commits.
    """
    try:
        user_id, email = URLSafeTimedSerializer(secret_key, salt=VERIFY_SALT).loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        raise DomainError(
            gettext("This verification link is invalid or has expired. Log in and ask for a new one.")
        ) from None
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.email != email:
        raise DomainError(gettext("This verification link is invalid or has expired. Log in and ask for a new one."))
    if user.email_verified_at is not None:
        return user, False
    # conditional update: two clicks racing verify once and send one welcome
    claimed = db.session.execute(
        update(User).where(User.id == user.id, User.email_verified_at.is_(None)).values(email_verified_at=now)
    ).rowcount
    db.session.refresh(user)
    if claimed != 1:
        return user, False
    email_verified.send(user, now=now)
    return user, True


def search_users(query: str | None, *, role: Role | None = None):
    """A select() of users matching words in name or email, newest first."""
    stmt = select(User).order_by(User.created_at.desc(), User.id.desc())
    if query:
        # % _ and \ typed in the search are text, not wildcards
        text = query.strip().lower()
        stmt = stmt.where(
            or_(func.lower(User.name).contains(text, autoescape=True), User.email.contains(text, autoescape=True))
        )
    if role is not None:
        stmt = stmt.where(User.role == role)
    return stmt


def _admin_count() -> int:
    return db.session.scalar(select(func.count()).where(User.role == Role.ADMIN, User.active.is_(True))) or 0


def change_role(actor: User, target: User, role: Role, *, now: datetime) -> bool:
    """Set ``target``'s role. Returns False when nothing changed. Raises DomainError. Caller commits."""
    if not can_change_account(actor, target):
        raise DomainError(gettext("You cannot change your own role. Ask another admin."))
    if target.role is role:
        return False
    if target.role is Role.ADMIN and target.active and _admin_count() <= 1:
        raise DomainError(gettext("This is the last active admin. Make someone else an admin first."))
    audit.record(
        actor,
        "user.role_changed",
        "user",
        target.id,
        f"{target.email}: {target.role.value} → {role.value}",
        now=now,
        before={"role": target.role.value},
        after={"role": role.value},
    )
    target.role = role
    target.updated_at = now
    # a role change takes effect at once in every session of that user
    _bump_session_version(target, now)
    return True


def set_active(actor: User, target: User, active: bool, *, now: datetime) -> bool:
    """Deactivate (logging the user out everywhere) or reactivate. Returns False if unchanged."""
    if not can_change_account(actor, target):
        raise DomainError(gettext("You cannot deactivate your own account. Ask another admin."))
    if target.active is active:
        return False
    if not active and target.role is Role.ADMIN and _admin_count() <= 1:
        raise DomainError(gettext("This is the last active admin. Make someone else an admin first."))
    audit.record(
        actor,
        "user.reactivated" if active else "user.deactivated",
        "user",
        target.id,
        f"{target.email} {'reactivated' if active else 'deactivated'}",
        now=now,
        before={"active": target.active},
        after={"active": active},
    )
    target.active = active
    target.updated_at = now
    _bump_session_version(target, now)
    return True


def create_or_promote_admin(*, email: str, name: str | None, password: str | None, now: datetime) -> tuple[User, bool]:
    """CLI: create an admin, or promote an existing account. Returns (user, created). Caller commits."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is not None:
        if user.role is not Role.ADMIN:
            user.role = Role.ADMIN
            user.updated_at = now
            _bump_session_version(user, now)
        return user, False
    if not name or not password:
        raise DomainError(gettext("A new admin needs a name and a password."))
    user = register_user(email=email, name=name, password=password, now=now, role=Role.ADMIN)
    user.email_verified_at = now  # the operator typed this address at the server
    return user, True


signals = Namespace()
# sent by `flask users seed-demo` after the demo accounts exist; higher packages add their demo data and return
# lines to print (e.g. orgs: the demo organization and its manager's login)
demo_seeded = signals.signal("demo-seeded")

DEMO_ACCOUNTS = (
    ("learner@example.org", "Dana Learner", Role.LEARNER),
    # the employer is a learner account made owner of the demo organization by orgs (demo_seeded)
    ("employer@example.org", "Evan Employer", Role.LEARNER),
    ("admin@example.org", "Ada Admin", Role.ADMIN),
)


def seed_demo_users(*, now: datetime) -> list[tuple[User, str]]:
    """Create the three demo accounts that do not exist yet with random passwords.

    Returns only newly created accounts with their passwords, so they are shown once.
    """
    created = []
    for email, name, role in DEMO_ACCOUNTS:
        if db.session.scalar(select(User.id).where(User.email == email)) is not None:
            continue
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        user = register_user(email=email, name=name, password=password, now=now, role=role)
        user.email_verified_at = now  # demo addresses cannot receive mail
        created.append((user, password))
    return created
