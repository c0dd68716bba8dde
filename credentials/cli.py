"""`flask credentials render --all`: render missing or outdated PDFs in parallel."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from core.database import utcnow
from core.extensions import db
from credentials import openbadges
from credentials.identity import issuer
from credentials.keys import KeyError_
from credentials.models import Certificate
from credentials.presenters import certificate_data
from credentials.storage import pdf_folder, pdf_is_current, store_pdf

cli = AppGroup("credentials", help="Certificate PDFs, signing keys and status lists.")

_worker_app = None


def _init_worker(config: dict) -> None:
    global _worker_app
    from core import create_app

    _worker_app = create_app(config)


def _render(data) -> tuple[str, bytes]:
    from credentials.pdf import render_pdf

    with _worker_app.app_context():
        return data.public_id, render_pdf(data)


@cli.command("render")
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
    todo = [c for c in db.session.scalars(select(Certificate)) if not pdf_is_current(c, folder, now)]
    if not todo:
        click.echo("Every certificate PDF is up to date.")
        return
    by_id = {c.public_id: c for c in todo}
    config = {
        k: current_app.config[k]
        for k in ("APP_ENV", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "ISSUER_URL", "ISSUER_NAME", "CERTIFICATE_PAPER")
    }
    try:
        credentials = {
            c.public_id: json.dumps(openbadges.signed_credential(c, issuer(), now=now), ensure_ascii=False)
            for c in todo
        }
        db.session.commit()
    except KeyError_ as error:
        raise click.ClickException(
            f"{error}. PDFs carry their signed credential, so rendering waits for a key."
        ) from None
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(config,)) as pool:
        futures = [
            pool.submit(_render, replace(certificate_data(c, now), credential_json=credentials[c.public_id]))
            for c in todo
        ]
        with click.progressbar(length=len(futures), label=f"Rendering {len(futures)} PDFs") as bar:
            for future in as_completed(futures):
                public_id, pdf = future.result()
                store_pdf(by_id[public_id], pdf, folder, now=now)
                db.session.commit()
                bar.update(1)
    click.echo(f"Rendered {len(todo)} certificate PDFs into {folder}.")


@cli.command("keygen")
def keygen_command() -> None:
    """Create the issuer's Ed25519 signing key (a 0600 file under instance/)."""
    from credentials.keys import KeyError_, generate

    try:
        key, path = generate(rotate=False)
    except KeyError_ as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created signing key {key.id} in {path}\nPublic key (Multikey): {key.public_multibase}")


@cli.command("rotate-key")
def rotate_key_command() -> None:
    """Add a new active signing key; earlier keys stay published so their credentials still verify."""
    from credentials.keys import KeyError_, generate

    try:
        key, path = generate(rotate=True)
    except KeyError_ as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"New active signing key {key.id} in {path}\nPublic key (Multikey): {key.public_multibase}")


@cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--did",
    "did_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The issuer's DID document (did.json); default: the public keys of this installation.",
)
@click.option(
    "--status-list",
    "status_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A downloaded status list credential, to check revocation offline.",
)
@click.option("--issuer-url", help="The issuer's public base URL (default: ISSUER_URL).")
def verify_command(file: Path, did_file: Path | None, status_file: Path | None, issuer_url: str | None) -> None:
    """Verify a credential, certificate PDF or SVG badge offline: public keys only, no database."""
    from credentials.keys import decode_public, load_keys
    from credentials.verification import SubmissionError, bits_from_status_list, check_credential, read_submission

    the_issuer = openbadges.Issuer(issuer_url or current_app.config["ISSUER_URL"], current_app.config["ISSUER_NAME"])
    try:
        if did_file:
            did = json.loads(did_file.read_text(encoding="utf-8"))
            keys = {
                m["id"].split("#", 1)[1]: decode_public(m["publicKeyMultibase"])
                for m in did.get("verificationMethod", [])
                if m.get("controller") == the_issuer.did
            }
        else:  # the local key store's public halves
            keys = {k.id: decode_public(k.public_multibase) for k in load_keys()[0]}
        credential = read_submission(file.read_bytes())
        bits = None
        if status_file:
            bits = bits_from_status_list(
                json.loads(status_file.read_text(encoding="utf-8")), issuer=the_issuer, keys=keys
            )
        report = check_credential(
            credential,
            issuer=the_issuer,
            keys=keys,
            status_bits=(lambda _list_id: bits) if bits is not None else None,
            now=utcnow(),
        )
    except (SubmissionError, KeyError_, ValueError, KeyError) as error:
        raise click.ClickException(str(error)) from None
    for check in report.checks:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[check.ok]
        click.echo(f"{mark}  {check.name:<9} {check.message}")
    click.echo(f"Verdict: {report.verdict}{'' if report.verified else ' (not verified)'}")
    if not report.verified:
        raise SystemExit(1)
