"""Quiz balance and reading-level checks (catalog validation, CLI, studio), review_by dates and stale lessons."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from courses import studio
from courses.catalog import (
    CATALOG_DIR,
    CatalogError,
    ChoiceSpec,
    QuestionSpec,
    course_folders,
    export_course,
    import_folder,
    quiz_balance,
    quiz_warnings,
    read_folder,
    spec_files,
)
from courses.models import Course, Lesson
from courses.readability import (
    MAX_AVERAGE_GRADE,
    MAX_LESSON_GRADE,
    WORKER_AUDIENCE,
    course_readability,
    grade,
    plain_text,
)
from tests.factories import course_spec, login, make_course, make_user

SHIPPED = course_folders(CATALOG_DIR)


@pytest.fixture
def framework(shipped_framework):
    """The shipped skills framework, loaded (once per session, copied back for each test: tests/conftest.py)."""


def single(right: str, *wrong: str) -> QuestionSpec:
    choices = [ChoiceSpec(right, True), *(ChoiceSpec(w, False) for w in wrong)]
    return QuestionSpec(kind="single", prompt="Which?", choices=choices, explanation="Because.")


def true_false(answer: bool) -> QuestionSpec:
    return QuestionSpec(
        kind="true_false",
        prompt="Is it so?",
        choices=[ChoiceSpec("True", answer), ChoiceSpec("False", not answer)],
        explanation="Because.",
    )


def spec_with(*questions: QuestionSpec):
    spec = course_spec("balance", modules=1, questions=1)
    spec.modules[0].quiz.questions = list(questions)
    return spec


# ---- the rules -------------------------------------------------------------------------------


@pytest.mark.nodb
def test_longest_correct_option_is_counted_only_when_strictly_longest():
    spec = spec_with(
        single("A much longer right answer", "short", "brief"),  # strictly longest: counts
        single("same length", "equal sizes"),  # a tie is not "strictly longest"
        single("short", "a much longer wrong answer"),
    )
    balance = quiz_balance(spec)
    assert (balance.single, balance.longest_correct, balance.longest_at) == (3, 1, ("1.1",))
    assert balance.longest_ok  # 1 of 3 = 33% ≤ 35%


@pytest.mark.nodb
def test_warnings_give_the_numbers_and_the_questions():
    spec = spec_with(
        single("A much longer right answer", "short"),
        single("Another long right answer", "tiny"),
        single("x", "a longer wrong answer"),
        true_false(False),
        true_false(False),
        true_false(False),
        true_false(True),
    )
    warnings = quiz_warnings(spec)
    assert len(warnings) == 2
    assert "longest one in 2 of 3 single-choice questions (67%; keep it at or under 35%)" in warnings[0]
    assert "Questions (module.question): 1.1, 1.2." in warnings[0]
    assert warnings[1].startswith("1 of 4 true/false questions are keyed True (25%; keep it between 40% and 60%)")
    assert "always answers False" in warnings[1]


@pytest.mark.parametrize(
    ("keys", "ok"),
    [
        ([], True),
        ([True, False], True),
        ([True, True, False, False, False], True),  # 40%
        ([True, True, True, False, False], True),  # 60%
        ([True, False, False, False], False),  # 25%
        ([True, True, True, True], False),
        ([True, False, False], True),  # 3 questions: 1 or 2 True is as even as it gets
        ([False, False, False], False),
        ([True], True),  # a single question cannot be balanced
        ([True, True, True, True, True, True, False], False),
    ],
)
@pytest.mark.nodb
def test_true_false_share(keys, ok):
    assert quiz_balance(spec_with(*(true_false(k) for k in keys))).true_ok is ok
    assert bool(quiz_warnings(spec_with(*(true_false(k) for k in keys)))) is not ok


@pytest.mark.nodb
def test_longest_share_boundary():
    # 7 of 20 = 35% passes, 8 of 20 = 40% does not
    longest = [single("the long right one", "short") for _ in range(7)]
    short = [single("short", "the long wrong one") for _ in range(13)]
    assert quiz_balance(spec_with(*longest, *short)).longest_ok
    assert not quiz_balance(spec_with(*longest, single("the long right one", "x"), *short[1:])).longest_ok


# ---- the shipped catalog ---------------------------------------------------------------------


@pytest.mark.parametrize("folder", SHIPPED, ids=[f.name for f in SHIPPED])
def test_shipped_course_quizzes_are_balanced(framework, folder):
    spec = read_folder(folder)
    balance = quiz_balance(spec)
    assert quiz_warnings(spec) == [], (balance, quiz_warnings(spec))
    assert balance.single >= 5 and balance.true_false >= 4, balance


@pytest.mark.parametrize("folder", SHIPPED, ids=[f.name for f in SHIPPED])
def test_shipped_worker_courses_read_at_grade_eight(framework, folder):
    reading = course_readability(read_folder(folder))
    assert all(g.grade > 0 for g in reading.lessons)
    if reading.spanish:  # Fernández-Huerta ease, higher is easier (tests/test_spanish_courses.py compares)
        assert not reading.worker_audience or reading.problems() == [], reading.problems()
        return
    if reading.worker_audience:
        assert reading.average <= MAX_AVERAGE_GRADE, reading
        assert reading.highest <= MAX_LESSON_GRADE, [g for g in reading.lessons if g.grade > MAX_LESSON_GRADE]
        assert reading.problems() == []


@pytest.mark.nodb
def test_the_worker_audience_courses_ship():
    names = {f.name for f in SHIPPED}
    assert {"ai-literacy-for-every-worker", "ai-at-work-customer-service-office", "spotting-synthetic-media"} <= names
    assert {"ai-literacy-for-every-worker", "ai-at-work-customer-service-office"} <= WORKER_AUDIENCE


# ---- readability measurement -----------------------------------------------------------------


@pytest.mark.nodb
def test_plain_text_ends_list_items_and_cells_and_drops_code():
    text = plain_text(
        "Intro line\n\n- first item\n- second item!\n\n| a | b |\n|---|---|\n| c | d |\n\n```\nx = 1\n```\n"
    )
    assert text.splitlines() == ["Intro line.", "first item.", "second item!", "a.", "b.", "c.", "d."]


@pytest.mark.nodb
def test_grade_rises_with_long_words_and_sentences():
    easy = "We check the work. We ask for help. We keep the data safe.\n"
    hard = (
        "Organizational implementation of comprehensive artificial intelligence governance necessitates "
        "systematic documentation, institutional accountability, and continuous evaluation of probabilistic outputs.\n"
    )
    assert grade(easy) < 4 < 14 < grade(hard)


@pytest.mark.nodb
def test_readability_problems_only_for_worker_courses():
    hard = "Organizational implementation of comprehensive governance necessitates institutional accountability.\n"
    spec = course_spec("ai-literacy-for-every-worker", modules=1, lessons=2)
    for lesson in spec.modules[0].lessons:
        lesson.body = hard
    problems = course_readability(spec).problems()
    assert problems[0].startswith("The lessons average Flesch-Kincaid grade")
    assert any(p.startswith("Lesson 1.2 (lesson-1-2) reads at grade") for p in problems)
    spec.slug = "a-course-for-engineers"
    assert course_readability(spec).problems() == []


# ---- CLI ---------------------------------------------------------------------------------------


def _unbalanced_copy(tmp_path: Path) -> Path:
    """A shipped course in which every single-choice key is made the strictly longest option."""
    spec = read_folder(SHIPPED[0])
    for module in spec.modules:
        for question in module.quiz.questions:
            if question.kind == "single":
                longest = max(len(c.text) for c in question.choices)
                for choice in question.choices:
                    if choice.correct:
                        choice.text = choice.text.ljust(longest) + " (this option is the right one)"
    folder = tmp_path / spec.slug
    for relative, text in spec_files(spec).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
    return folder


def test_import_prints_quiz_warnings_and_still_imports(app, framework, tmp_path):
    folder = _unbalanced_copy(tmp_path)
    result = app.test_cli_runner().invoke(args=["courses", "import", str(folder)])
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    assert re.search(rf"warning  {folder.name}: The correct option is the longest one in (\d+) of \1 ", result.output)
    assert db.session.scalar(select(Course.slug)) == folder.name


def test_check_reports_figures_and_strict_fails_on_warnings(app, framework, tmp_path):
    runner = app.test_cli_runner()
    good = runner.invoke(args=["courses", "check", str(CATALOG_DIR)])
    assert good.exit_code == 0, good.output
    for folder in SHIPPED:
        assert re.search(rf"^{folder.name}: longest option correct \d+/\d+ \(\d+%, limit 35%\)", good.output, re.M)
    assert "warning" not in good.output
    assert runner.invoke(args=["courses", "check", "--strict", str(CATALOG_DIR)]).exit_code == 0

    bad = _unbalanced_copy(tmp_path)
    loose = runner.invoke(args=["courses", "check", str(bad)])
    assert loose.exit_code == 0 and "warning: The correct option is the longest one" in loose.output
    assert runner.invoke(args=["courses", "check", "--strict", str(bad)]).exit_code == 1

    (bad / "course.yaml").write_text((bad / "course.yaml").read_text().replace("skills: [", "skills: [NOPE-01, ", 1))
    broken = runner.invoke(args=["courses", "check", str(bad)])
    assert broken.exit_code == 1 and "INVALID" in broken.output and "unknown skill id 'NOPE-01'" in broken.output
    assert db.session.scalar(select(Course.id)) is None  # check never imports


def test_readability_command_grades_every_lesson(app, framework):
    result = app.test_cli_runner().invoke(args=["courses", "readability"])
    assert result.exit_code == 0, result.output
    lessons = sum(len(list(f.glob("*/*.md"))) for f in SHIPPED)
    assert len(re.findall(r"^  \d+\.\d+ +\d+\.\d  \S+", result.output, re.M)) == lessons
    assert "ai-literacy-for-every-worker (worker audience): average" in result.output
    assert "— all within." in result.output


def _dated_copy(tmp_path: Path, day: str) -> Path:
    folder = tmp_path / SHIPPED[0].name
    shutil.copytree(SHIPPED[0], folder)
    text = (folder / "course.yaml").read_text()
    first = re.search(r"\n    minutes: \d+\n", text)
    (folder / "course.yaml").write_text(text[: first.end()] + f"    review_by: {day}\n" + text[first.end() :])
    return folder


# ---- review_by and stale lessons ---------------------------------------------------------------


def test_review_by_imports_and_exports_byte_for_byte(framework, tmp_path):
    folder = _dated_copy(tmp_path, "2026-03-01")
    course, _ = import_folder(folder, now=utcnow())
    db.session.commit()
    assert course.modules[0].lessons[0].review_by == date(2026, 3, 1)
    assert course.modules[0].lessons[1].review_by is None
    export_course(course, tmp_path / "out")
    assert (tmp_path / "out" / "course.yaml").read_bytes() == (folder / "course.yaml").read_bytes()


@pytest.mark.parametrize("day", ["2026-13-01", "soon", "2026-03-01 10:00:00"])
def test_a_bad_review_by_is_refused_with_its_line(framework, tmp_path, day):
    folder = _dated_copy(tmp_path, day)
    with pytest.raises(CatalogError) as caught:
        import_folder(folder, now=utcnow())
    assert any(
        ("'review_by' must be a date written YYYY-MM-DD" in p or "is not a valid date" in p) and ", line " in p
        for p in caught.value.problems
    ), caught.value.problems
    assert db.session.scalar(select(Course.id)) is None


def test_stale_lists_lessons_past_review_by(app, framework, tmp_path):
    import_folder(_dated_copy(tmp_path, "2026-03-01"), now=utcnow())
    db.session.commit()
    runner = app.test_cli_runner()
    before = runner.invoke(args=["courses", "stale", "--on", "2026-03-01"])
    assert before.exit_code == 0 and "0 lessons past review_by as of 2026-03-01." in before.output
    after = runner.invoke(args=["courses", "stale", "--on", "2026-03-02"])
    lesson = db.session.scalar(select(Lesson).where(Lesson.review_by == date(2026, 3, 1)))
    assert f"2026-03-01  {SHIPPED[0].name} › {lesson.module.slug} › {lesson.slug}" in after.output
    assert "1 lesson past review_by as of 2026-03-02." in after.output
    assert [x.id for x in studio.stale_lessons(today=date(2026, 3, 2))] == [lesson.id]


# ---- studio ------------------------------------------------------------------------------------


@pytest.fixture
def admin(client, framework):
    user = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    login(client, "admin@example.org")
    return user


def _form_post(client, page_url: str, url: str, data: dict):
    page = client.get(page_url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    rev = re.search(r'name="revision" (?:type="hidden" )?value="(\d+)"', page).group(1)
    return client.post(url, data={"csrf_token": token, "revision": rev, **data})


def test_studio_shows_quiz_warnings_before_and_after_publishing(client, admin, tmp_path):
    import_folder(_unbalanced_copy(tmp_path), now=utcnow())
    db.session.commit()
    slug = SHIPPED[0].name
    page = client.get(f"/studio/{slug}").get_data(as_text=True)
    assert "Worth fixing (publishing is still allowed)" in page
    assert re.search(r"The correct option is the longest one in (\d+) of \1 single-choice questions", page)
    response = _form_post(client, f"/studio/{slug}", f"/studio/{slug}/publish", {})
    assert response.status_code == 303 and response.headers["Location"] == "/studio/"
    shown = client.get("/studio/").get_data(as_text=True)
    assert "Published version" in shown and "Still to improve in" in shown and "single-choice questions" in shown


def test_balanced_course_has_no_warnings_in_studio(client, admin):
    make_course("plain", questions=3)
    page = client.get("/studio/plain").get_data(as_text=True)
    assert "Ready to publish" in page and "Worth fixing" not in page


def test_admins_see_stale_lessons_and_set_review_by(client, admin, tmp_path):
    make_course("fresh")
    import_folder(_dated_copy(tmp_path, "2020-01-01"), now=utcnow())
    db.session.commit()
    index = client.get("/studio/").get_data(as_text=True)
    assert "Lessons due for review" in index and 'review by <time datetime="2020-01-01">Jan 1, 2020</time>' in index
    lesson = db.session.scalar(select(Lesson).where(Lesson.review_by == date(2020, 1, 1)))
    assert str(escape(lesson.title)) in index

    # an author sets a new date on the lesson and publishes: the lesson leaves the list
    slug = SHIPPED[0].name
    url = f"/studio/{slug}/modules/0/lessons/0"
    edit = client.get(url).get_data(as_text=True)
    assert 'name="review_by"' in edit and 'value="2020-01-01"' in edit
    saved = _form_post(
        client,
        url,
        url,
        {
            "title": lesson.title,
            "minutes": str(lesson.minutes),
            "body": lesson.body_md,
            "review_by": "2099-06-30",
            "save": "1",
        },
    )
    assert saved.status_code == 303
    bad = _form_post(
        client, url, url, {"title": lesson.title, "minutes": "5", "body": "x", "review_by": "30/06/2099", "save": "1"}
    )
    assert bad.status_code == 422 and "Not a valid date value" in bad.get_data(as_text=True)
    assert _form_post(client, f"/studio/{slug}", f"/studio/{slug}/publish", {}).status_code == 303
    db.session.refresh(lesson)
    assert lesson.review_by == date(2099, 6, 30)
    after = client.get("/studio/").get_data(as_text=True)
    assert "review by 2020-01-01" not in after and str(escape(lesson.title)) not in after


def test_learners_do_not_see_the_stale_list(client, framework):
    make_user(email="learner@example.org")
    login(client, "learner@example.org")
    assert client.get("/studio/").status_code in {403, 404}


# Phrases that mark a fact whose status will change (a centre not yet running, guidance not yet final, a proposed
# rule, the state of things "when this course was written"): a lesson that uses one must carry a review_by date.
TIME_SENSITIVE = ("AI-ISAC", "Section 132", "901(c)", "when this course was written", "early 2026")


@pytest.mark.parametrize("folder", SHIPPED, ids=[f.name for f in SHIPPED])
def test_shipped_lessons_with_changing_facts_carry_review_by(framework, folder):
    spec = read_folder(folder)
    undated = [
        lesson.slug
        for module in spec.modules
        for lesson in module.lessons
        if any(marker in lesson.body for marker in TIME_SENSITIVE) and not lesson.review_by
    ]
    assert undated == []
