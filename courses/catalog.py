"""Course bundles as plain files (see courses/catalog/FORMAT.md): validate, import, export.

Import validates the whole bundle first and writes nothing unless all of it is valid.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.errors import DomainError
from core.extensions import db
from core.yamlload import YamlError, dump, line_of, load, quoted
from courses.markdown import OWN_MEDIA, render
from courses.models import Choice, Course, CourseStatus, Lesson, Module, Question, QuestionKind, Quiz
from courses.spec import (  # noqa: F401  (the spec classes are also imported from here)
    COURSE_DETAILS,
    DEFAULT_LANGUAGE,
    LANGUAGES,
    ChoiceSpec,
    CourseSpec,
    LessonSpec,
    ModuleSpec,
    OneOf,
    QuestionSpec,
    QuizSpec,
    Text,
    Whole,
    detail_default,
    details,
)
from skills.models import Occupation, PlanGoal, Skill

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_FILE_BYTES = 200_000
CATALOG_DIR = Path(__file__).with_name("catalog")


class CatalogError(DomainError):
    """A bundle is invalid; ``problems`` lists each problem with its file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The course bundle has problems:\n" + "\n".join(problems))
        self.problems = problems


Reader = Callable[[str], str]


def folder_reader(folder: Path) -> Reader:
    root = folder.resolve()

    def read(relative: str) -> str:
        path = (folder / relative).resolve()
        if not path.is_relative_to(root):
            raise ValueError("the path leaves the course folder")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES // 1000} kB")
        return path.read_text(encoding="utf-8")

    return read


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, source: str, node: Any, message: str) -> None:
        line = line_of(node)
        self.problems.append(f"{source}, line {line}: {message}" if line else f"{source}: {message}")

    def text(self, source: str, node: dict, key: str, *, max_len: int = 200, required: bool = True) -> str:
        value = node.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.add(source, node, f"'{key}' is required and must be text")
            return ""
        if len(value) > max_len:
            self.add(source, node, f"'{key}' is longer than {max_len} characters")
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            self.add(source, node, f"'{key}' contains control characters")
        return value.strip()

    def integer(self, source: str, node: dict, key: str, *, low: int, high: int, nullable: bool = False) -> int | None:
        value = node.get(key)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(
                source, node, f"'{key}' must be a whole number from {low} to {high}" + (" or null" if nullable else "")
            )
            return None
        return value

    def day(self, source: str, node: dict, key: str) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, datetime) or not isinstance(value, date | str):
            self.add(source, node, f"'{key}' must be a date written YYYY-MM-DD")
            return None
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                self.add(source, node, f"'{key}' must be a date written YYYY-MM-DD, not '{quoted(value)}'")
                return None
        return value.isoformat()

    def one_of(self, source: str, node: dict, key: str, rule: OneOf, default: str) -> str:
        value = node.get(key, default)
        if not isinstance(value, str) or value not in rule.choices:
            self.add(
                source, node, f"'{key}' must be one of {', '.join(rule.choices)}{rule.hint}, not '{quoted(value)}'"
            )
            return default
        return value

    def detail(self, source: str, node: dict, key: str, rule: Text | Whole | OneOf) -> Any:
        """One of the course's details (courses/spec.py), checked by its rule."""
        if isinstance(rule, Text):
            return self.text(source, node, key, max_len=rule.max_len)
        if isinstance(rule, Whole):
            value = self.integer(source, node, key, low=rule.low, high=rule.high, nullable=rule.nullable)
            return value if value is not None or rule.nullable else 0
        return self.one_of(source, node, key, rule, detail_default(key))

    def slug(self, source: str, node: dict) -> str:
        value = node.get("slug")
        if not isinstance(value, str) or not SLUG.match(value) or len(value) > 80:
            self.add(source, node, "'slug' must be lowercase letters, digits and single hyphens (at most 80)")
            return ""
        return value

    def ids(self, source: str, node: dict, key: str, known: set[str]) -> list[str]:
        value = node.get(key) or []
        if not isinstance(value, list):
            self.add(source, node, f"'{key}' must be a list")
            return []
        result = []
        for item in value:
            if not isinstance(item, str | int) or isinstance(item, bool):
                self.add(source, node, f"'{key}' must list ids, not {quoted(item)}")
                continue
            item = str(item)
            if item not in known:
                self.add(source, node, f"unknown {key[:-1]} id '{quoted(item)}' (not in the skills framework)")
            elif item not in result:
                result.append(item)
        return result

    def path(self, source: str, node: dict) -> str | None:
        value = node.get("file")
        if not isinstance(value, str) or not value:
            self.add(source, node, "'file' is required")
            return None
        pure = PurePosixPath(value)
        if pure.is_absolute() or ".." in pure.parts or "\\" in value or value.startswith("~"):
            self.add(source, node, f"'file' must be a path inside the course folder, not '{quoted(value)}'")
            return None
        return value


