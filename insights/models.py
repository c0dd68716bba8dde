"""xAPI statements (stored once, forwarded at most once) and employers' saved candidates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import utcnow
from core.extensions import db


class XapiStatement(db.Model):
    __tablename__ = "xapi_statements"
    __table_args__ = (
        Index("ix_xapi_statements_timestamp", "timestamp"),
        Index("ix_xapi_statements_sent_at", "sent_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the statement's UUID
    timestamp: Mapped[datetime]
    verb: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    statement: Mapped[dict] = mapped_column(JSON)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class SavedCandidate(db.Model):
    """A certificate an employer verified and keeps an eye on."""

    __tablename__ = "saved_candidates"
    __table_args__ = (UniqueConstraint("employer_id", "certificate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    certificate = relationship("Certificate")
