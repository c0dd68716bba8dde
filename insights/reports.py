"""Dashboard numbers and the credential-attainment report, computed by aggregate SQL (constant query count)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, distinct, func, select

from core.extensions import db
from courses.models import Course, Enrollment, course_goals, course_occupations, course_skills
from credentials.models import Certificate
from skills.models import Occupation, PlanGoal, Skill


def _seconds(later, earlier):
    """Seconds between two timestamp columns, on PostgreSQL and SQLite."""
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


@dataclass
class Overview:
    enrollments: int
    completed: int
    active_learners_30d: int
    median_days_to_complete: float | None
    certificates_issued: int
    certificates_revoked: int
    expiring_60d: int

    @property
    def completion_rate(self) -> float | None:
        return round(100 * self.completed / self.enrollments, 1) if self.enrollments else None


def overview(start: datetime, end: datetime, *, now: datetime) -> Overview:
    """Enrollments started in [start, end) and what became of them; certificates issued in the period."""
    in_period = and_(Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end)
    enrolled, completed = db.session.execute(
        select(func.count(), func.count(Enrollment.completed_at)).where(in_period)
    ).one()
    active = (
        db.session.scalar(
            select(func.count(distinct(Enrollment.user_id))).where(
                Enrollment.last_activity_at >= now - timedelta(days=30)
            )
        )
        or 0
    )
    duration = _seconds(Enrollment.completed_at, Enrollment.enrolled_at)
    median = None
    if completed:
        median = db.session.scalar(
            select(duration)
            .where(in_period, Enrollment.completed_at.is_not(None))
            .order_by(duration)
            .offset((completed - 1) // 2)
            .limit(1)
        )
    issued, revoked, expiring = db.session.execute(
        select(
            func.count(case((and_(Certificate.awarded_at >= start, Certificate.awarded_at < end), 1))),
            func.count(case((and_(Certificate.revoked_at >= start, Certificate.revoked_at < end), 1))),
            func.count(
                case(
                    (
                        and_(
                            Certificate.revoked_at.is_(None),
                            Certificate.expires_at > now,
                            Certificate.expires_at <= now + timedelta(days=60),
                        ),
                        1,
                    )
                )
            ),
        )
    ).one()
    return Overview(
        enrolled,
        completed,
        active,
        round(float(median) / 86400, 1) if median is not None else None,
        issued,
        revoked,
        expiring,
    )


def by_course(start: datetime, end: datetime) -> list[dict]:
    """Per course: enrollments in the period, completions, certificates among them."""
    rows = db.session.execute(
        select(
            Course.slug,
            Course.title,
            func.count(Enrollment.id),
            func.count(Enrollment.completed_at),
            func.count(Certificate.id),
        )
        .join(Enrollment, Enrollment.course_id == Course.id)
        .outerjoin(Certificate, and_(Certificate.user_id == Enrollment.user_id, Certificate.course_id == Course.id))
        .where(Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end)
        .group_by(Course.id, Course.slug, Course.title)
        .order_by(Course.title)
    )
    return [
        {
            "slug": s,
            "title": t,
            "enrolled": e,
            "completed": c,
            "certified": k,
            "completion_rate": round(100 * c / e, 1) if e else None,
        }
        for s, t, e, c, k in rows
    ]


def by_tag(kind: str, start: datetime, end: datetime) -> list[dict]:
    """The same numbers grouped by plan goal, skill or occupation (through the courses' tags)."""
    link, key, label_model, label_key, label = {
        "goal": (course_goals, course_goals.c.goal_id, PlanGoal, PlanGoal.id, PlanGoal.title),
        "skill": (course_skills, course_skills.c.skill_id, Skill, Skill.id, Skill.name),
        "occupation": (
            course_occupations,
            course_occupations.c.occupation_code,
            Occupation,
            Occupation.code,
            Occupation.title,
        ),
    }[kind]
    rows = db.session.execute(
        select(key, label, func.count(Enrollment.id), func.count(Enrollment.completed_at))
        .select_from(link)
        .join(label_model, label_key == key)
        .join(Enrollment, Enrollment.course_id == link.c.course_id)
        .where(Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end)
        .group_by(key, label)
        .order_by(func.count(Enrollment.id).desc(), key)
    )
    return [
        {"id": i, "name": n, "enrolled": e, "completed": c, "completion_rate": round(100 * c / e, 1) if e else None}
        for i, n, e, c in rows
    ]


def attainment(start: datetime, end: datetime, *, window_days: int, group: str = "course") -> list[dict]:
    """Credential attainment: participants who enrolled in the period, how many completed, and how many earned
    a credential within ``window_days`` of enrolling — by course, or by the occupations the course targets."""
    earned_in_window = and_(  # make_interval(years, months, weeks, days)
        Certificate.id.is_not(None),
        Certificate.awarded_at <= Enrollment.enrolled_at + func.make_interval(0, 0, 0, window_days),
    )
    if db.engine.dialect.name == "sqlite":  # SQLite adds intervals with datetime(); compare as Julian days
        earned_in_window = and_(
            Certificate.id.is_not(None),
            func.julianday(Certificate.awarded_at) <= func.julianday(Enrollment.enrolled_at) + window_days,
        )
    # people, not enrollments: someone in two courses for the same occupation counts once
    measures = (
        func.count(distinct(Enrollment.user_id)),
        func.count(distinct(case((Enrollment.completed_at.is_not(None), Enrollment.user_id)))),
        func.count(distinct(case((earned_in_window, Enrollment.user_id)))),
    )
    base = (
        select()
        .select_from(Enrollment)
        .outerjoin(
            Certificate, and_(Certificate.user_id == Enrollment.user_id, Certificate.course_id == Enrollment.course_id)
        )
        .where(Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end)
    )
    if group == "occupation":
        stmt = (
            base.add_columns(Occupation.code, Occupation.title, *measures)
            .join(course_occupations, course_occupations.c.course_id == Enrollment.course_id)
            .join(Occupation, Occupation.code == course_occupations.c.occupation_code)
            .group_by(Occupation.code, Occupation.title)
            .order_by(Occupation.title)
        )
    else:
        stmt = (
            base.add_columns(Course.slug, Course.title, *measures)
            .join(Course, Course.id == Enrollment.course_id)
            .group_by(Course.slug, Course.title)
            .order_by(Course.title)
        )
    return [
        {
            "id": i,
            "name": n,
            "participants": p,
            "completed": c,
            "credentialed": k,
            "credential_rate": round(100 * k / p, 1) if p else None,
        }
        for i, n, p, c, k in db.session.execute(stmt)
    ]


def quizzes() -> list[tuple]:
    """(quiz id, course title, module title, quiz title) for every quiz, in one query."""
    from courses.models import Module, Quiz

    return list(
        db.session.execute(
            select(Quiz.id, Course.title, Module.title, Quiz.title)
            .join(Module, Module.id == Quiz.module_id)
            .join(Course, Course.id == Module.course_id)
            .order_by(Course.title, Module.position)
        )
    )


def item_analysis(quiz_id: int) -> list[dict]:
    """Per question: submitted attempts, share answering correctly, and the most chosen wrong answer."""
    from courses.models import AttemptAnswer, Choice, Question

    totals = {
        qid: (n, right)
        for qid, n, right in db.session.execute(
            select(
                AttemptAnswer.question_id,
                func.count(distinct(AttemptAnswer.attempt_id)),
                func.count(distinct(case((AttemptAnswer.question_correct.is_(True), AttemptAnswer.attempt_id)))),
            )
            .join(Question, Question.id == AttemptAnswer.question_id)
            .where(Question.quiz_id == quiz_id)
            .group_by(AttemptAnswer.question_id)
        )
    }
    wrong: dict[int, tuple[str, int]] = {}
    for qid, text, n in db.session.execute(
        select(AttemptAnswer.question_id, Choice.text, func.count())
        .join(Choice, Choice.id == AttemptAnswer.choice_id)
        .join(Question, Question.id == AttemptAnswer.question_id)
        .where(Question.quiz_id == quiz_id, Choice.correct.is_(False))
        .group_by(AttemptAnswer.question_id, Choice.id, Choice.text)
    ):  # bounded by the quiz's choices, not by learners
        if qid not in wrong or n > wrong[qid][1]:
            wrong[qid] = (text, n)
    rows = []
    for qid, position, prompt in db.session.execute(
        select(Question.id, Question.position, Question.prompt)
        .where(Question.quiz_id == quiz_id)
        .order_by(Question.position)
    ):
        n, right = totals.get(qid, (0, 0))
        text, count = wrong.get(qid, (None, 0))
        rows.append(
            {
                "number": position + 1,
                "prompt": prompt,
                "answered": n,
                "correct_share": round(100 * right / n, 1) if n else None,
                "top_wrong_answer": text,
                "top_wrong_count": count,
            }
        )
    return rows