def _known_ids() -> tuple[set[str], set[str], set[str]]:
    skills = set(db.session.scalars(select(Skill.id).where(Skill.retired_at.is_(None))))
    goals = set(db.session.scalars(select(PlanGoal.id).where(PlanGoal.retired_at.is_(None))))
    codes = set(db.session.scalars(select(Occupation.code).where(Occupation.retired_at.is_(None))))
    return skills, goals, codes


def parse_bundle(read: Reader) -> CourseSpec:
    """Validate a course bundle read through ``read(relative_path)``; raise CatalogError listing every problem."""
    check = _Checker()
    skills, goals, codes = _known_ids()

    def read_yaml(name: str) -> Any:
        try:
            return load(read(name), source=name)
        except YamlError as error:
            check.problems.append(str(error))
        except (OSError, ValueError, UnicodeDecodeError) as error:
            check.problems.append(f"{name}: cannot read ({error})")
        return None

    data = read_yaml("course.yaml")
    if not isinstance(data, dict):
        if data is not None:
            check.add("course.yaml", data, "must be a mapping")
        raise CatalogError(check.problems or ["course.yaml: missing or empty"])
    src = "course.yaml"
    course = CourseSpec(
        slug=check.slug(src, data),
        **{name: check.detail(src, data, name, rule) for name, rule in COURSE_DETAILS.items()},
        skills=check.ids(src, data, "skills", skills),
        goals=check.ids(src, data, "goals", goals),
        occupations=check.ids(src, data, "occupations", codes),
    )
    modules = data.get("modules")
    if not isinstance(modules, list) or not modules:
        check.add(src, data, "'modules' must be a non-empty list")
        modules = []
    module_slugs: set[str] = set()
    for mnode in modules:
        if not isinstance(mnode, dict):
            check.add(src, modules, "each module must be a mapping")
            continue
        module = ModuleSpec(
            slug=check.slug(src, mnode),
            title=check.text(src, mnode, "title"),
            summary=check.text(src, mnode, "summary", max_len=2000, required=False),
            skills=check.ids(src, mnode, "skills", skills),
            goals=check.ids(src, mnode, "goals", goals),
            lessons=[],
            quiz=None,
        )
        if module.slug in module_slugs:
            check.add(src, mnode, f"module slug '{module.slug}' is used twice")
        module_slugs.add(module.slug)
        lessons = mnode.get("lessons")
        if not isinstance(lessons, list) or not lessons:
            check.add(src, mnode, f"module '{module.slug}' needs at least one lesson")
            lessons = []
        lesson_slugs: set[str] = set()
        for lnode in lessons:
            if not isinstance(lnode, dict):
                check.add(src, lessons, "each lesson must be a mapping")
                continue
            lesson = LessonSpec(
                slug=check.slug(src, lnode),
                title=check.text(src, lnode, "title"),
                minutes=check.integer(src, lnode, "minutes", low=1, high=600) or 0,
                body="",
                review_by=check.day(src, lnode, "review_by"),
            )
            if lesson.slug == "quiz":
                check.add(src, lnode, "'quiz' is reserved for the module's quiz page; choose another lesson slug")
            if lesson.slug in lesson_slugs:
                check.add(src, lnode, f"lesson slug '{lesson.slug}' is used twice in module '{module.slug}'")
            lesson_slugs.add(lesson.slug)
            path = check.path(src, lnode)
            if path:
                try:
                    lesson.body = read(path)
                except (OSError, ValueError, UnicodeDecodeError) as error:
                    check.add(src, lnode, f"lesson file '{path}' cannot be read ({error})")
                else:
                    if not lesson.body.strip():
                        check.add(path, None, "the lesson is empty")
                    for number, text in enumerate(lesson.body.splitlines(), 1):
                        if re.search(r"<\s*(script|iframe|object|embed|style)\b", text, re.I):
                            check.problems.append(
                                f"{path}, line {number}: raw HTML ({text.strip()[:40]}) is not allowed"
                            )
                        if re.search(r"!\[\s*\]\(", text):
                            check.problems.append(
                                f"{path}, line {number}: an image needs alt text: ![what it shows](…)"
                            )
                        for url in re.findall(r"!\[[^\]]*\]\(\s*<?([^)\s>]*)", text):
                            if not OWN_MEDIA.fullmatch(url):
                                check.problems.append(
                                    f"{path}, line {number}: images must be uploaded in the studio "
                                    f"(/media/…), not linked from '{quoted(url)}'"
                                )
            module.lessons.append(lesson)
        qnode = mnode.get("quiz")
        if qnode is not None:
            module.quiz = _parse_quiz(check, qnode, read_yaml)
        course.modules.append(module)
    if check.problems:
        raise CatalogError(check.problems)
    return course


