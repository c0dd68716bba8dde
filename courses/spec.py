"""The course specification: one typed shape for a course, owned here and shared by everyone who reads or writes one.

A ``CourseSpec`` is a whole course as plain data (course ▸ modules ▸ lessons and quiz ▸ questions ▸ choices).
Course files (``courses/catalog.py``) parse into it and are written from it; the studio keeps it as JSON in a
``CourseDraft`` and edits it with the plain functions at the bottom of this module; publishing and importing
apply it to the database rows.

The course's own scalar fields (``title`` … ``language``) are *details*: each carries a rule (``Text``,
``Whole``, ``OneOf``) in its dataclass metadata, and everything that handles details goes through
``COURSE_DETAILS`` instead of naming them: the course-file checks and export, the copy to and from the
``Course`` row, and the studio's details form. Adding a detail is therefore: a field here, a column on
``Course`` with its migration, and a field on ``CourseMetaForm`` (docs/ARCHITECTURE.md, "add a course field").

Every field has a default, so a draft saved before a field existed still loads (``from_dict``), and a field
a draft holds that this code no longer knows is ignored with a log line instead of raising a TypeError.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any

from flask_babel import gettext as _

from core.errors import DomainError

log = logging.getLogger(__name__)

# The languages a course may be written in (BCP 47 code → name in that language); English when unsaid.
LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"


# ---- rules for the course's details ------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Required text of at most ``max_len`` characters, without control characters."""

    max_len: int = 200


@dataclass(frozen=True)
class Whole:
    """A whole number from ``low`` to ``high`` (or null, when ``nullable``)."""

    low: int
    high: int
    nullable: bool = False


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``; with ``omit_default`` export leaves the default out, so older files round-trip."""

    choices: tuple[str, ...]
    hint: str = ""
    omit_default: bool = False


def _detail(default: Any, rule: Text | Whole | OneOf) -> Any:
    return field(default=default, metadata={"rule": rule})


# ---- the shape ---------------------------------------------------------------------------------


@dataclass
class ChoiceSpec:
    text: str = ""
    correct: bool = False


@dataclass
class QuestionSpec:
    kind: str = "single"
    prompt: str = ""
    choices: list[ChoiceSpec] = field(default_factory=list)
    explanation: str = ""


@dataclass
class QuizSpec:
    title: str = ""
    pass_mark: int = 70
    max_attempts: int | None = None
    cooldown_minutes: int = 0
    questions: list[QuestionSpec] = field(default_factory=list)
    # minutes to wait after two failed attempts in a row (optional in course.yaml; written only if not the default)
    failure_cooldown_minutes: int = 30


@dataclass
class LessonSpec:
    slug: str = ""
    title: str = ""
    minutes: int = 10
    body: str = ""
    # ISO date after which the lesson's time-sensitive facts must be checked again (None: nothing dated)
    review_by: str | None = None


@dataclass
class ModuleSpec:
    slug: str = ""
    title: str = ""
    summary: str = ""
    skills: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)
    lessons: list[LessonSpec] = field(default_factory=list)
    quiz: QuizSpec | None = None


@dataclass
class CourseSpec:
    # positional order is kept for callers that build specs positionally; course.yaml's key order is
    # slug, the details in this order, then skills, goals, occupations, modules
    slug: str = ""
    title: str = _detail("", Text(200))
    summary: str = _detail("", Text(2000))
    audience: str = _detail("", Text(1000))
    estimated_minutes: int = _detail(0, Whole(1, 10_000))
    validity_months: int | None = _detail(None, Whole(1, 240, nullable=True))
    skills: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)
    occupations: list[str] = field(default_factory=list)
    modules: list[ModuleSpec] = field(default_factory=list)
    language: str = _detail(DEFAULT_LANGUAGE, OneOf(tuple(LANGUAGES), hint=" (a BCP 47 code)", omit_default=True))


# The course's own fields: columns of the same name on Course, keys of course.yaml, fields of the studio's
# details form. Ordered as course.yaml writes them.
COURSE_DETAILS: dict[str, Text | Whole | OneOf] = {
    f.name: f.metadata["rule"] for f in fields(CourseSpec) if "rule" in f.metadata
}


def details(spec: CourseSpec) -> dict[str, Any]:
    """The course's details as {name: value}, in course.yaml order."""
    return {name: getattr(spec, name) for name in COURSE_DETAILS}


def detail_default(name: str) -> Any:
    return next(f.default for f in fields(CourseSpec) if f.name == name)


# ---- as JSON (studio drafts) -------------------------------------------------------------------


def to_dict(spec: CourseSpec) -> dict:
    return asdict(spec)


def from_dict(data: dict, *, source: str = "draft") -> CourseSpec:
    """A spec from its JSON form, tolerant of drafts saved by older or newer code.

    A missing key takes the field's default; a key this code does not know is ignored with a log line (so a
    draft saved before a field was added, or after one was removed, still opens). Raises ValueError when
    ``data`` is not shaped like a course at all (a list where a mapping belongs).
    """
    return _load(CourseSpec, data, source)


