"""Every phrase a course quotes from the AI Action Plan is on the printed page it cites."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.catalog import CATALOG_DIR, course_folders
from courses.citations import check_course, check_quote, main, quotes_in

pytestmark = pytest.mark.nodb  # files and pure functions only: run once, not on both databases

SHIPPED = course_folders(CATALOG_DIR)
# Courses written against the plan's page numbers from the start: each must quote the plan, not just pass.
NEW_COURSES = {
    "when-ai-changes-your-job",
    "teaching-and-advising-on-ai-careers",
    "building-ai-infrastructure-skilled-trades",
}


@pytest.mark.parametrize("folder", SHIPPED, ids=[f.name for f in SHIPPED])
def test_shipped_course_quotes_the_plan_on_the_cited_pages(folder):
    checked, problems = check_course(folder)
    assert [str(p) for p in problems] == []
    if folder.name in NEW_COURSES:
        assert checked >= 20, f"{folder.name} quotes the plan only {checked} times"


def test_the_new_courses_ship():
    assert NEW_COURSES & {f.name for f in SHIPPED}, "none of the new courses is in the catalog"


def problems_in(text: str) -> list[str]:
    quotes = quotes_in(text, "lesson.md, line 1")
    assert quotes, f"no plan quote found in {text!r}"
    return [str(p) for p in (check_quote(q) for q in quotes) if p is not None]


@pytest.mark.parametrize(
    "text",
    [
        'The plan backs a "worker-first AI agenda" (plan, p. 6).',
        # curly quotes; the PDF text breaks "industry- driven" across a line
        "It wants “industry-driven training” for these jobs (p. 17).",
        # a range, and a phrase that runs from p. 12 over the footnotes onto p. 13
        '"fake evidence could be used to attempt to deny justice to both plaintiffs and defendants" (pp. 12–13)',
        # an ellipsis joins two pieces that appear in this order on the page
        '"build, operate, and maintain it … electricians, advanced HVAC technicians" (p. 17)',
        # a section heading may be cited with any page the section runs over
        'See "Accelerate AI Adoption in Government" (p. 11).',
        # citation first, quote after, same sentence
        'In "Build High-Security Data Centers for Military and Intelligence Community Usage" (p. 16), it says'
        ' they "must be resistant to attacks by the most determined and capable nation-state actors."',
        # the citation inside the parentheses with the section name
        'It warns of "backdoors and other malicious behavior" ("Ensure that the U.S. Government is at the'
        ' Forefront of Evaluating National Security Risks in Frontier Models," p. 22).',
        'On page 2 it says: "AI will improve the lives of Americans by complementing their work—not replacing it."',
    ],
)
def test_quotes_found_on_their_page_pass(text):
    assert problems_in(text) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('The plan backs a "worker-first AI agenda" (plan, p. 7).', '"worker-first AI agenda" is not on p. 7'),
        ('The plan says "AI will replace most jobs" (p. 6).', '"AI will replace most jobs" is not on p. 6'),
        (
            '"fake evidence could be used to attempt to deny justice to both plaintiffs and defendants" (p. 12)',
            "is not on p. 12",
        ),
        ('"electricians, advanced HVAC technicians … build, operate, and maintain it" (p. 17)', "is not on p. 17"),
        ('See "Accelerate AI Adoption in Government" (p. 17).', "runs over pp. 10–11, not p. 17"),
        ('It says "worker-first AI agenda" (p. 99).', "cites page 99, which the plan does not have"),
    ],
)
def test_misquotes_and_wrong_pages_are_reported(text, message):
    problems = problems_in(text)
    assert len(problems) == 1 and message in problems[0] and problems[0].startswith("lesson.md, line 1: ")


@pytest.mark.parametrize(
    "text",
    [
        'A coworker calls it "the robot". The plan\'s workers section is short (p. 6).',  # quote in an earlier sentence
        'Nothing here cites a page: "worker-first AI agenda".',
        "The plan (p. 17) names electricians.",
    ],
)
def test_quotes_not_attributed_to_the_plan_are_not_checked(text):
    assert quotes_in(text, "x") == []


def _course(tmp_path: Path, lesson: str, explanation: str) -> Path:
    folder = tmp_path / "demo-course"
    (folder / "01-m").mkdir(parents=True)
    (folder / "01-m" / "01-l.md").write_text(lesson, encoding="utf-8")
    (folder / "01-m" / "quiz.yaml").write_text(
        "questions:\n- kind: true_false\n  prompt: P\n  choices:\n  - text: 'True'\n    correct: true\n"
        f"  - text: 'False'\n  explanation: '{explanation}'\n",
        encoding="utf-8",
    )
    return folder


def test_lessons_and_quiz_explanations_are_both_checked_and_reported_by_file(tmp_path, capsys):
    folder = _course(
        tmp_path,
        '## Intro\n\nFirst line.\nIt asks for "rapid retraining for individuals impacted by AI" (p. 6).\n',
        'The plan wants a "worker-first AI agenda" (p. 6).',
    )
    checked, problems = check_course(folder)
    assert checked == 2
    assert [str(p) for p in problems] == [
        'demo-course/01-m/01-l.md, line 4: "rapid retraining for individuals impacted by AI" is not on p. 6 of the plan'
    ]
    assert main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert "demo-course: 2 quoted phrases checked, 1 not found" in out and "01-l.md, line 4" in out

    (folder / "01-m" / "01-l.md").write_text(
        'It asks for "rapid retraining for individuals impacted by AI" (plan, p. 7).\n', encoding="utf-8"
    )
    assert check_course(folder) == (2, [])
    assert main([str(folder)]) == 0
    assert "demo-course: 2 quoted phrases checked, ok" in capsys.readouterr().out