def _parse_quiz(check: _Checker, qnode: Any, read_yaml: Callable[[str], Any]) -> QuizSpec | None:
    src = "course.yaml"
    if not isinstance(qnode, dict):
        check.add(src, qnode, "'quiz' must be a mapping")
        return None
    quiz = QuizSpec(
        title=check.text(src, qnode, "title"),
        pass_mark=check.integer(src, qnode, "pass_mark", low=1, high=100) or 0,
        max_attempts=check.integer(src, qnode, "max_attempts", low=1, high=100, nullable=True),
        cooldown_minutes=check.integer(src, qnode, "cooldown_minutes", low=0, high=10_080) or 0,
        questions=[],
    )
    if "failure_cooldown_minutes" in qnode:
        quiz.failure_cooldown_minutes = check.integer(src, qnode, "failure_cooldown_minutes", low=0, high=10_080) or 0
    path = check.path(src, qnode)
    if not path:
        return quiz
    data = read_yaml(path)
    if data is None:
        return quiz
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list) or not questions:
        check.add(path, data, "'questions' must be a non-empty list")
        return quiz
    for node in questions:
        if not isinstance(node, dict):
            check.add(path, questions, "each question must be a mapping")
            continue
        kind = node.get("kind")
        if kind not in {k.value for k in QuestionKind}:
            check.add(path, node, "'kind' must be single, multiple or true_false")
        choices = node.get("choices")
        specs = []
        if not isinstance(choices, list) or not 2 <= len(choices) <= 8:
            check.add(path, node, "a question needs 2 to 8 choices")
            choices = []
        for cnode in choices:
            if not isinstance(cnode, dict):
                check.add(path, choices, "each choice must be a mapping with 'text'")
                continue
            correct = cnode.get("correct", False)
            if not isinstance(correct, bool):
                check.add(path, cnode, "'correct' must be true or false")
            specs.append(ChoiceSpec(text=check.text(path, cnode, "text", max_len=1000), correct=correct is True))
        right = sum(c.correct for c in specs)
        if kind in {"single", "true_false"} and right != 1:
            check.add(path, node, f"a {kind} question needs exactly one correct choice (found {right})")
        if kind == "multiple" and right < 1:
            check.add(path, node, "a multiple question needs at least one correct choice")
        if kind == "true_false" and len(specs) != 2:
            check.add(path, node, "a true_false question has exactly two choices")
        if len({c.text for c in specs}) != len(specs):
            check.add(path, node, "two choices have the same text")
        quiz.questions.append(
            QuestionSpec(
                kind=str(kind),
                prompt=check.text(path, node, "prompt", max_len=2000),
                choices=specs,
                explanation=check.text(path, node, "explanation", max_len=4000),
            )
        )
    return quiz


