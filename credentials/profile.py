"""A learner's skills profile: the skills their currently valid certificates show, grouped by skill.

It lives with credentials because a certificate, not a finished enrollment, is what makes a skill count: a
revoked, suspended or expired certificate stops counting at once. Occupations are listed only when the
counted courses cover every skill the framework ties to that occupation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from core.extensions import db
from courses.models import Course, course_skills
from credentials.models import Certificate
from skills.models import Occupation, Skill, skill_occupations


@dataclass
class ProfileSkill:
    skill: Skill
    courses: list[str] = field(default_factory=list)  # titles of the counted courses that taught it


@dataclass
class SkillsProfile:
    skills: list[ProfileSkill]
    occupations: list[Occupation]  # every framework skill of the occupation is covered
    not_counted: list[Certificate]  # revoked, suspended or expired: shown apart, never counted
    status_by_course: dict[int, str] = field(default_factory=dict)  # course id → certificate status


def skills_profile(user, *, now: datetime) -> SkillsProfile:
    """The profile in four queries whatever the number of courses, skills or occupations."""
    # course certificates: a program's skills are those of its courses, which have certificates of their own
    certificates = list(
        db.session.scalars(
            select(Certificate).where(Certificate.user_id == user.id, Certificate.course_id.is_not(None))
        )
    )
    counted_ids = [c.course_id for c in certificates if c.status_at(now).value == "valid"]
    not_counted = [c for c in certificates if c.status_at(now).value != "valid"]
    statuses = {c.course_id: c.status_at(now).value for c in certificates}
    if not counted_ids:
        return SkillsProfile([], [], not_counted, statuses)
    rows = db.session.execute(
        select(Skill, Course.title)
        .join(course_skills, course_skills.c.skill_id == Skill.id)
        .join(Course, Course.id == course_skills.c.course_id)
        .where(Course.id.in_(counted_ids))
        .order_by(Skill.position, Course.title)
    ).all()
    by_skill: dict[str, ProfileSkill] = {}
    for skill, title in rows:
        by_skill.setdefault(skill.id, ProfileSkill(skill)).courses.append(title)
    attained = set(by_skill)
    # every live skill of every occupation that any attained skill serves
    needs: dict[str, set[str]] = {}
    for code, skill_id in db.session.execute(
        select(skill_occupations.c.occupation_code, skill_occupations.c.skill_id)
        .join(Skill, Skill.id == skill_occupations.c.skill_id)
        .where(
            Skill.retired_at.is_(None),
            skill_occupations.c.occupation_code.in_(
                select(skill_occupations.c.occupation_code).where(skill_occupations.c.skill_id.in_(attained))
            ),
        )
    ):
        needs.setdefault(code, set()).add(skill_id)
    covered = [code for code, skill_ids in needs.items() if skill_ids <= attained]
    occupations = (
        list(
            db.session.scalars(
                select(Occupation)
                .where(Occupation.code.in_(covered), Occupation.retired_at.is_(None))
                .order_by(Occupation.title)
            )
        )
        if covered
        else []
    )
    return SkillsProfile(list(by_skill.values()), occupations, not_counted, statuses)


def _dashboard_certificates(dialect: str):
    """For the signed-in lane (courses/lane.py): the learner's certificates as the dashboard shows them (status
    cards, the skills profile), one text value that changes with any of them, and with the moment one expires or
    its suspension ends (counted against ``now``, the moment of the read)."""
    from sqlalchemy import bindparam, case, func, literal_column

    from accounts.models import User
    from core.database import UTCDateTime
    from courses.lane import joiner, text_of

    c, users = Certificate.__table__, User.__table__
    now = bindparam("now", type_=UTCDateTime())
    listed = text_of(
        c.c.id,
        c.c.public_id,
        c.c.course_id,
        c.c.program_id,
        c.c.course_title,
        c.c.revision,
        c.c.revoked_at,
        c.c.suspended_at,
        c.c.suspended_until,
        c.c.expires_at,
    )
    passed = text_of(
        func.sum(case((c.c.expires_at <= now, 1), else_=0)),
        func.sum(case((c.c.suspended_until <= now, 1), else_=0)),
    )
    return (
        select(text_of(joiner(dialect)(listed, literal_column("','")), passed))
        .where(c.c.user_id == users.c.id)
        .scalar_subquery()
    )


def _register() -> None:
    from courses.lane import DASHBOARD_PARTS

    DASHBOARD_PARTS["certificates"] = _dashboard_certificates


_register()