@functools.cache
def _shape(cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    # resolving the string annotations (``from __future__ import annotations``) was ~70 % of loading a draft,
    # and a class's annotations never change while the process runs
    return typing.get_type_hints(cls), {f.name: f for f in fields(cls)}


def _load(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, found {type(data).__name__}")
    hints, known = _shape(cls)
    for key in data.keys() - known.keys():
        log.warning("%s: ignored the unknown key %r (saved by another version of the code)", where, key)
    values = {}
    for name, spec_field in known.items():
        if name in data:
            values[name] = _value(hints[name], data[name], f"{where}.{name}")
        elif spec_field.default is MISSING and spec_field.default_factory is MISSING:  # pragma: no cover
            raise ValueError(f"{where}: '{name}' is missing")
    return cls(**values)


def _value(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_dataclass(hint):
        return _load(hint, value, where)
    if origin is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, found {type(value).__name__}")
        return [_value(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


# ---- edits (the studio's actions, as plain functions: a new spec back, the given one untouched) -----------


class NoSuchStep(DomainError):
    """A module or lesson position that the spec does not have (a stale page)."""

    def __init__(self) -> None:
        super().__init__(_("That part of the course no longer exists. Reload the page."))


def _copy(spec: CourseSpec) -> CourseSpec:
    return copy.deepcopy(spec)


def _at(items: list, index: int):
    if not 0 <= index < len(items):
        raise NoSuchStep()
    return items[index]


def move(items: list, index: int, direction: str) -> None:
    """Move ``items[index]`` one place up or down in place. Raises DomainError at either end."""
    target = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= index < len(items) or not 0 <= target < len(items):
        raise DomainError(_("It cannot move further in that direction."))
    items[index], items[target] = items[target], items[index]


def unique_slug(text: str, taken: set[str]) -> str:
    """A slug made from ``text`` that is not in ``taken`` (nor ``quiz``, the quiz page's address)."""
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:70] or "item"
    slug, n = base, 2
    while slug in taken or slug == "quiz":
        slug, n = f"{base}-{n}", n + 1
    return slug


def set_details(spec: CourseSpec, **values: Any) -> CourseSpec:
    """The spec with some of its details (``COURSE_DETAILS``) replaced. Raises TypeError for another name."""
    unknown = values.keys() - COURSE_DETAILS.keys()
    if unknown:
        raise TypeError(f"not a course detail: {', '.join(sorted(unknown))}")
    result = _copy(spec)
    for name, value in values.items():
        setattr(result, name, value)
    return result


def set_tags(spec: CourseSpec, *, skills: list[str], goals: list[str], occupations: list[str]) -> CourseSpec:
    result = _copy(spec)
    result.skills, result.goals, result.occupations = list(skills), list(goals), list(occupations)
    return result


def add_module(spec: CourseSpec, *, title: str, summary: str = "", skills=(), goals=()) -> CourseSpec:
    """The spec with a new last module, its slug made from the title. The module has no lessons or quiz yet."""
    result = _copy(spec)
    slug = unique_slug(title, {m.slug for m in result.modules})
    result.modules.append(ModuleSpec(slug=slug, title=title, summary=summary, skills=list(skills), goals=list(goals)))
    return result


def edit_module(spec: CourseSpec, m: int, *, title: str, summary: str, skills, goals) -> CourseSpec:
    """The spec with module ``m``'s title, summary and tags replaced (its slug stays). Raises NoSuchStep."""
    result = _copy(spec)
    module = _at(result.modules, m)
    module.title, module.summary, module.skills, module.goals = title, summary, list(skills), list(goals)
    return result


def module_action(spec: CourseSpec, m: int, action: str) -> CourseSpec:
    """Move module ``m`` up or down, or delete it. Raises NoSuchStep, or DomainError when it cannot move."""
    result = _copy(spec)
    _at(result.modules, m)
    if action == "delete":
        result.modules.pop(m)
    else:
        move(result.modules, m, action)
    return result


def save_lesson(
    spec: CourseSpec, m: int, n: int | None, *, title: str, minutes: int, body: str, review_by: str | None
) -> CourseSpec:
    """Add a lesson to module ``m`` (``n`` None; slug from the title) or replace lesson ``n``'s content.

    The body is stored with Unix line ends and one final newline, as course files keep it. Raises NoSuchStep.
    """
    result = _copy(spec)
    module = _at(result.modules, m)
    body = lesson_body(body)
    if n is None:
        slug = unique_slug(title, {lesson.slug for lesson in module.lessons})
        module.lessons.append(LessonSpec(slug=slug, title=title, minutes=minutes, body=body, review_by=review_by))
    else:
        lesson = _at(module.lessons, n)
        lesson.title, lesson.minutes, lesson.body, lesson.review_by = title, minutes, body, review_by
    return result


def lesson_body(text: str) -> str:
    """Lesson Markdown as course files keep it: Unix line ends and one final newline."""
    return text.replace("\r\n", "\n").rstrip("\n") + "\n"


def lesson_action(spec: CourseSpec, m: int, n: int, action: str) -> CourseSpec:
    """Move lesson ``n`` of module ``m`` up or down, or delete it. Raises NoSuchStep or DomainError."""
    result = _copy(spec)
    lessons = _at(result.modules, m).lessons
    _at(lessons, n)
    if action == "delete":
        lessons.pop(n)
    else:
        move(lessons, n, action)
    return result


def set_quiz(
    spec: CourseSpec,
    m: int,
    *,
    title: str,
    pass_mark: int,
    max_attempts: int | None,
    cooldown_minutes: int,
    failure_cooldown_minutes: int,
    questions: list[QuestionSpec],
) -> CourseSpec:
    """The spec with module ``m``'s quiz replaced. Raises NoSuchStep."""
    result = _copy(spec)
    _at(result.modules, m).quiz = QuizSpec(
        title=title,
        pass_mark=pass_mark,
        max_attempts=max_attempts,
        cooldown_minutes=cooldown_minutes,
        failure_cooldown_minutes=failure_cooldown_minutes,
        questions=list(questions),
    )
    return result