def spec_files(spec: CourseSpec) -> dict[str, str]:
    """The canonical files of a course, {relative path: text}; import → export round-trips byte for byte."""
    files: dict[str, str] = {}
    modules = []
    for m_index, module in enumerate(spec.modules, 1):
        folder = f"{m_index:02d}-{module.slug}"
        lessons = []
        for l_index, lesson in enumerate(module.lessons, 1):
            path = f"{folder}/{l_index:02d}-{lesson.slug}.md"
            files[path] = lesson.body
            entry_lesson: dict[str, Any] = {"slug": lesson.slug, "title": lesson.title, "minutes": lesson.minutes}
            if lesson.review_by:
                entry_lesson["review_by"] = date.fromisoformat(lesson.review_by)
            lessons.append(entry_lesson | {"file": path})
        entry: dict[str, Any] = {"slug": module.slug, "title": module.title}
        if module.summary:
            entry["summary"] = module.summary
        entry |= {"skills": module.skills, "goals": module.goals, "lessons": lessons}
        if module.quiz:
            quiz = module.quiz
            quiz_path = f"{folder}/quiz.yaml"
            entry["quiz"] = {
                "title": quiz.title,
                "pass_mark": quiz.pass_mark,
                "max_attempts": quiz.max_attempts,
                "cooldown_minutes": quiz.cooldown_minutes,
            }
            if quiz.failure_cooldown_minutes != QuizSpec.failure_cooldown_minutes:
                entry["quiz"]["failure_cooldown_minutes"] = quiz.failure_cooldown_minutes
            entry["quiz"]["file"] = quiz_path
            files[quiz_path] = dump(
                {
                    "questions": [
                        {
                            "kind": q.kind,
                            "prompt": q.prompt,
                            "choices": [
                                {"text": c.text, "correct": True} if c.correct else {"text": c.text} for c in q.choices
                            ],
                            "explanation": q.explanation,
                        }
                        for q in quiz.questions
                    ]
                }
            )
        modules.append(entry)
    # a detail whose rule says so is left out at its default, so files written before it existed round-trip
    written = {
        name: value
        for name, value in details(spec).items()
        if not getattr(COURSE_DETAILS[name], "omit_default", False) or value != detail_default(name)
    }
    files["course.yaml"] = dump(
        {
            "slug": spec.slug,
            **written,
            "skills": spec.skills,
            "goals": spec.goals,
            "occupations": spec.occupations,
            "modules": modules,
        }
    )
    return dict(sorted(files.items()))


def content_hash(spec: CourseSpec) -> str:
    """The SHA-256 of the course's canonical files. Kept per process by the spec's repr (every field, nested, by
    value): an import of files already imported (every `courses import` of an unchanged catalog) compares hashes
    without writing the canonical YAML again, which is most of the cost of an unchanged import."""
    key = hashlib.sha256(repr(spec).encode()).digest()  # the repr itself is ~100 KB for a shipped course
    with _hashes_lock:
        digest = _hashes.get(key)
        if digest is not None:
            _hashes.move_to_end(key)
            return digest
    sha = hashlib.sha256()
    for path, text in spec_files(spec).items():
        sha.update(path.encode() + b"\0" + text.encode() + b"\0")
    digest = sha.hexdigest()
    with _hashes_lock:
        _hashes[key] = digest
        while len(_hashes) > 256:
            _hashes.popitem(last=False)
    return digest


