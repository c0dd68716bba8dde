"""User accounts and password-reset tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import gettext
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import str_enum, utcnow
from core.extensions import db


class Role(enum.Enum):
    # employers are members of an approved organization (orgs/), not a site role
    LEARNER = "learner"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        """In the reader's language."""
        return {"learner": gettext("Learner"), "admin": gettext("Admin")}[self.value]


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        # emails are stored lower-cased, so the unique constraint is case-insensitive
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("session_version >= 1", name="session_version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    legal_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(
        str_enum(Role, "user_role", 16),
        default=Role.LEARNER,
    )
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None]
    email_verified_at: Mapped[datetime | None]  # None until the link mailed at registration is opened
    # the interface and email language ("es"); None follows the switcher's cookie, then the browser
    locale: Mapped[str | None] = mapped_column(String(8))

    reset_tokens: Mapped[list[PasswordResetToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    # the login (LoginSession token) this request belongs to; set by login and by the session loader
    login_token = None  # str | None; not a column

    def get_id(self) -> str:
        # The session and the remember-me cookie carry the version, so bumping it invalidates every other
        # session, and the login's own token, so logging out ends that login (and its copied cookies) only.
        return f"{self.id}:{self.session_version}:{self.login_token or ''}"

    @property
    def is_email_verified(self) -> bool:
        """Whether the person proved they read this address: unverified accounts may learn, but get no
        certificate email and may not join organizations."""
        return self.email_verified_at is not None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class PasswordResetToken(db.Model):
    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="reset_tokens")


class LoginSession(db.Model):
    """One login (session cookie and, if asked, remember-me cookie); logging out ends it on the server."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the 128-bit token
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
