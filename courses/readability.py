"""Reading level of lessons: how hard the text a learner reads is, measured for the course's language (textstat).

Worker-audience courses are written for anyone in the workforce, whatever their schooling, so they are held to
plain language. Technical courses for engineers, security staff, managers and energy professionals are measured
and reported but not held to those limits.

- English lessons: Flesch-Kincaid grade, at most 8 on average and 10 in any lesson.
- Spanish lessons: Fernández-Huerta (textstat's ``fernandez_huerta``), Flesch's reading-ease formula refitted to
  Spanish syllable counts, so it sits on the same 0-100 scale where higher is easier and its published bands read
  like Flesch's: 60-70 "normal" (grades 7-8), 50-60 "bastante difícil" (grades 9-10 and up). A Spanish worker
  course averages at least 60 with no lesson under 50, the same grade 8 / grade 10 limits as English. A Spanish
  translation of an English course (``TRANSLATIONS``) must also read at least as easily, lesson by lesson, as its
  original: each lesson's Fernández-Huerta score is at or above the English lesson's Flesch reading ease.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import textstat
from textstat.backend import metrics

from courses.catalog import CourseSpec
from courses.markdown import render

# Courses whose audience is every worker or jobseeker, not a specialist role.
WORKER_AUDIENCE = frozenset(
    {
        "ai-literacy-for-every-worker",
        "ai-at-work-customer-service-office",
        "building-ai-infrastructure-skilled-trades",
        "data-center-technician-foundations",
        "spotting-synthetic-media",
        "when-ai-changes-your-job",
        "alfabetizacion-en-ia-para-cada-trabajador",
        "ia-en-el-trabajo-atencion-al-cliente-y-oficina",
    }
)
MAX_AVERAGE_GRADE = 8.0
MAX_LESSON_GRADE = 10.0
# Spanish worker courses, on the Fernández-Huerta ease scale (higher is easier): grade 8 and grade 10 in its bands
MIN_AVERAGE_EASE_ES = 60.0
MIN_LESSON_EASE_ES = 50.0
# Translated course → the English course it translates, lesson for lesson (the test compares their structure)
TRANSLATIONS = {
    "alfabetizacion-en-ia-para-cada-trabajador": "ai-literacy-for-every-worker",
    "ia-en-el-trabajo-atencion-al-cliente-y-oficina": "ai-at-work-customer-service-office",
}

_BLOCKS = {"p", "li", "h2", "h3", "h4", "h5", "h6", "td", "th", "blockquote", "pre"}
_URL = re.compile(r"https?://\S+")


class _Text(HTMLParser):
    """Block texts of rendered HTML. A list item, heading or table cell ends a sentence even without a full stop,
    so a bulleted list is not scored as one endless sentence; code blocks and bare web addresses are left out
    (nobody reads them as prose, and one address would otherwise count as a 20-syllable word).
    """

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._in_pre = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._current).split())
        self._current = []
        if text:
            self.blocks.append(text if text[-1] in ".!?:;" else text + ".")

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "pre":
            self._in_pre += 1
        if tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag) -> None:
        if tag in _BLOCKS:
            if tag == "pre":
                self._in_pre -= 1
                self._current = []
            self._flush()

    def handle_data(self, data) -> None:
        if not self._in_pre:
            self._current.append(_URL.sub("", data))


def plain_text(markdown: str) -> str:
    parser = _Text()
    parser.feed(render(markdown))
    parser.close()
    parser._flush()
    return "\n".join(parser.blocks)


# Each score is a function of the lesson's Markdown alone: kept per text (a few hundred lessons ship), since
# `flask courses check` and `readability` and the suite measure the same lessons again and again, and measuring one
# (Markdown to HTML to plain text, then syllables word by word) costs ~15 ms.
_kept_per_text = functools.lru_cache(maxsize=4096)


@_kept_per_text
def grade(markdown: str) -> float:
    """Flesch-Kincaid grade level of a lesson's Markdown, to one decimal."""
    text = plain_text(markdown)
    return round(textstat.flesch_kincaid_grade(text), 1) if text else 0.0


@_kept_per_text
def reading_ease(markdown: str) -> float:
    """Flesch reading ease (0-100, higher is easier) of an English lesson's Markdown, to one decimal."""
    text = plain_text(markdown)
    return round(metrics.flesch_reading_ease(text, "en_US"), 1) if text else 0.0


