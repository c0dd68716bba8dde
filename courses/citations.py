"""Check that words a course quotes from the AI Action Plan really are on the page it cites.

Lessons and quiz texts cite the plan by printed page, e.g. ``"worker-first AI agenda" (plan, p. 6)`` or
``(pp. 6–7)``. For every quoted phrase near such a citation, this module looks the phrase up on the cited
printed page(s) of ``docs/sources/ai-action-plan-2025.txt``, whose ``[PAGE n]`` markers are PDF pages
(printed page = PDF page - 3).

Pure functions, no database: ``python -m courses.citations [FOLDER ...]`` prints a report for the whole
catalog; tests/test_course_citations.py holds every shipped course to it.
"""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PLAN_TEXT = Path(__file__).resolve().parent.parent / "docs" / "sources" / "ai-action-plan-2025.txt"
PDF_TO_PRINTED = 3

_PAGE_MARKER = re.compile(r"^\[PAGE (\d+)\]", re.MULTILINE)
_RUNNING_HEAD = re.compile(r"^\s*AMERICA[’']S AI ACTION PLAN\s+\S+\s")
# "(p. 6)", "(pp. 6–7)", "(plan, p. 17)", "(plan, pp. 2, 6)", and the tail of '("Section title," p. 4)'
# and prose: 'On page 2 it says: "..."'
CITATION = re.compile(
    r"(?:\(|,[\"”]?\s*)(?:plan,\s*)?pp?\.\s*(\d[\d\s,–—-]*\d|\d)\)"
    r"|\b[Pp]ages? (\d+(?:\s*(?:[–-]|and)\s*\d+)?)\b(?! of the)"
)
_TOC_ENTRY = re.compile(r"\s*(.+?)\s*\.[.\s]*\.\s*(\d+)(?=\s|$)")
QUOTE = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”")
# where one sentence ends and the next begins, between a quote and a later citation
_SENTENCE_BREAK = re.compile(r"[.!?][\"”)]?\s+[A-Z(]")
_FRAGMENT_SPLIT = re.compile(r"…|\.\.\.|\[[^\]]*\]")


@dataclass(frozen=True)
class Quote:
    source: str  # "file.md, line 12" or "quiz.yaml, question 3"
    phrase: str
    pages: tuple[int, ...]


@dataclass(frozen=True)
class Problem:
    quote: Quote
    message: str

    def __str__(self) -> str:
        return f"{self.quote.source}: {self.message}"


