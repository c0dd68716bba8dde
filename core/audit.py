"""The audit log: who did what, when, with a before/after summary. Append-only; nothing edits it.

Services call ``record`` inside their transaction, so an action and its audit row commit together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import utcnow
from core.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_target", "target_type", "target_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(254))  # kept even if the account goes away
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    actor = relationship("User")


def record(
    actor,
    action: str,
    target_type: str,
    target_id: object,
    summary: str,
    *,
    now: datetime,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Add an audit row to the current transaction (flush only; the caller commits)."""
    event = AuditEvent(
        at=now,
        actor_id=getattr(actor, "id", None),
        actor_label=getattr(actor, "email", None) or "system",
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:64],
        summary=summary[:500],
        detail={k: v for k, v in {"before": before, "after": after}.items() if v is not None},
    )
    db.session.add(event)
    return event
