"""Shipped starter courses, import/export round trips, re-import that keeps progress, bundle validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.database import utcnow
from core.extensions import db
from courses.catalog import CATALOG_DIR, CatalogError, course_folders, export_course, import_folder
from courses.markdown import render
from courses.models import Course, Lesson, LessonProgress, Module, Question
from tests.factories import enroll, make_user

SHIPPED = course_folders(CATALOG_DIR)


@pytest.fixture
def framework(shipped_framework):
    """The shipped skills framework, loaded (once per session, copied back for each test: tests/conftest.py)."""


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def import_shipped() -> dict[str, str]:
    """Every shipped course imported into the database the framework fixture left: {slug: outcome}.

    Built once per module (tests/conftest.py, prebuilt): each test that asks gets the rows this import wrote."""
    outcomes = {}
    for folder in SHIPPED:
        course, outcome = import_folder(folder, now=utcnow())
        outcomes[course.slug] = outcome
    db.session.commit()
    return outcomes


def test_at_least_six_real_courses_ship(framework, prebuilt):
    assert len(SHIPPED) >= 6
    outcomes = prebuilt(import_shipped)
    assert outcomes == {folder.name: "created" for folder in SHIPPED}
    for folder in SHIPPED:
        course = db.session.scalar(select(Course).where(Course.slug == folder.name))
        assert len(course.modules) >= 4, course.slug
        for module in course.modules:
            assert len(module.lessons) >= 2, (course.slug, module.slug)
            assert module.quiz is not None and len(module.quiz.questions) >= 3, (course.slug, module.slug)
            assert all(q.explanation for q in module.quiz.questions)
            for lesson in module.lessons:
                assert len(lesson.body_md.split()) >= 300, (course.slug, lesson.slug)
                assert "lorem " + "ipsum" not in lesson.body_md.lower()  # no placeholder text
        assert course.skills and course.goals, course.slug
    assert count(Course) == len(SHIPPED)


def test_import_is_idempotent_and_export_round_trips_byte_for_byte(framework, prebuilt, tmp_path):
    assert prebuilt(import_shipped) == {folder.name: "created" for folder in SHIPPED}  # the first import
    for folder in SHIPPED:
        course, outcome = import_folder(folder, now=utcnow())
        assert outcome == "unchanged"
        assert course.version == 1
        target = tmp_path / folder.name
        export_course(course, target)
        shipped = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        exported = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
        assert exported == shipped, folder.name


def test_export_reads_a_course_in_the_same_few_statements_whatever_its_size(framework, prebuilt, count_queries):
    """course_spec (export, studio drafts, bundles) loads the outline one level at a time: a course of 4 modules
    and one of 6 cost the same statements, not one lazy load per module, quiz and question."""
    from courses.catalog import course_spec

    prebuilt(import_shipped)
    by_size = {}
    for course in db.session.scalars(select(Course).order_by(Course.slug)):
        by_size.setdefault(len(course.modules), course.id)
    assert len(by_size) >= 2, by_size
    statements = set()
    for course_id in by_size.values():
        db.session.expire_all()
        spec = None

        def export(course_id=course_id):
            nonlocal spec
            spec = course_spec(db.session.get(Course, course_id))

        statements.add(count_queries(export))
        course = db.session.get(Course, course_id)
        assert [len(m.lessons) for m in spec.modules] == [len(m.lessons) for m in course.modules]
    assert len(statements) == 1 and statements.pop() <= 12, statements


def test_reimport_updates_by_slug_and_keeps_progress(framework, tmp_path):
    folder = tmp_path / "course"
    shutil.copytree(SHIPPED[0], folder)
    course, _ = import_folder(folder, now=utcnow())
    db.session.commit()
    learner = make_user()
    enrollment = enroll(learner, course)
    first_lesson = course.modules[0].lessons[0]
    db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=first_lesson.id, completed_at=utcnow()))
    db.session.commit()
    lesson_id, question_ids = first_lesson.id, [q.id for q in course.modules[0].quiz.questions]

    lesson_file = folder / "course.yaml"
    first_md = sorted((folder / sorted(p.name for p in folder.iterdir() if p.is_dir())[0]).glob("*.md"))[0]
    first_md.write_text(first_md.read_text() + "\n## An added section\n\nNew text.\n", encoding="utf-8")
    lesson_file.write_text(lesson_file.read_text().replace("title: ", "title: Updated ", 1), encoding="utf-8")
    course, outcome = import_folder(folder, now=utcnow())
    db.session.commit()
    assert outcome == "updated" and course.version == 2
    assert course.title.startswith("Updated ")
    lesson = db.session.get(Lesson, lesson_id)
    assert "An added section" in lesson.body_md and "<h2>An added section</h2>" in lesson.body_html
    assert db.session.scalar(select(func.count()).select_from(LessonProgress)) == 1
    assert [q.id for q in course.modules[0].quiz.questions] == question_ids


def _bundle(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(SHIPPED[0], folder)
    return folder


def _first_quiz(folder: Path) -> Path:
    return sorted(folder.glob("*/quiz.yaml"))[0]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda f: (f / "course.yaml").write_text(
                (f / "course.yaml").read_text().replace("skills: [", "skills: [NOPE-01, ", 1)
            ),
            "unknown skill id 'NOPE-01'",
        ),
        (lambda f: sorted(f.glob("*/*.md"))[0].unlink(), "cannot be read"),
        (
            lambda f: (f / "course.yaml").write_text(
                (f / "course.yaml").read_text().replace("file: 0", "file: ../../0", 1)
            ),
            "must be a path inside the course folder",
        ),
        (
            lambda f: _first_quiz(f).write_text(_first_quiz(f).read_text().replace("    correct: true\n", "")),
            "needs exactly one correct choice (found 0)",
        ),
        (
            lambda f: (f / "course.yaml").write_text(
                (f / "course.yaml").read_text().replace("pass_mark: ", "pass_mark: 1", 1)
            ),
            "'pass_mark' must be a whole number from 1 to 100",
        ),
        (lambda f: (f / "course.yaml").write_text("slug: [unclosed\n"), "course.yaml, line"),
        (lambda f: sorted(f.glob("*/*.md"))[0].write_text("<script>alert(1)</script>\n"), "raw HTML"),
    ],
)
def test_invalid_bundle_reports_file_and_line_and_writes_nothing(framework, tmp_path, breakage, message):
    folder = _bundle(tmp_path)
    breakage(folder)
    with pytest.raises(CatalogError) as caught:
        import_folder(folder, now=utcnow())
    db.session.rollback()
    assert any(
        (message in p and ", line " in p) or (message == "cannot be read" and message in p)
        for p in caught.value.problems
    ), caught.value.problems
    assert all(p.startswith("bundle/") for p in caught.value.problems)
    assert count(Course) == count(Module) == count(Question) == 0


def test_cli_import_and_export(app, framework, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["courses", "import", str(CATALOG_DIR)])
    assert result.exit_code == 0, result.output
    shipped_programs = len(list((CATALOG_DIR / "programs").glob("*.yaml")))
    assert result.output.count("created") == len(SHIPPED) + shipped_programs
    again = runner.invoke(args=["courses", "import", str(CATALOG_DIR)]).output
    assert again.count("unchanged") == len(SHIPPED) + shipped_programs
    slug = SHIPPED[0].name
    result = runner.invoke(args=["courses", "export", slug, str(tmp_path / "out")])
    assert (
        result.exit_code == 0
        and (tmp_path / "out" / "course.yaml").read_bytes() == (SHIPPED[0] / "course.yaml").read_bytes()
    )
    assert runner.invoke(args=["courses", "export", "no-such-course", str(tmp_path)]).exit_code != 0


def test_cli_import_is_all_or_nothing(app, framework, tmp_path):
    shutil.copytree(SHIPPED[0], tmp_path / "a-good")  # sorts first: an import that stopped at the error would leave it
    broken = _bundle(tmp_path)
    (broken / "course.yaml").write_text((broken / "course.yaml").read_text().replace("slug: ", "slug: Bad Slug ", 1))
    result = app.test_cli_runner().invoke(args=["courses", "import", str(tmp_path)])
    assert result.exit_code != 0 and "Nothing was imported" in result.output
    assert count(Course) == 0


@pytest.mark.parametrize(
    ("markdown", "absent", "present"),
    [
        ("<script>alert(1)</script>", "<script", "&lt;script&gt;"),
        ("[click](javascript:alert(1))", 'href="javascript', "click"),
        ("<a href='javascript:alert(1)'>x</a>", "<a ", "&lt;a"),
        ("<img src=x onerror=alert(1)>", "<img", "&lt;img"),
        ("[site](https://www.dol.gov/)", "javascript", 'rel="noopener noreferrer nofollow"'),
        ("# Title", "<h1>", "<h2>Title</h2>"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<script", "<table>"),
    ],
)
@pytest.mark.nodb
def test_markdown_is_rendered_and_sanitized(markdown, absent, present):
    html = render(markdown)
    assert absent not in html
    assert present in html


def test_content_hash_follows_every_change_to_the_spec_even_in_place(framework):
    """content_hash is kept per process by the spec's value: a change anywhere in the spec (here a lesson's minutes
    and a choice's text, changed in place on the same objects) gives the hash of the changed files."""
    import hashlib

    from courses.catalog import content_hash, read_folder, spec_files

    def fresh(spec) -> str:
        sha = hashlib.sha256()
        for path, text in spec_files(spec).items():
            sha.update(path.encode() + b"\0" + text.encode() + b"\0")
        return sha.hexdigest()

    spec = read_folder(SHIPPED[0])
    first = content_hash(spec)
    assert first == fresh(spec) == content_hash(read_folder(SHIPPED[0]))
    spec.modules[0].lessons[0].minutes += 1
    assert content_hash(spec) == fresh(spec) != first
    spec.modules[0].lessons[0].minutes -= 1
    spec.modules[-1].quiz.questions[-1].choices[0].text += "!"
    assert content_hash(spec) == fresh(spec) != first
    spec.modules[-1].quiz.questions[-1].choices[0].text = spec.modules[-1].quiz.questions[-1].choices[0].text[:-1]
    assert content_hash(spec) == first


@pytest.mark.nodb
def test_rendering_a_text_again_gives_the_same_html_and_long_texts_are_not_kept():
    from courses import markdown

    body = "# Title\n\nSome *text* and [a link](https://www.dol.gov/).\n"
    assert render(body) == render(body) == markdown._render(body)
    assert render(body + "More.\n") != render(body)
    long = "word " * (markdown.CACHED_TEXT // 5 + 1)
    kept = markdown._render_kept.cache_info().currsize
    assert render(long) == markdown._render(long)
    assert markdown._render_kept.cache_info().currsize == kept