def normalize(text: str) -> str:
    """Letters and digits only, lower case: PDF extraction breaks lines, hyphens and quote marks apart."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[^a-z0-9]", "", text)


@lru_cache(maxsize=4)
def plan_pages(path: Path = PLAN_TEXT) -> dict[int, str]:
    """Printed page number -> normalized page text (running head removed)."""
    raw = path.read_text(encoding="utf-8")
    marks = list(_PAGE_MARKER.finditer(raw))
    pages: dict[int, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(raw)
        printed = int(mark.group(1)) - PDF_TO_PRINTED
        body = _RUNNING_HEAD.sub("", raw[mark.end() : end], count=1)
        pages.setdefault(printed, normalize(body))  # the file repeats one marker; the first copy wins
    return pages


@lru_cache(maxsize=4)
def plan_sections(path: Path = PLAN_TEXT) -> dict[str, tuple[int, int]]:
    """Normalized section heading -> (first, last) printed page it spans, from the plan's table of contents.

    A section runs to the page on which the next one starts (sections start mid-page), so a lesson may quote
    a heading with the page of the passage it draws on: '"Accelerate AI Adoption in Government" (p. 11)'.
    """
    raw = path.read_text(encoding="utf-8")
    start = raw.index("Table of Contents")
    toc = raw[start : raw.index("[PAGE", start)]
    entries = [(m.group(1), int(m.group(2))) for m in _TOC_ENTRY.finditer(toc.split("Contents", 1)[1])]
    last_page = max(plan_pages(path))
    spans = {}
    for i, (heading, first) in enumerate(entries):
        pillar = re.match(r"Pillar [IVX]+:\s*", heading)
        # a pillar runs to the next pillar; a section to the next heading of any kind
        later = [page for title, page in entries[i + 1 :] if not pillar or title.startswith("Pillar")]
        span = (first, max(first, later[0] if later else last_page))
        spans[normalize(heading)] = span
        if pillar:
            spans[normalize(heading[pillar.end() :])] = span  # quoted without its "Pillar I:" label
    return spans


def parse_pages(spec: str) -> tuple[int, ...]:
    """'6' -> (6,); '6–7' -> (6, 7); '2, 6' -> (2, 6); '4-5, 10' -> (4, 5, 10)."""
    pages: list[int] = []
    for part in spec.replace("and", ",").split(","):
        bounds = [int(b) for b in re.split(r"\s*[–—-]\s*", part.strip()) if b]
        if len(bounds) == 1:
            pages.append(bounds[0])
        elif len(bounds) == 2 and bounds[0] <= bounds[1]:
            pages.extend(range(bounds[0], bounds[1] + 1))
        else:
            raise ValueError(f"cannot read page range {part!r}")
    return tuple(pages)


def quotes_in(text: str, source: str) -> list[Quote]:
    """Quoted phrases in one paragraph, each tied to the plan citation it belongs to.

    A quote belongs to the first citation after it in the same sentence; failing that, to the last citation
    before it in the paragraph (``In "Section" (p. 16), it says "..."``). A quote with no citation in its
    sentence or before it (a scare quote, a quoted worker) is not attributed to the plan and not checked.
    """
    cites = [(m.start(), m.end(), m.group(1) or m.group(2)) for m in CITATION.finditer(text)]
    if not cites:
        return []
    found = []
    for m in QUOTE.finditer(text):
        phrase = m.group(1) or m.group(2)
        after = [c for c in cites if c[0] >= m.end()]
        before = [c for c in cites if c[1] <= m.start()]
        # from the quote's last word on: a quoted sentence ends inside its own quote marks ('today." The')
        if after and not _ends_sentence(text[m.end() - 2 : m.end()], text[m.end() : after[0][0]]):
            cite = after[0]
        elif before:
            cite = before[-1]
        else:
            continue
        try:
            pages = parse_pages(cite[2])
        except ValueError:
            pages = ()
        found.append(Quote(source=source, phrase=phrase, pages=pages))
    return found


def _crosses_page(needle: str, cited: tuple[int, ...], pages: dict[int, str]) -> bool:
    """Does the normalized phrase run from one cited page onto the next?

    Footnotes sit between the last words of a page and the first of the next, so such a phrase is found as a
    piece of page N followed by the opening of page N+1.
    """
    for a, b in itertools.pairwise(cited):
        if b != a + 1:
            continue
        for k in range(1, len(needle)):
            if pages[b].startswith(needle[k:]) and needle[:k] in pages[a]:
                return True
    return False


def _ends_sentence(quote_tail: str, between: str) -> bool:
    """Does a sentence end between a quote and a citation? Quoted titles and "U.S." do not end one."""
    between = QUOTE.sub('"x"', between).replace("U.S.", "US")
    return bool(_SENTENCE_BREAK.search(quote_tail + between))


def check_quote(quote: Quote, pages: dict[int, str] | None = None, sections=None) -> Problem | None:
    """None when every fragment of the quote is on the cited page(s), else the Problem to report."""
    pages = plan_pages() if pages is None else pages
    sections = plan_sections() if sections is None else sections
    if not quote.pages:
        return Problem(quote, f'cannot read the page citation for "{quote.phrase}"')
    missing = [p for p in quote.pages if p not in pages]
    if missing:
        return Problem(quote, f"cites page {missing[0]}, which the plan does not have")
    heading = normalize(quote.phrase)
    if heading in sections:
        first, last = sections[heading]
        if any(first <= p <= last for p in quote.pages):
            return None
        return Problem(
            quote, f'section "{quote.phrase.rstrip(",.")}" runs over pp. {first}–{last}, not {_pages(quote)}'
        )
    haystack, position = "".join(pages[p] for p in quote.pages), 0
    for fragment in _FRAGMENT_SPLIT.split(quote.phrase):
        needle = normalize(fragment)
        if not needle:
            continue
        found = haystack.find(needle, position)  # pieces around an ellipsis must come in the page's order
        if found >= 0:
            position = found + len(needle)
        elif not _crosses_page(needle, quote.pages, pages):
            return Problem(quote, f'"{quote.phrase}" is not on {_pages(quote)} of the plan')
    return None


def _pages(quote: Quote) -> str:
    if len(quote.pages) == 1:
        return f"p. {quote.pages[0]}"
    return "pp. " + ", ".join(str(p) for p in quote.pages)


def lesson_quotes(path: Path, label: str) -> list[Quote]:
    found: list[Quote] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        found.extend(quotes_in(line, f"{label}, line {number}"))
    return found


def quiz_quotes(path: Path, label: str) -> list[Quote]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found: list[Quote] = []
    for number, question in enumerate(data.get("questions") or [], start=1):
        texts = [question.get("prompt") or "", question.get("explanation") or ""]
        texts += [c.get("text") or "" for c in question.get("choices") or []]
        for text in texts:
            found.extend(quotes_in(str(text), f"{label}, question {number}"))
    return found


def course_quotes(folder: Path) -> list[Quote]:
    """Every plan quote in a course folder's lessons and quizzes."""
    found: list[Quote] = []
    for path in sorted(folder.rglob("*.md")):
        found.extend(lesson_quotes(path, f"{folder.name}/{path.relative_to(folder)}"))
    for path in sorted(folder.rglob("quiz.yaml")):
        found.extend(quiz_quotes(path, f"{folder.name}/{path.relative_to(folder)}"))
    return found


def check_course(folder: Path) -> tuple[int, list[Problem]]:
    """(number of quotes checked, problems) for one course folder."""
    quotes = course_quotes(folder)
    problems = [p for p in (check_quote(q) for q in quotes) if p is not None]
    return len(quotes), problems


def main(argv: list[str]) -> int:
    from courses.catalog import CATALOG_DIR, course_folders

    folders = [Path(a) for a in argv] or course_folders(CATALOG_DIR)
    failed = 0
    for folder in folders:
        checked, problems = check_course(folder)
        status = "ok" if not problems else f"{len(problems)} not found"
        print(f"{folder.name}: {checked} quoted phrases checked, {status}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
