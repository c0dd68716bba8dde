"""`flask courses import|export|check|readability|stale`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from core.database import utcnow
from core.extensions import db
from courses.catalog import (
    CATALOG_DIR,
    LONGEST_CORRECT_MAX,
    TRUE_SHARE_RANGE,
    CatalogError,
    course_folders,
    export_course,
    import_folder,
    quiz_balance,
    quiz_warnings,
    read_folder,
)
from courses.models import Course, CourseStatus
from courses.studio import stale_lessons

cli = AppGroup("courses", help="Import, export and check course folders.")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--draft", is_flag=True, help="Import as drafts instead of publishing.")
def import_command(path: Path, draft: bool) -> None:
    """Import one course folder, or every course folder inside PATH, then the program files in PATH/programs/
    (all or nothing)."""
    from courses.programs import import_programs, program_files

    folders = course_folders(path)
    programs = program_files(path)
    if not folders and not programs:
        raise click.ClickException(f"No course.yaml in {path} or its subfolders, and no programs/*.yaml.")
    status = CourseStatus.DRAFT if draft else CourseStatus.PUBLISHED
    problems, results, warnings = [], [], []
    for folder in folders:
        try:
            course, outcome = import_folder(folder, now=utcnow(), status=status, warnings=warnings)
            results.append((course.slug, outcome, course.version))
        except CatalogError as error:
            problems.extend(error.problems)
    if programs and not problems:
        try:
            for program, outcome in import_programs(programs, now=utcnow(), status=status):
                results.append((f"program {program.slug}", outcome, program.version))
        except CatalogError as error:
            problems.extend(error.problems)
    if problems:
        db.session.rollback()
        raise click.ClickException("Nothing was imported:\n  " + "\n  ".join(problems))
    db.session.commit()
    for slug, outcome, version in results:
        click.echo(f"{outcome:>9}  {slug} (version {version})")
    for warning in warnings:
        click.echo(f"  warning  {warning}", err=True)


@cli.command("export")
@click.argument("slug")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def export_command(slug: str, path: Path) -> None:
    """Write course SLUG as catalog files into PATH."""
    course = db.session.scalar(select(Course).where(Course.slug == slug))
    if course is None:
        raise click.ClickException(f"No course with slug '{slug}'.")
    written = export_course(course, path)
    click.echo(f"Wrote {len(written)} files to {path}")


@cli.command("check")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=CATALOG_DIR)
@click.option("--strict", is_flag=True, help="Exit with status 1 on warnings too, not only on errors.")
def check_command(path: Path, strict: bool) -> None:
    """Validate course folders without importing them, and report quiz balance and reading level.

    The skills framework must be loaded (`flask skills load`), since tags are checked against it.
    """
    folders = course_folders(path)
    if not folders:
        raise click.ClickException(f"No course.yaml in {path} or its subfolders.")
    errors = warned = 0
    low, high = TRUE_SHARE_RANGE
    for folder in folders:
        try:
            spec = read_folder(folder)
        except CatalogError as error:
            errors += 1
            click.echo(f"{folder.name}: INVALID\n  " + "\n  ".join(error.problems))
            continue
        balance = quiz_balance(spec)
        reading = _readability(folder, spec)
        click.echo(
            f"{spec.slug}: longest option correct {balance.longest_correct}/{balance.single} "
            f"({balance.longest_share:.0%}, limit {LONGEST_CORRECT_MAX:.0%}); true/false keyed True "
            f"{balance.keyed_true}/{balance.true_false} ({balance.true_share:.0%}, {low:.0%}-{high:.0%}); "
            + _reading_summary(reading)
        )
        warnings = quiz_warnings(spec) + reading.problems()
        warned += bool(warnings)
        for warning in warnings:
            click.echo(f"  warning: {warning}")
    if errors or (strict and warned):
        raise SystemExit(1)


@cli.command("readability")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=CATALOG_DIR)
def readability_command(path: Path) -> None:
    """Print every lesson's reading level in the course folders under PATH (default: the catalog).

    English lessons: Flesch-Kincaid grade. Spanish lessons: Fernández-Huerta ease (higher is easier), beside the
    English original's Flesch reading ease when the course is a translation of one in the same folder.
    """
    from courses.readability import (
        MAX_AVERAGE_GRADE,
        MAX_LESSON_GRADE,
        MIN_AVERAGE_EASE_ES,
        MIN_LESSON_EASE_ES,
    )

    folders = course_folders(path)
    if not folders:
        raise click.ClickException(f"No course.yaml in {path} or its subfolders.")
    over = False
    for folder in folders:
        try:
            spec = read_folder(folder)
        except CatalogError as error:
            raise click.ClickException("\n  ".join(error.problems))
        reading = _readability(folder, spec)
        label = "worker audience" if reading.worker_audience else "specialist audience, not limited"
        if reading.spanish:
            original = (
                f"; English original {reading.original_slug}: Flesch reading ease average {reading.original_average}"
                if reading.original_slug
                else ""
            )
            click.echo(
                f"{spec.slug} ({label}, Spanish): Fernández-Huerta average {reading.average}, "
                f"hardest {reading.hardest}{original}"
            )
        else:
            click.echo(f"{spec.slug} ({label}): average {reading.average}, highest {reading.highest}")
        problems = {p.split(" ", 2)[1] for p in reading.problems() if p.startswith("Lesson ")}
        for g in reading.lessons:
            flag = "  OVER" if f"{g.module}.{g.lesson}" in problems else ""
            beside = f"  (English {g.original:5.1f})" if g.original is not None else ""
            click.echo(f"  {g.module}.{g.lesson}  {g.grade:5.1f}  {g.slug}{beside}{flag}")
        over = over or bool(reading.problems())
    click.echo(
        f"Limits for worker-audience courses: average ≤ {MAX_AVERAGE_GRADE:g}, every lesson ≤ {MAX_LESSON_GRADE:g} "
        f"(Flesch-Kincaid grade); in Spanish, Fernández-Huerta average ≥ {MIN_AVERAGE_EASE_ES:g}, every lesson "
        f"≥ {MIN_LESSON_EASE_ES:g} and no lesson harder than its English original's Flesch reading ease"
        + (" — some courses are over." if over else " — all within.")
    )


def _readability(folder: Path, spec):
    """The course's readability, measured against its English original when that folder sits beside it."""
    from courses.readability import TRANSLATIONS, course_readability

    original = None
    source = folder.parent / TRANSLATIONS.get(spec.slug, "")
    if spec.slug in TRANSLATIONS and (source / "course.yaml").is_file():
        try:
            original = read_folder(source)
        except CatalogError:
            original = None  # the original's own problems are reported when it is checked
    return course_readability(spec, original)


