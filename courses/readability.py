"""Reading level of lessons: Flesch-Kincaid grade (textstat) of the text a learner reads.

Worker-audience courses are written for anyone in the workforce, whatever their schooling, so they are held to
plain language: grade 8 or lower on average and no lesson above grade 10. Technical courses for engineers,
security staff, managers and energy professionals are measured and reported but not held to those limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import textstat

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
    }
)
MAX_AVERAGE_GRADE = 8.0
MAX_LESSON_GRADE = 10.0

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


def grade(markdown: str) -> float:
    """Flesch-Kincaid grade level of a lesson's Markdown, to one decimal."""
    text = plain_text(markdown)
    return round(textstat.flesch_kincaid_grade(text), 1) if text else 0.0


@dataclass(frozen=True)
class LessonGrade:
    module: int
    lesson: int
    slug: str
    grade: float


@dataclass(frozen=True)
class CourseReadability:
    slug: str
    worker_audience: bool
    lessons: tuple[LessonGrade, ...]

    @property
    def average(self) -> float:
        return round(sum(g.grade for g in self.lessons) / len(self.lessons), 1) if self.lessons else 0.0

    @property
    def highest(self) -> float:
        return max((g.grade for g in self.lessons), default=0.0)

    def problems(self) -> list[str]:
        """Readability warnings for a worker-audience course (none for other courses)."""
        if not self.worker_audience:
            return []
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


def course_readability(spec: CourseSpec) -> CourseReadability:
    return CourseReadability(
        slug=spec.slug,
        worker_audience=spec.slug in WORKER_AUDIENCE,
        lessons=tuple(
            LessonGrade(m, n, lesson.slug, grade(lesson.body))
            for m, module in enumerate(spec.modules, 1)
            for n, lesson in enumerate(module.lessons, 1)
        ),
    )