@_kept_per_text
def fernandez_huerta(markdown: str) -> float:
    """Fernández-Huerta ease (0-100, higher is easier) of a Spanish lesson's Markdown, to one decimal.

    Syllables are counted with Spanish hyphenation rules; the module function is used rather than
    ``textstat.set_lang``, which would switch the shared textstat object to Spanish for every caller.
    """
    text = plain_text(markdown)
    return round(metrics.fernandez_huerta(text, "es"), 1) if text else 0.0


@dataclass(frozen=True)
class LessonGrade:
    module: int
    lesson: int
    slug: str
    grade: float  # Flesch-Kincaid grade (English) or Fernández-Huerta ease (Spanish): see CourseReadability.measure
    original: float | None = None  # a translation: the English lesson's Flesch reading ease, to compare with


@dataclass(frozen=True)
class CourseReadability:
    slug: str
    worker_audience: bool
    lessons: tuple[LessonGrade, ...]
    language: str = "en"
    original_slug: str | None = None  # the English course this one translates, when it was measured too

    @property
    def spanish(self) -> bool:
        return self.language == "es"

    @property
    def measure(self) -> str:
        return "Fernández-Huerta ease" if self.spanish else "Flesch-Kincaid grade"

    @property
    def average(self) -> float:
        return round(sum(g.grade for g in self.lessons) / len(self.lessons), 1) if self.lessons else 0.0

    @property
    def highest(self) -> float:
        return max((g.grade for g in self.lessons), default=0.0)

    @property
    def hardest(self) -> float:
        """The hardest lesson's score: the highest grade, or the lowest ease."""
        if self.spanish:
            return min((g.grade for g in self.lessons), default=0.0)
        return self.highest

    @property
    def original_average(self) -> float | None:
        eases = [g.original for g in self.lessons if g.original is not None]
        return round(sum(eases) / len(eases), 1) if eases and len(eases) == len(self.lessons) else None

    def problems(self) -> list[str]:
        """Readability warnings for a worker-audience course (none for other courses)."""
        if not self.worker_audience:
            return []
        if self.spanish:
            return self._spanish_problems()
        found = []
        if self.average > MAX_AVERAGE_GRADE:
            found.append(
                f"The lessons average Flesch-Kincaid grade {self.average} (keep it at or under {MAX_AVERAGE_GRADE:g} "
                f"for a course every worker takes): use plainer words and shorter sentences."
            )
        for g in self.lessons:
            if g.grade > MAX_LESSON_GRADE:
                found.append(
                    f"Lesson {g.module}.{g.lesson} ({g.slug}) reads at grade {g.grade} (at most {MAX_LESSON_GRADE:g})."
                )
        return found

    def _spanish_problems(self) -> list[str]:
        found = []
        if self.average < MIN_AVERAGE_EASE_ES:
            found.append(
                f"The lessons average Fernández-Huerta {self.average} (keep it at or above {MIN_AVERAGE_EASE_ES:g} "
                f"for a course every worker takes): use plainer words and shorter sentences."
            )
        for g in self.lessons:
            if g.grade < MIN_LESSON_EASE_ES:
                found.append(
                    f"Lesson {g.module}.{g.lesson} ({g.slug}) reads at Fernández-Huerta {g.grade} "
                    f"(at least {MIN_LESSON_EASE_ES:g})."
                )
            elif g.original is not None and g.grade < g.original:
                found.append(
                    f"Lesson {g.module}.{g.lesson} ({g.slug}) reads at Fernández-Huerta {g.grade}, harder than its "
                    f"English original ({self.original_slug}, Flesch reading ease {g.original})."
                )
        return found


def _lessons(spec: CourseSpec):
    for m, module in enumerate(spec.modules, 1):
        for n, lesson in enumerate(module.lessons, 1):
            yield m, n, lesson


def course_readability(spec: CourseSpec, original: CourseSpec | None = None) -> CourseReadability:
    """Every lesson's score in the course's language; ``original``, the English course a Spanish one translates
    (same modules and lessons), adds each English lesson's reading ease to compare with.
    """
    language = spec.language
    spanish = language == "es"
    originals: dict[tuple[int, int], float] = {}
    if spanish and original is not None:
        originals = {(m, n): reading_ease(lesson.body) for m, n, lesson in _lessons(original)}
    return CourseReadability(
        slug=spec.slug,
        worker_audience=spec.slug in WORKER_AUDIENCE,
        lessons=tuple(
            LessonGrade(
                m,
                n,
                lesson.slug,
                fernandez_huerta(lesson.body) if spanish else grade(lesson.body),
                originals.get((m, n)),
            )
            for m, n, lesson in _lessons(spec)
        ),
        language=language,
        original_slug=original.slug if spanish and original is not None else None,
    )