_hashes: OrderedDict[bytes, str] = OrderedDict()
_hashes_lock = threading.Lock()


def _by_ids(model, ids: list[str]) -> list:
    rows = {
        getattr(r, "id", None) or r.code: r
        for r in db.session.scalars(select(model).where((model.code if model is Occupation else model.id).in_(ids)))
    }
    return [rows[i] for i in ids]


def apply_spec(spec: CourseSpec, *, now: datetime, status: CourseStatus = CourseStatus.PUBLISHED) -> tuple[Course, str]:
    """Create or update the course with ``spec.slug``. Returns (course, "created"|"updated"|"unchanged").

    Modules, lessons and quizzes are matched by slug and updated in place, so learners keep
    their progress on every step that still exists. Caller commits.
    """
    digest = content_hash(spec)
    course = db.session.scalar(
        select(Course)
        .where(Course.slug == spec.slug)
        .options(
            selectinload(Course.modules).selectinload(Module.lessons),
            selectinload(Course.modules)
            .selectinload(Module.quiz)
            .selectinload(Quiz.questions)
            .selectinload(Question.choices),
        )
    )
    if course is not None and course.content_hash == digest and course.status is status:
        return course, "unchanged"
    outcome = "updated"
    if course is None:
        course = Course(slug=spec.slug, created_at=now, version=0)
        db.session.add(course)
        outcome = "created"
    for name, value in details(spec).items():
        setattr(course, name, value)
    course.skills = _by_ids(Skill, spec.skills)
    course.goals = _by_ids(PlanGoal, spec.goals)
    course.occupations = _by_ids(Occupation, spec.occupations)
    if course.content_hash != digest:
        course.version = (course.version or 0) + 1
        course.content_hash = digest
    course.status = status
    course.updated_at = now
    if status is CourseStatus.PUBLISHED and course.published_at is None:
        course.published_at = now

    existing = {m.slug: m for m in course.modules}
    modules = []
    for position, mspec in enumerate(spec.modules):
        module = existing.pop(mspec.slug, None) or Module(slug=mspec.slug)
        module.position, module.title, module.summary = position, mspec.title, mspec.summary
        module.skills = _by_ids(Skill, mspec.skills)
        module.goals = _by_ids(PlanGoal, mspec.goals)
        _apply_lessons(module, mspec.lessons)
        _apply_quiz(module, mspec.quiz)
        modules.append(module)
    course.modules = modules  # modules no longer in the bundle are deleted (delete-orphan)
    db.session.flush()
    return course, outcome


def _apply_lessons(module: Module, specs: list[LessonSpec]) -> None:
    existing = {lesson.slug: lesson for lesson in module.lessons}
    lessons = []
    for position, spec in enumerate(specs):
        lesson = existing.pop(spec.slug, None) or Lesson(slug=spec.slug)
        lesson.position, lesson.title, lesson.minutes = position, spec.title, spec.minutes
        lesson.review_by = date.fromisoformat(spec.review_by) if spec.review_by else None
        if lesson.body_md != spec.body:
            lesson.body_md, lesson.body_html = spec.body, render(spec.body)
        lessons.append(lesson)
    module.lessons = lessons


def _apply_quiz(module: Module, spec: QuizSpec | None) -> None:
    if spec is None:
        module.quiz = None
        return
    quiz = module.quiz or Quiz()
    quiz.title, quiz.pass_mark = spec.title, spec.pass_mark
    quiz.max_attempts, quiz.cooldown_minutes = spec.max_attempts, spec.cooldown_minutes
    quiz.failure_cooldown_minutes = spec.failure_cooldown_minutes
    questions = []
    for position, qspec in enumerate(spec.questions):
        # matched by position and updated in place, so unchanged questions keep their ids
        question = quiz.questions[position] if position < len(quiz.questions) else Question()
        question.position, question.kind = position, QuestionKind(qspec.kind)
        question.prompt, question.explanation = qspec.prompt, qspec.explanation
        choices = []
        for c_position, cspec in enumerate(qspec.choices):
            choice = question.choices[c_position] if c_position < len(question.choices) else Choice()
            choice.position, choice.text, choice.correct = c_position, cspec.text, cspec.correct
            choices.append(choice)
        question.choices = choices
        questions.append(question)
    quiz.questions = questions
    module.quiz = quiz


