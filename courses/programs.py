"""Programs (stackable learning paths): program files, studio edits, enrollment and progress. Flush only.

A program file is ``courses/catalog/programs/<slug>.yaml`` (see courses/catalog/FORMAT.md). Import
validates every program file first and writes nothing unless all of them are valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from blinker import Namespace
from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts.models import User
from core import audit
from core.errors import DomainError
from core.extensions import db
from core.yamlload import YamlError, dump, load
from courses import services as course_services
from courses.catalog import MAX_FILE_BYTES, SLUG, CatalogError, _Checker
from courses.models import (
    Course,
    CourseStatus,
    Enrollment,
    LessonProgress,
    Program,
    ProgramCourse,
    ProgramEnrollment,
    QuizAttempt,
)
from skills.models import Occupation

signals = Namespace()
# sent inside the enrolling transaction: a learner who already holds every course certificate gets the
# program certificate at once (credentials listens; courses never imports credentials)
program_enrolled = signals.signal("program-enrolled")

MAX_COURSES = 20
PROGRAMS_FOLDER = "programs"


@dataclass
class ProgramSpec:
    slug: str
    title: str
    purpose: str
    audience: str
    normal_weeks: int
    occupations: list[str] = field(default_factory=list)
    courses: list[str] = field(default_factory=list)


# ---- files -------------------------------------------------------------------------------------


def parse_program(text: str, *, source: str, known_courses: set[str]) -> ProgramSpec:
    """Validate one program file; raise CatalogError listing every problem with its line."""
    check = _Checker()
    try:
        data = load(text, source=source)
    except YamlError as error:
        raise CatalogError([str(error)]) from None
    if not isinstance(data, dict):
        raise CatalogError([f"{source}: expected a mapping with slug, title, purpose, audience, courses"])
    unknown = set(data) - {"slug", "title", "purpose", "audience", "normal_weeks", "occupations", "courses"}
    for key in sorted(unknown, key=str):
        check.add(source, data, f"unknown key '{key}'")
    codes = set(db.session.scalars(select(Occupation.code).where(Occupation.retired_at.is_(None))))
    spec = ProgramSpec(
        slug=check.slug(source, data),
        title=check.text(source, data, "title"),
        purpose=check.text(source, data, "purpose", max_len=2000),
        audience=check.text(source, data, "audience", max_len=1000),
        normal_weeks=check.integer(source, data, "normal_weeks", low=1, high=520) or 0,
        occupations=check.ids(source, data, "occupations", codes),
    )
    courses = data.get("courses")
    if not isinstance(courses, list) or not 1 <= len(courses) <= MAX_COURSES:
        check.add(source, data, f"'courses' must list 1 to {MAX_COURSES} course slugs in the order they are taken")
    else:
        for slug in courses:
            slug = str(slug)
            if slug in spec.courses:
                check.add(source, courses, f"course '{slug}' is listed twice")
            elif slug not in known_courses:
                check.add(source, courses, f"unknown course '{slug}' (import the course first)")
            else:
                spec.courses.append(slug)
    if check.problems:
        raise CatalogError(check.problems)
    return spec


def program_file(spec: ProgramSpec) -> str:
    """The canonical text of a program file; import → export round-trips byte for byte."""
    return dump(
        {
            "slug": spec.slug,
            "title": spec.title,
            "purpose": spec.purpose,
            "audience": spec.audience,
            "normal_weeks": spec.normal_weeks,
            "occupations": spec.occupations,
            "courses": spec.courses,
        }
    )


def program_spec(program: Program) -> ProgramSpec:
    return ProgramSpec(
        slug=program.slug,
        title=program.title,
        purpose=program.purpose,
        audience=program.audience,
        normal_weeks=program.normal_weeks,
        occupations=[o.code for o in program.occupations],
        courses=[step.course.slug for step in program.steps],
    )


def program_outline() -> tuple:
    """Loader options for a program's courses and occupations (built on use: building them at import time would
    configure every mapper before all model modules are imported)."""
    return selectinload(Program.steps).selectinload(ProgramCourse.course), selectinload(Program.occupations)


def get_program(slug: str) -> Program | None:
    """A program with its courses and occupations (three queries), whatever its status."""
    return db.session.scalar(select(Program).where(Program.slug == slug).options(*program_outline()))


def apply_program(spec: ProgramSpec, *, now: datetime, status: CourseStatus) -> tuple[Program, str]:
    """Create or update the program ``spec.slug``. Returns (program, "created"|"updated"|"unchanged").

    A published program needs every one of its courses published (raises DomainError). A changed course
    list bumps the version. Caller commits.
    """
    digest = hashlib.sha256(program_file(spec).encode()).hexdigest()
    program = get_program(spec.slug)
    if program is not None and program.content_hash == digest and program.status is status:
        return program, "unchanged"
    courses = {c.slug: c for c in db.session.scalars(select(Course).where(Course.slug.in_(spec.courses)))}
    if status is CourseStatus.PUBLISHED:
        unpublished = [slug for slug in spec.courses if courses[slug].status is not CourseStatus.PUBLISHED]
        if unpublished:
            raise DomainError(
                gettext(
                    "Program '%(slug)s' cannot be published while these courses are not: %(courses)s.",
                    slug=spec.slug,
                    courses=", ".join(unpublished),
                )
            )
    outcome = "updated"
    if program is None:
        program = Program(slug=spec.slug, created_at=now, version=0)
        db.session.add(program)
        outcome = "created"
    old_courses = [step.course_id for step in program.steps]
    program.title, program.purpose, program.audience = spec.title, spec.purpose, spec.audience
    program.normal_weeks = spec.normal_weeks
    by_code = {o.code: o for o in db.session.scalars(select(Occupation).where(Occupation.code.in_(spec.occupations)))}
    program.occupations = [by_code[c] for c in spec.occupations]
    new_courses = [courses[slug].id for slug in spec.courses]
    if new_courses != old_courses:
        existing = {step.course_id: step for step in program.steps}
        steps = []
        for position, course_id in enumerate(new_courses):
            step = existing.pop(course_id, None) or ProgramCourse(course_id=course_id)
            step.position = position
            steps.append(step)
        program.steps = steps
        program.version = (program.version or 0) + 1
    program.content_hash = digest
    program.status = status
    program.updated_at = now
    if status is CourseStatus.PUBLISHED and program.published_at is None:
        program.published_at = now
    db.session.flush()
    db.session.expire(program, ["steps"])
    return program, outcome


def program_files(path: Path) -> list[Path]:
    """The program files beside a catalog: ``PATH/programs/*.yaml`` (or PATH itself if it is that folder)."""
    folder = path if path.name == PROGRAMS_FOLDER else path / PROGRAMS_FOLDER
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def import_programs(files: list[Path], *, now: datetime, status: CourseStatus) -> list[tuple[Program, str]]:
    """Validate every file, then apply them. Raises CatalogError listing all problems (nothing applied)."""
    known = set(db.session.scalars(select(Course.slug)))
    problems: list[str] = []
    specs: list[ProgramSpec] = []
    for path in files:
        source = f"{PROGRAMS_FOLDER}/{path.name}"
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CatalogError([f"{source}: larger than {MAX_FILE_BYTES // 1000} kB"])
            spec = parse_program(path.read_text(encoding="utf-8"), source=source, known_courses=known)
        except CatalogError as error:
            problems.extend(error.problems)
            continue
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{source}: cannot read ({error})")
            continue
        if path.stem != spec.slug:
            problems.append(f"{source}: the file must be named after its slug ({spec.slug}.yaml)")
        specs.append(spec)
    if problems:
        raise CatalogError(problems)
    results = []
    for spec in specs:
        try:
            results.append(apply_program(spec, now=now, status=status))
        except DomainError as error:
            problems.append(f"{PROGRAMS_FOLDER}/{spec.slug}.yaml: {error.message}")
    if problems:
        raise CatalogError(problems)
    return results


def export_program(program: Program, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{program.slug}.yaml"
    path.write_text(program_file(program_spec(program)), encoding="utf-8", newline="\n")
    return path


# ---- studio --------------------------------------------------------------------------------------


def create_program(actor: User, spec: ProgramSpec, *, now: datetime) -> Program:
    """A new draft program. Raises DomainError if the slug is taken or invalid. Caller commits."""
    if not SLUG.match(spec.slug):
        raise DomainError(gettext("Use lowercase letters, digits and single hyphens."), field="slug")
    if db.session.scalar(select(Program.id).where(Program.slug == spec.slug)) is not None:
        raise DomainError(gettext("Another program already uses this slug."), field="slug")
    try:
        with db.session.begin_nested():
            program, _ = apply_program(spec, now=now, status=CourseStatus.DRAFT)
    except IntegrityError:
        raise DomainError(gettext("Another program already uses this slug."), field="slug") from None
    audit.record(actor, "program.created", "program", spec.slug, f"Created program {spec.title}", now=now)
    return program


def save_program(actor: User, program: Program, spec: ProgramSpec, *, now: datetime) -> Program:
    """Save edited details and courses, keeping the program's status. Raises DomainError. Caller commits."""
    before = program_spec(program)
    if not spec.courses:
        raise DomainError(gettext("Choose at least one course."), field="courses")
    if program.status is CourseStatus.PUBLISHED:
        missing = db.session.scalars(
            select(Course.slug).where(Course.slug.in_(spec.courses), Course.status != CourseStatus.PUBLISHED)
        ).all()
        if missing:
            raise DomainError(
                gettext(
                    "A published program can only hold published courses; not published: %(courses)s.",
                    courses=", ".join(missing),
                ),
                field="courses",
            )
    program, _ = apply_program(spec, now=now, status=program.status)
    audit.record(
        actor,
        "program.edited",
        "program",
        program.slug,
        f"Edited program {program.title}",
        now=now,
        before=vars(before),
        after=vars(spec),
    )
    return program


def set_program_status(actor: User, program: Program, status: CourseStatus, *, now: datetime) -> None:
    """Publish, archive or return to draft. Raises DomainError (e.g. an unpublished course). Caller commits."""
    if status is CourseStatus.DRAFT and program.published_at is not None:
        raise DomainError(gettext("A published program cannot go back to draft; archive it instead."))
    before = program.status.value
    apply_program(program_spec(program), now=now, status=status)
    audit.record(
        actor,
        f"program.{status.value}",
        "program",
        program.slug,
        f"Program {program.title}: {before} → {status.value}",
        now=now,
        before={"status": before},
        after={"status": status.value},
    )


def move_course(program: Program, index: int, delta: int) -> ProgramSpec:
    """The program's spec with course ``index`` moved up (-1) or down (+1). Raises DomainError."""
    spec = program_spec(program)
    target = index + delta
    if not (0 <= index < len(spec.courses) and 0 <= target < len(spec.courses)):
        raise DomainError(gettext("That course cannot move further."))
    spec.courses[index], spec.courses[target] = spec.courses[target], spec.courses[index]
    return spec


# ---- learners --------------------------------------------------------------------------------------


def published_programs() -> list[Program]:
    """Published programs with their courses and occupations (three queries)."""
    return list(
        db.session.scalars(
            select(Program)
            .where(Program.status == CourseStatus.PUBLISHED)
            .options(*program_outline())
            .order_by(Program.title)
        )
    )


def published_programs_detached() -> list[Program]:
    """``published_programs`` loaded in a session of their own, closed at once: safe to share read-only from
    the content cache (core/contentcache.py)."""
    from sqlalchemy.orm import Session

    with Session(bind=db.session.connection()) as private:
        return list(
            private.scalars(
                select(Program)
                .where(Program.status == CourseStatus.PUBLISHED)
                .options(*program_outline())
                .order_by(Program.title)
            )
        )


def load_program(slug: str, *, include_drafts: bool = False) -> Program | None:
    program = get_program(slug)
    if program is None or (program.status is CourseStatus.DRAFT and not include_drafts):
        return None
    return program


def get_program_enrollment(user, program: Program) -> ProgramEnrollment | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(
        select(ProgramEnrollment).where(
            ProgramEnrollment.user_id == user.id, ProgramEnrollment.program_id == program.id
        )
    )


def enroll_program(user: User, program: Program, *, now: datetime) -> tuple[ProgramEnrollment, bool]:
    """Enroll in the program and in each of its courses (all idempotent: double clicks and races are safe).

    Raises DomainError when the program is not open. Returns (program enrollment, created). Caller commits.
    """
    if program.status is not CourseStatus.PUBLISHED:
        raise DomainError(gettext("This program is not open for enrollment."))
    enrollment = get_program_enrollment(user, program)
    created = False
    if enrollment is None:
        enrollment = ProgramEnrollment(user_id=user.id, program_id=program.id, enrolled_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(enrollment)
            created = True
        except IntegrityError:
            enrollment = get_program_enrollment(user, program)
    for course in program.courses:
        if course.status is CourseStatus.PUBLISHED:
            course_services.enroll(user, course, now=now)
    if created:
        program_enrolled.send(enrollment, user_id=user.id, now=now)
    return enrollment, created


@dataclass
class CourseProgress:
    course: Course
    steps: int
    done: int
    enrollment: Enrollment | None

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.steps) if self.steps else 0

    @property
    def completed(self) -> bool:
        return self.enrollment is not None and self.enrollment.completed_at is not None


@dataclass
class ProgramProgress:
    program: Program
    enrollment: ProgramEnrollment | None
    courses: list[CourseProgress]

    @property
    def steps(self) -> int:
        return sum(c.steps for c in self.courses)

    @property
    def done(self) -> int:
        return sum(c.done for c in self.courses)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.steps) if self.steps else 0

    @property
    def completed_courses(self) -> int:
        return sum(1 for c in self.courses if c.completed)

    @property
    def next_course(self) -> Course | None:
        return next((c.course for c in self.courses if not c.completed), None)


def progress(user_id: int, programs: list[Program]) -> dict[int, ProgramProgress]:
    """{program id: progress} for one learner across several programs, in four queries whatever their size.

    Steps are counted as on a course page: every lesson, plus one per module quiz; a quiz counts as done
    when passed in the current cycle (after a renewal started, only attempts since then).
    """
    course_ids = {step.course_id for p in programs for step in p.steps}
    if not course_ids:
        return {p.id: ProgramProgress(p, None, []) for p in programs}
    step_totals = course_services.step_counts(course_ids)
    enrollments = {
        e.course_id: e
        for e in db.session.scalars(
            select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.course_id.in_(course_ids))
        )
    }
    done: dict[int, int] = {}
    if enrollments:
        lessons_done = (
            select(Enrollment.course_id.label("course_id"), func.count(LessonProgress.id).label("n"))
            .join(LessonProgress, LessonProgress.enrollment_id == Enrollment.id)
            .where(Enrollment.id.in_([e.id for e in enrollments.values()]))
            .group_by(Enrollment.course_id)
        )
        quizzes_done = (
            select(Enrollment.course_id.label("course_id"), func.count(func.distinct(QuizAttempt.quiz_id)).label("n"))
            .join(QuizAttempt, QuizAttempt.enrollment_id == Enrollment.id)
            .where(
                Enrollment.id.in_([e.id for e in enrollments.values()]),
                QuizAttempt.passed.is_(True),
                (Enrollment.renewal_started_at.is_(None)) | (QuizAttempt.submitted_at >= Enrollment.renewal_started_at),
            )
            .group_by(Enrollment.course_id)
        )
        both = lessons_done.union_all(quizzes_done).subquery()
        done = dict(db.session.execute(select(both.c.course_id, func.sum(both.c.n)).group_by(both.c.course_id)).all())
    program_ids = [p.id for p in programs]
    program_enrollments = {
        e.program_id: e
        for e in db.session.scalars(
            select(ProgramEnrollment).where(
                ProgramEnrollment.user_id == user_id, ProgramEnrollment.program_id.in_(program_ids)
            )
        )
    }
    result = {}
    for p in programs:
        rows = [
            CourseProgress(
                course=c,
                steps=step_totals.get(c.id, 0),
                done=int(done.get(c.id, 0)),
                enrollment=enrollments.get(c.id),
            )
            for c in p.courses
        ]
        result[p.id] = ProgramProgress(p, program_enrollments.get(p.id), rows)
    return result


def my_programs(user: User) -> list[ProgramProgress]:
    """The learner's program enrollments with progress (a fixed number of queries)."""
    programs = list(
        db.session.scalars(
            select(Program)
            .join(ProgramEnrollment, ProgramEnrollment.program_id == Program.id)
            .where(ProgramEnrollment.user_id == user.id)
            .options(selectinload(Program.steps).selectinload(ProgramCourse.course))
            .order_by(ProgramEnrollment.enrolled_at.desc())
        )
    )
    found = progress(user.id, programs)
    return [found[p.id] for p in programs]


def spec_from_values(values: dict[str, Any]) -> ProgramSpec:
    return ProgramSpec(
        slug=values["slug"],
        title=values["title"].strip(),
        purpose=values["purpose"].strip(),
        audience=values["audience"].strip(),
        normal_weeks=values["normal_weeks"],
        occupations=list(values.get("occupations") or []),
        courses=list(values.get("courses") or []),
    )
