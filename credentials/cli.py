"""`flask credentials render --all`: render missing or outdated PDFs in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import click
from flask import current_app
from sqlalchemy import select

from core.database import utcnow
from core.extensions import db
from credentials import services
from credentials.models import Certificate
from credentials.views import bp, certificate_data, pdf_folder

_worker_app = None


def _init_worker(config: dict) -> None:
    global _worker_app
    from core import create_app

    _worker_app = create_app(config)


def _render(data) -> tuple[str, bytes]:
    from credentials.pdf import render_pdf

    with _worker_app.app_context():
        return data.public_id, render_pdf(data)


@bp.cli.command("render")
@click.option(
    "--all", "render_all", is_flag=True, help="Render every certificate whose stored PDF is missing or outdated."
)
@click.option("--workers", type=click.IntRange(1, 32), default=lambda: os.cpu_count() or 1, show_default="CPU count")
def render_command(render_all: bool, workers: int) -> None:
    """Render certificate PDFs that are missing, changed or wrongly stamped."""
    if not render_all:
        raise click.UsageError("Pass --all to render every missing PDF.")
    now = utcnow()
    folder = pdf_folder()
    todo = [c for c in db.session.scalars(select(Certificate)) if not services.pdf_is_current(c, folder, now)]
    if not todo:
        click.echo("Every certificate PDF is up to date.")
        return
    by_id = {c.public_id: c for c in todo}
    config = {
        k: current_app.config[k]
        for k in ("APP_ENV", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "ISSUER_URL", "ISSUER_NAME", "CERTIFICATE_PAPER")
    }
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(config,)) as pool:
        futures = [pool.submit(_render, certificate_data(c, now)) for c in todo]
        with click.progressbar(length=len(futures), label=f"Rendering {len(futures)} PDFs") as bar:
            for future in as_completed(futures):
                public_id, pdf = future.result()
                services.store_pdf(by_id[public_id], pdf, folder, now=now)
                db.session.commit()
                bar.update(1)
    click.echo(f"Rendered {len(todo)} certificate PDFs into {folder}.")


@bp.cli.command("keygen")
def keygen_command() -> None:
    """Create the issuer's Ed25519 signing key (a 0600 file under instance/)."""
    from credentials.keys import KeyError_, generate

    try:
        key, path = generate(rotate=False)
    except KeyError_ as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created signing key {key.id} in {path}\nPublic key (Multikey): {key.public_multibase}")


@bp.cli.command("rotate-key")
def rotate_key_command() -> None:
    """Add a new active signing key; earlier keys stay published so their credentials still verify."""
    from credentials.keys import KeyError_, generate

    try:
        key, path = generate(rotate=True)
    except KeyError_ as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"New active signing key {key.id} in {path}\nPublic key (Multikey): {key.public_multibase}")
