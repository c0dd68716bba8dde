"""Plan goals, skills and occupations: the framework every course and certificate points at."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db

skill_goals = Table(
    "skill_goals",
    db.metadata,
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
    Column("goal_id", ForeignKey("plan_goals.id", ondelete="CASCADE"), primary_key=True),
)

skill_occupations = Table(
    "skill_occupations",
    db.metadata,
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
    Column("occupation_code", ForeignKey("occupations.code", ondelete="CASCADE"), primary_key=True),
)


class PlanGoal(db.Model):
    """A workforce goal (G1-G14) or related recommendation (R1-R13) of the AI Action Plan."""

    __tablename__ = "plan_goals"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    section: Mapped[str] = mapped_column(String(200))
    pillar: Mapped[str] = mapped_column(String(4))
    pages: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    position: Mapped[int]
    retired_at: Mapped[datetime | None]

    skills: Mapped[list[Skill]] = relationship(secondary=skill_goals, back_populates="goals", order_by="Skill.position")


class Skill(db.Model):
    __tablename__ = "skills"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    frameworks: Mapped[list] = mapped_column(JSON, default=list)
    position: Mapped[int]
    retired_at: Mapped[datetime | None]

    goals: Mapped[list[PlanGoal]] = relationship(
        secondary=skill_goals, back_populates="skills", order_by="PlanGoal.position"
    )
    occupations: Mapped[list[Occupation]] = relationship(
        secondary=skill_occupations, back_populates="skills", order_by="Occupation.title"
    )


class Occupation(db.Model):
    """An O*NET-SOC 2019 occupation."""

    __tablename__ = "occupations"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column(String(32))
    position: Mapped[int]
    retired_at: Mapped[datetime | None]

    skills: Mapped[list[Skill]] = relationship(
        secondary=skill_occupations, back_populates="occupations", order_by="Skill.position"
    )


OCCUPATION_GROUPS = {
    "ai-adoption": _l("Office, service and frontline workers"),
    "infrastructure": _l("Skilled trades and infrastructure"),
    "ai-specialist": _l("Technology, data and security specialists"),
    "workforce-education": _l("Educators, managers and workforce staff"),
}
