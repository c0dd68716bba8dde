"""`flask courses import PATH` and `flask courses export SLUG PATH`."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from core.database import utcnow
from core.extensions import db
from courses.catalog import CatalogError, course_folders, export_course, import_folder
from courses.models import Course, CourseStatus
from courses.views import bp


@bp.cli.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--draft", is_flag=True, help="Import as drafts instead of publishing.")
def import_command(path: Path, draft: bool) -> None:
    """Import one course folder, or every course folder inside PATH (all or nothing)."""
    folders = course_folders(path)
    if not folders:
        raise click.ClickException(f"No course.yaml in {path} or its subfolders.")
    status = CourseStatus.DRAFT if draft else CourseStatus.PUBLISHED
    problems, results = [], []
    for folder in folders:
        try:
            course, outcome = import_folder(folder, now=utcnow(), status=status)
            results.append((course.slug, outcome, course.version))
        except CatalogError as error:
            problems.extend(error.problems)
    if problems:
        db.session.rollback()
        raise click.ClickException("Nothing was imported:\n  " + "\n  ".join(problems))
    db.session.commit()
    for slug, outcome, version in results:
        click.echo(f"{outcome:>9}  {slug} (version {version})")


@bp.cli.command("export")
@click.argument("slug")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def export_command(slug: str, path: Path) -> None:
    """Write course SLUG as catalog files into PATH."""
    course = db.session.scalar(select(Course).where(Course.slug == slug))
    if course is None:
        raise click.ClickException(f"No course with slug '{slug}'.")
    written = export_course(course, path)
    click.echo(f"Wrote {len(written)} files to {path}")