def _reading_summary(reading) -> str:
    if reading.spanish:
        return f"Fernández-Huerta average {reading.average}, hardest {reading.hardest}" + (
            " (worker audience: ≥ 60 average, ≥ 50 each, no lesson harder than the English original)"
            if reading.worker_audience
            else ""
        )
    return f"Flesch-Kincaid average {reading.average}, highest {reading.highest}" + (
        " (worker audience: ≤ 8 average, ≤ 10 each)" if reading.worker_audience else ""
    )


@cli.command("stale")
@click.option("--on", "day", type=click.DateTime(formats=["%Y-%m-%d"]), help="Judge as of this day (default today).")
def stale_command(day) -> None:
    """List lessons whose review_by date has passed: their time-sensitive facts need checking."""
    today: date = day.date() if day else utcnow().date()
    rows = stale_lessons(today=today)
    for lesson in rows:
        course = lesson.module.course
        click.echo(f"{lesson.review_by.isoformat()}  {course.slug} › {lesson.module.slug} › {lesson.slug}")
    click.echo(f"{len(rows)} lesson{'' if len(rows) == 1 else 's'} past review_by as of {today.isoformat()}.")


@cli.command("export-program")
@click.argument("slug")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def export_program_command(slug: str, path: Path) -> None:
    """Write program SLUG as PATH/SLUG.yaml (the format of courses/catalog/programs/)."""
    from courses.programs import export_program, get_program

    program = get_program(slug)
    if program is None:
        raise click.ClickException(f"No program with slug '{slug}'.")
    click.echo(f"Wrote {export_program(program, path)}")
