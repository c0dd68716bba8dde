"""Public framework pages: explorer (goal → skills → courses → occupations), skill and occupation pages.

They list courses, so they live with courses (skills sit below courses and never import them); the
blueprint keeps its name, so its URLs and endpoints (skills.explorer, …) are unchanged."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.contentcache import cached_page
from core.extensions import db
from courses.models import Course, CourseStatus, course_occupations, course_skills
from skills.models import OCCUPATION_GROUPS, Occupation, PlanGoal, Skill

bp = Blueprint("skills", __name__)


def _published_courses_by(link_table, column: str) -> dict[str, list[Course]]:
    """{skill id or occupation code: published courses}, in one query."""
    rows = db.session.execute(
        select(getattr(link_table.c, column), Course)
        .join(Course, Course.id == link_table.c.course_id)
        .where(Course.status == CourseStatus.PUBLISHED)
        .order_by(Course.title)
        .options(selectinload(Course.skills))
    )
    result: dict[str, list[Course]] = {}
    for key, course in rows:
        result.setdefault(key, []).append(course)
    return result


@bp.get("/framework")
@cached_page
def explorer():
    goals = list(
        db.session.scalars(
            select(PlanGoal)
            .where(PlanGoal.retired_at.is_(None))
            .order_by(PlanGoal.position)
            .options(selectinload(PlanGoal.skills).selectinload(Skill.occupations))
        )
    )
    return render_template(
        "skills/explorer.html", goals=goals, courses_by_skill=_published_courses_by(course_skills, "skill_id")
    )


@bp.get("/skills/<skill_id>")
@cached_page
def skill(skill_id: str):
    skill = db.session.scalar(
        select(Skill)
        .where(Skill.id == skill_id.upper())
        .options(selectinload(Skill.goals), selectinload(Skill.occupations))
    )
    if skill is None:
        abort(404)
    courses = _published_courses_by(course_skills, "skill_id").get(skill.id, [])
    return render_template("skills/skill.html", skill=skill, courses=courses)


@bp.get("/occupations/<code>")
@cached_page
def occupation(code: str):
    occupation = db.session.scalar(
        select(Occupation).where(Occupation.code == code).options(selectinload(Occupation.skills))
    )
    if occupation is None:
        abort(404)
    skill_ids = [s.id for s in occupation.skills]
    # courses tagged with the occupation, or that build one of its skills
    tagged = _published_courses_by(course_occupations, "occupation_code").get(code, [])
    by_skill = _published_courses_by(course_skills, "skill_id")
    courses = {c.id: c for c in tagged}
    for sid in skill_ids:
        for course in by_skill.get(sid, []):
            courses.setdefault(course.id, course)
    return render_template(
        "skills/occupation.html",
        occupation=occupation,
        group=OCCUPATION_GROUPS.get(occupation.group),
        courses=sorted(courses.values(), key=lambda c: c.title),
    )