def _load_outline(course: Course) -> None:
    """Load a stored course's whole outline (its modules' lessons, quizzes, questions, choices, skills, goals and
    occupations) in one statement per level, not one lazy load per module, quiz and question (~60 statements for a
    five-module course). Collections the session already holds are kept as they are."""
    if db.inspect(course).persistent:
        modules = selectinload(Course.modules)
        db.session.scalars(
            select(Course)
            .where(Course.id == course.id)
            .options(
                selectinload(Course.skills),
                selectinload(Course.goals),
                selectinload(Course.occupations),
                modules.selectinload(Module.lessons),
                modules.selectinload(Module.skills),
                modules.selectinload(Module.goals),
                modules.selectinload(Module.quiz).selectinload(Quiz.questions).selectinload(Question.choices),
            )
        ).all()


def course_spec(course: Course) -> CourseSpec:
    """The bundle form of a course in the database (for export)."""
    _load_outline(course)
    return CourseSpec(
        slug=course.slug,
        **{name: getattr(course, name) for name in COURSE_DETAILS},
        skills=[s.id for s in course.skills],
        goals=[g.id for g in course.goals],
        occupations=[o.code for o in course.occupations],
        modules=[
            ModuleSpec(
                slug=m.slug,
                title=m.title,
                summary=m.summary,
                skills=[s.id for s in m.skills],
                goals=[g.id for g in m.goals],
                lessons=[
                    LessonSpec(
                        slug=lesson.slug,
                        title=lesson.title,
                        minutes=lesson.minutes,
                        body=lesson.body_md,
                        review_by=lesson.review_by.isoformat() if lesson.review_by else None,
                    )
                    for lesson in m.lessons
                ],
                quiz=None
                if m.quiz is None
                else QuizSpec(
                    title=m.quiz.title,
                    pass_mark=m.quiz.pass_mark,
                    max_attempts=m.quiz.max_attempts,
                    cooldown_minutes=m.quiz.cooldown_minutes,
                    failure_cooldown_minutes=m.quiz.failure_cooldown_minutes,
                    questions=[
                        QuestionSpec(
                            kind=q.kind.value,
                            prompt=q.prompt,
                            explanation=q.explanation,
                            choices=[ChoiceSpec(text=c.text, correct=c.correct) for c in q.choices],
                        )
                        for q in m.quiz.questions
                    ],
                ),
            )
            for m in course.modules
        ],
    )


def read_folder(folder: Path) -> CourseSpec:
    """Validate one course folder. Raises CatalogError naming each problem as folder/file, line."""
    if not (folder / "course.yaml").is_file():
        raise CatalogError([f"{folder}: no course.yaml here"])
    try:
        return parse_bundle(folder_reader(folder))
    except CatalogError as error:
        raise CatalogError([f"{folder.name}/{p}" for p in error.problems]) from None


def import_folder(
    folder: Path, *, now: datetime, status: CourseStatus = CourseStatus.PUBLISHED, warnings: list[str] | None = None
):
    """Validate and import one course folder. Raises CatalogError (nothing written). Caller commits.

    Quiz-balance warnings do not stop the import; they are appended to ``warnings`` when a list is given.
    """
    spec = read_folder(folder)
    if warnings is not None:
        warnings.extend(f"{folder.name}: {w}" for w in quiz_warnings(spec))
    return apply_spec(spec, now=now, status=status)


def course_folders(path: Path) -> list[Path]:
    """``path`` itself if it is a course folder, else its course subfolders in name order."""
    if (path / "course.yaml").is_file():
        return [path]
    return sorted(p for p in path.iterdir() if (p / "course.yaml").is_file()) if path.is_dir() else []


