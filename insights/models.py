"""xAPI statements (stored once, forwarded at most once). Saved candidates belong to organizations (orgs/models.py)."""

from __future__ import annotations

from datetime import date, datetime

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


class LearningDay(db.Model):
    """One enrollment's learning on one UTC day, summed from lesson_progress and quiz_attempts (a rollup).

    The workforce report reads these instead of every lesson and attempt (1.3 M rows at 10,000 learners): the
    report's periods are whole UTC days, so summing days gives exactly the numbers the raw rows give. Kept up to
    date by insights/learning_days.py when progress or attempts change, and rebuilt by
    ``flask reports rebuild-learning-days``.
    """

    __tablename__ = "learning_days"

    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    # stated minutes of the lessons completed that day (the lessons' current minutes)
    lesson_minutes: Mapped[int] = mapped_column(default=0)
    # measured active seconds: the lessons' recorded time plus submitted quiz attempts' start-to-submit time
    active_seconds: Mapped[int] = mapped_column(default=0)
    # module quizzes passed for the first time that day (measurable skill gains)
    first_passes: Mapped[int] = mapped_column(default=0)
