"""xAPI statements (stored once, forwarded at most once). Saved candidates belong to organizations (orgs/models.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

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