def export_course(course: Course, target: Path) -> list[Path]:
    """Write the course's canonical files under ``target`` (created if needed)."""
    written = []
    for relative, text in spec_files(course_spec(course)).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


# ---- quiz balance ------------------------------------------------------------------------------
# A learner who always picks the longest option, or always answers "False", should not pass.
LONGEST_CORRECT_MAX = 0.35
TRUE_SHARE_RANGE = (0.40, 0.60)
# How a true_false question's two choices are written, per course language ("True"/"False" in English courses)
TRUE_FALSE_WORDS = {"en": ("True", "False"), "es": ("Verdadero", "Falso")}
TRUE_WORDS = frozenset(true.lower() for true, _ in TRUE_FALSE_WORDS.values())


@dataclass(frozen=True)
class QuizBalance:
    """Per-course counts behind the quiz-balance warnings; ``*_at`` name questions as "module.question"."""

    single: int
    longest_correct: int
    true_false: int
    keyed_true: int
    longest_at: tuple[str, ...] = ()
    true_at: tuple[str, ...] = ()

    @property
    def longest_share(self) -> float:
        return self.longest_correct / self.single if self.single else 0.0

    @property
    def true_share(self) -> float:
        return self.keyed_true / self.true_false if self.true_false else 0.5

    @property
    def longest_ok(self) -> bool:
        return self.longest_correct <= LONGEST_CORRECT_MAX * self.single

    @property
    def true_ok(self) -> bool:
        low, high = TRUE_SHARE_RANGE
        if not self.true_false or low <= self.true_share <= high:
            return True
        # with an odd handful (3 or 5 questions) no count lands in the range: the nearest even split is fine
        return self.true_false % 2 == 1 and abs(2 * self.keyed_true - self.true_false) == 1


def _strictly_longest_is_correct(question: QuestionSpec) -> bool:
    correct = [len(c.text) for c in question.choices if c.correct]
    others = [len(c.text) for c in question.choices if not c.correct]
    return len(correct) == 1 and all(correct[0] > length for length in others)


def quiz_balance(spec: CourseSpec) -> QuizBalance:
    single = longest = tf = true = 0
    longest_at, true_at = [], []
    for m, module in enumerate(spec.modules, 1):
        for q, question in enumerate(module.quiz.questions if module.quiz else [], 1):
            if question.kind == "single":
                single += 1
                if _strictly_longest_is_correct(question):
                    longest += 1
                    longest_at.append(f"{m}.{q}")
            elif question.kind == "true_false":
                tf += 1
                if any(c.correct and c.text.strip().lower() in TRUE_WORDS for c in question.choices):
                    true += 1
                    true_at.append(f"{m}.{q}")
    return QuizBalance(single, longest, tf, true, tuple(longest_at), tuple(true_at))


def quiz_warnings(spec: CourseSpec) -> list[str]:
    """Warnings (never errors) when a course's answer keys reward test-wiseness, with the numbers."""
    balance = quiz_balance(spec)
    warnings = []
    if not balance.longest_ok:
        warnings.append(
            f"The correct option is the longest one in {balance.longest_correct} of {balance.single} single-choice "
            f"questions ({balance.longest_share:.0%}; keep it at or under {LONGEST_CORRECT_MAX:.0%}): a learner who "
            f"picks the longest option passes. Make the wrong options as long and specific as the right one. "
            f"Questions (module.question): {', '.join(balance.longest_at)}."
        )
    if not balance.true_ok:
        low, high = TRUE_SHARE_RANGE
        warnings.append(
            f"{balance.keyed_true} of {balance.true_false} true/false questions are keyed True "
            f"({balance.true_share:.0%}; keep it between {low:.0%} and {high:.0%}): a learner who always answers "
            f"{'False' if balance.true_share < low else 'True'} does well. Rewrite some statements so the other "
            f"answer is right."
        )
    return warnings
