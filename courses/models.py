"""Course structure (Course ▸ Module ▸ Lesson / Quiz ▸ Question ▸ Choice) and learner records."""

from __future__ import annotations

import enum
from datetime import date, datetime

from flask_babel import gettext
from sqlalchemy import JSON, CheckConstraint, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import str_enum, utcnow
from core.extensions import db
from skills.models import Occupation, PlanGoal, Skill


class CourseStatus(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"

    @property
    def label(self) -> str:
        """In the reader's language."""
        labels = {"draft": gettext("draft"), "published": gettext("published"), "archived": gettext("archived")}
        return labels[self.value]


class QuestionKind(enum.Enum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    TRUE_FALSE = "true_false"


def _link(name: str, left: str, right_col: str, right_ref: str) -> Table:
    return Table(
        name,
        db.metadata,
        Column(left, ForeignKey(f"{left.split('_')[0]}s.id", ondelete="CASCADE"), primary_key=True),
        Column(right_col, ForeignKey(right_ref), primary_key=True, index=True),
    )


course_skills = _link("course_skills", "course_id", "skill_id", "skills.id")
course_goals = _link("course_goals", "course_id", "goal_id", "plan_goals.id")
course_occupations = _link("course_occupations", "course_id", "occupation_code", "occupations.code")
module_skills = _link("module_skills", "module_id", "skill_id", "skills.id")
module_goals = _link("module_goals", "module_id", "goal_id", "plan_goals.id")


class Course(db.Model):
    __tablename__ = "courses"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)
    __table_args__ = (
        CheckConstraint("estimated_minutes >= 0", name="minutes_positive"),
        CheckConstraint("validity_months IS NULL OR validity_months > 0", name="validity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(Text)
    estimated_minutes: Mapped[int]
    validity_months: Mapped[int | None]
    # BCP 47 code of the language the course is written in (courses.catalog.LANGUAGES lists the allowed ones)
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    status: Mapped[CourseStatus] = mapped_column(
        str_enum(CourseStatus, "course_status", 16), default=CourseStatus.DRAFT
    )
    version: Mapped[int] = mapped_column(default=1)
    # sha256 of the canonical bundle files; a change bumps the version on import
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None]

    modules: Mapped[list[Module]] = relationship(
        back_populates="course", order_by="Module.position", cascade="all, delete-orphan"
    )
    skills: Mapped[list[Skill]] = relationship(secondary=course_skills, order_by="Skill.position")
    goals: Mapped[list[PlanGoal]] = relationship(secondary=course_goals, order_by="PlanGoal.position")
    occupations: Mapped[list[Occupation]] = relationship(secondary=course_occupations, order_by="Occupation.position")

    @property
    def is_published(self) -> bool:
        return self.status is CourseStatus.PUBLISHED


class Module(db.Model):
    __tablename__ = "modules"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)
    __table_args__ = (UniqueConstraint("course_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")

    course: Mapped[Course] = relationship(back_populates="modules")
    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="module", order_by="Lesson.position", cascade="all, delete-orphan"
    )
    quiz: Mapped[Quiz | None] = relationship(back_populates="module", cascade="all, delete-orphan", uselist=False)
    skills: Mapped[list[Skill]] = relationship(secondary=module_skills, order_by="Skill.position")
    goals: Mapped[list[PlanGoal]] = relationship(secondary=module_goals, order_by="PlanGoal.position")


class Lesson(db.Model):
    __tablename__ = "lessons"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)
    __table_args__ = (UniqueConstraint("module_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    minutes: Mapped[int] = mapped_column(default=10)
    body_md: Mapped[str] = mapped_column(Text)
    # rendered and sanitized once, when the Markdown is saved
    body_html: Mapped[str] = mapped_column(Text)
    # time-sensitive facts (a program's status, a guidance revision) are to be re-checked after this day
    review_by: Mapped[date | None]

    module: Mapped[Module] = relationship(back_populates="lessons")


class Quiz(db.Model):
    __tablename__ = "quizzes"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)
    __table_args__ = (
        CheckConstraint("pass_mark BETWEEN 1 AND 100", name="pass_mark_range"),
        CheckConstraint("max_attempts IS NULL OR max_attempts > 0", name="max_attempts_positive"),
        CheckConstraint("cooldown_minutes >= 0", name="cooldown_positive"),
        CheckConstraint("failure_cooldown_minutes >= 0", name="failure_cooldown_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    pass_mark: Mapped[int] = mapped_column(default=70)
    max_attempts: Mapped[int | None]
    cooldown_minutes: Mapped[int] = mapped_column(default=0)
    # after two failed attempts in a row, the next one waits this long (0: never); stops guessing by retrying
    failure_cooldown_minutes: Mapped[int] = mapped_column(default=30, server_default="30")

    module: Mapped[Module] = relationship(back_populates="quiz")
    questions: Mapped[list[Question]] = relationship(
        back_populates="quiz", order_by="Question.position", cascade="all, delete-orphan"
    )


class Question(db.Model):
    __tablename__ = "questions"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    kind: Mapped[QuestionKind] = mapped_column(str_enum(QuestionKind, "question_kind", 16))
    prompt: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)

    quiz: Mapped[Quiz] = relationship(back_populates="questions")
    choices: Mapped[list[Choice]] = relationship(
        back_populates="question", order_by="Choice.position", cascade="all, delete-orphan"
    )


class Choice(db.Model):
    __tablename__ = "choices"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    correct: Mapped[bool] = mapped_column(default=False)

    question: Mapped[Question] = relationship(back_populates="choices")


class Enrollment(db.Model):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("user_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    # set when a learner renews an expiring certificate: quizzes must be passed again after it
    renewal_started_at: Mapped[datetime | None]

    course: Mapped[Course] = relationship()
    progress: Mapped[list[LessonProgress]] = relationship(back_populates="enrollment", cascade="all, delete-orphan")
    attempts: Mapped[list[QuizAttempt]] = relationship(back_populates="enrollment", cascade="all, delete-orphan")


class LessonProgress(db.Model):
    __tablename__ = "lesson_progress"
    __table_args__ = (UniqueConstraint("enrollment_id", "lesson_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    completed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # measured active time: seconds since the learner's previous activity in this course when at most
    # ACTIVE_GAP_SECONDS (a longer gap starts a new session: 0); None for rows written before it was measured
    active_seconds: Mapped[int | None]

    enrollment: Mapped[Enrollment] = relationship(back_populates="progress")


class QuizAttempt(db.Model):
    __tablename__ = "quiz_attempts"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "quiz_id", "attempt_no"),
        CheckConstraint("score IS NULL OR (score BETWEEN 0 AND 100)", name="score_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"), index=True)
    attempt_no: Mapped[int]
    # question ids and, per question, choice ids in the order this attempt shows them
    layout: Mapped[list] = mapped_column(JSON)
    # random per-attempt token for each choice -> [question id, choice id]: forms never carry database ids,
    # whose authoring order gave the right answers away (None for attempts opened before tokens existed)
    tokens: Mapped[dict | None] = mapped_column(JSON)
    answers: Mapped[dict | None] = mapped_column(JSON)
    score: Mapped[int | None]
    passed: Mapped[bool | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]

    enrollment: Mapped[Enrollment] = relationship(back_populates="attempts")
    quiz: Mapped[Quiz] = relationship()


class CourseDraft(db.Model):
    """The course being edited in the studio: a whole bundle (CourseSpec) as JSON, published in one step.

    Learners never see a draft; publishing applies it to the live course (a new version) the same way an
    import does, so progress on steps that still exist is kept. ``revision`` guards concurrent edits.
    """

    __tablename__ = "course_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), unique=True)
    spec: Mapped[dict] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    course: Mapped[Course] = relationship()


class MediaFile(db.Model):
    """An image uploaded for lessons, stored once by content hash (the ``uploads`` storage, core/storage.py)."""

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    mime_type: Mapped[str] = mapped_column(String(32))
    extension: Mapped[str] = mapped_column(String(8))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    alt_text: Mapped[str] = mapped_column(String(300))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def filename(self) -> str:
        return f"{self.sha256}.{self.extension}"


class AttemptAnswer(db.Model):
    """One chosen choice of a submitted attempt: lets item analysis run as aggregate SQL."""

    __tablename__ = "attempt_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), index=True)
    choice_id: Mapped[int] = mapped_column(ForeignKey("choices.id", ondelete="CASCADE"))
    question_correct: Mapped[bool]


# ---- programs: stackable learning paths ---------------------------------------------------------

program_occupations = Table(
    "program_occupations",
    db.metadata,
    Column("program_id", ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("occupation_code", ForeignKey("occupations.code"), primary_key=True, index=True),
)


class Program(db.Model):
    """An ordered set of courses with a purpose, an audience and occupations; finishing all earns a certificate."""

    __tablename__ = "programs"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)
    __table_args__ = (CheckConstraint("normal_weeks BETWEEN 1 AND 520", name="normal_weeks_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(Text)
    # the time a learner normally takes (reports count completion within it and within 150% of it)
    normal_weeks: Mapped[int]
    status: Mapped[CourseStatus] = mapped_column(
        str_enum(CourseStatus, "course_status", 16), default=CourseStatus.DRAFT
    )
    # bumped whenever the ordered course list changes; program certificates keep the version they were earned on
    version: Mapped[int] = mapped_column(default=1)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None]

    steps: Mapped[list[ProgramCourse]] = relationship(
        back_populates="program", order_by="ProgramCourse.position", cascade="all, delete-orphan"
    )
    occupations: Mapped[list[Occupation]] = relationship(secondary=program_occupations, order_by="Occupation.position")

    @property
    def courses(self) -> list[Course]:
        return [step.course for step in self.steps]

    @property
    def total_minutes(self) -> int:
        return sum(step.course.estimated_minutes for step in self.steps)

    @property
    def is_published(self) -> bool:
        return self.status is CourseStatus.PUBLISHED


class ProgramCourse(db.Model):
    __tablename__ = "program_courses"
    __content__ = True  # a change re-keys the content cache (core/contentcache.py)
    __table_args__ = (UniqueConstraint("program_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int]

    program: Mapped[Program] = relationship(back_populates="steps")
    course: Mapped[Course] = relationship()


class ProgramEnrollment(db.Model):
    __tablename__ = "program_enrollments"
    __table_args__ = (UniqueConstraint("user_id", "program_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"), index=True)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    # set when the program certificate is issued
    completed_at: Mapped[datetime | None]

    program: Mapped[Program] = relationship()
