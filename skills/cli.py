"""`flask skills load [FILE]`: load the skills framework, idempotently."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from core.database import utcnow
from core.extensions import db
from skills.services import FrameworkError, load_framework_file

cli = AppGroup("skills", help="Load the skills framework.")


@cli.command("load")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_command(path: Path | None) -> None:
    """Load the skills framework (default: skills/framework.yaml). Safe to run again."""
    try:
        report = load_framework_file(path, now=utcnow())
    except FrameworkError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()
    click.echo(report.summary())
    for label, items in (("retired", report.retired), ("deleted", report.deleted)):
        for item in items:
            click.echo(f"  {label}: {item}")
