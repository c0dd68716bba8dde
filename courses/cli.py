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
    from courses.readability import course_readability

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
        reading = course_readability(spec)
        click.echo(
            f"{spec.slug}: longest option correct {balance.longest_correct}/{balance.single} "
            f"({balance.longest_share:.0%}, limit {LONGEST_CORRECT_MAX:.0%}); true/false keyed True "
            f"{balance.keyed_true}/{balance.true_false} ({balance.true_share:.0%}, {low:.0%}-{high:.0%}); "
            f"Flesch-Kincaid average {reading.average}, highest {reading.highest}"
            + (" (worker audience: ≤ 8 average, ≤ 10 each)" if reading.worker_audience else "")
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
    """Print the Flesch-Kincaid grade of every lesson in the course folders under PATH (default: the catalog)."""
    from courses.readability import MAX_AVERAGE_GRADE, MAX_LESSON_GRADE, course_readability

    folders = course_folders(path)
    if not folders:
        raise click.ClickException(f"No course.yaml in {path} or its subfolders.")
    over = False
    for folder in folders:
        try:
            spec = read_folder(folder)
        except CatalogError as error:
            raise click.ClickException("\n  ".join(error.problems))
        reading = course_readability(spec)
        label = "worker audience" if reading.worker_audience else "specialist audience, not limited"
        click.echo(f"{spec.slug} ({label}): average {reading.average}, highest {reading.highest}")
        for g in reading.lessons:
            flag = "  OVER" if reading.worker_audience and g.grade > MAX_LESSON_GRADE else ""
            click.echo(f"  {g.module}.{g.lesson}  {g.grade:5.1f}  {g.slug}{flag}")
        over = over or bool(reading.problems())
    click.echo(
        f"Limits for worker-audience courses: average ≤ {MAX_AVERAGE_GRADE:g}, every lesson ≤ {MAX_LESSON_GRADE:g}"
        + (" — some courses are over." if over else " — all within.")
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
