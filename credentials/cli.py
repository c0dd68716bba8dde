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
from flask_babel import gettext as _
from sqlalchemy import select

from core.database import utcnow
from core.extensions import db
from credentials import openbadges
from credentials.identity import issuer
from credentials.keys import KeyError_
from credentials.models import Certificate
from credentials.presenters import certificate_data
from credentials.storage import pdf_is_current, pdf_storage, store_pdf

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
    store = pdf_storage()
    todo = [c for c in db.session.scalars(select(Certificate)) if not pdf_is_current(c, store, now)]
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
                store_pdf(by_id[public_id], pdf, store, now=now)
                db.session.commit()
                bar.update(1)
    click.echo(f"Rendered {len(todo)} certificate PDFs into {store.describe()}.")


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


def _json_file(path: Path, what: str):
    """The parsed JSON of a file named on the command line. Raises ClickException with one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise click.ClickException(
            _("%(what)s %(file)s cannot be read: %(error)s", what=what, file=path, error=error.strerror)
        ) from None
    except UnicodeDecodeError:
        raise click.ClickException(_("%(what)s %(file)s is not UTF-8 text.", what=what, file=path)) from None
    except json.JSONDecodeError as error:
        raise click.ClickException(
            _(
                "%(what)s %(file)s is not valid JSON (line %(line)d, column %(column)d: %(problem)s).",
                what=what,
                file=path,
                line=error.lineno,
                column=error.colno,
                problem=error.msg,
            )
        ) from None
    except (RecursionError, ValueError):
        raise click.ClickException(_("%(what)s %(file)s is not JSON we can read.", what=what, file=path)) from None


def _did_keys(document: object, issuer: openbadges.Issuer) -> dict:
    """The issuer's Ed25519 keys by id ("key-1") from a DID document. Raises ClickException with one line."""
    from credentials.keys import decode_public

    if not isinstance(document, dict):
        raise click.ClickException(_("The DID document must be a JSON object."))
    if document.get("id") != issuer.did:
        raise click.ClickException(
            _("The DID document is for %(found)r, not the issuer %(did)s.", found=document.get("id"), did=issuer.did)
        )
    methods = document.get("verificationMethod", [])
    if not isinstance(methods, list):
        raise click.ClickException(_("The DID document's verificationMethod must be a list."))
    keys = {}
    for method in methods:
        if not isinstance(method, dict) or not isinstance(method.get("id"), str):
            raise click.ClickException(_("Each verificationMethod of the DID document must be an object with an id."))
        if method.get("controller") != issuer.did or not method["id"].startswith(issuer.did + "#"):
            continue  # not a key of this issuer: credentials naming it fail their proof check
        try:
            keys[method["id"].split("#", 1)[1]] = decode_public(method.get("publicKeyMultibase"))
        except ValueError:
            raise click.ClickException(
                _("The DID document's key %(key)s is not an Ed25519 Multikey.", key=method["id"])
            ) from None
    return keys


def _status_lookup(documents: list[object], issuer: openbadges.Issuer, keys: dict):
    """``status_bits(list_id, purpose)`` for check_credential from downloaded status lists: the bits only when
    one of the files is a list we signed, is the very list the credential's entry points to, and has that entry's
    purpose; otherwise StatusUnavailable saying why (StatusNotGiven when no file is that list)."""
    from credentials import vc
    from credentials.verification import StatusNotGiven, StatusUnavailable, SubmissionError, read_status_list

    lists: dict[object, tuple[str | None, bytes | None, str | None]] = {}  # id → (purpose, bits, problem)
    for document in documents:
        if not isinstance(document, dict):
            raise click.ClickException(_("The status list must be a JSON object (a status list credential)."))
        try:
            (purpose, bits), problem = read_status_list(document, issuer=issuer, keys=keys), None
        except SubmissionError as error:  # not a status list credential at all: a bad file, not a status result
            raise click.ClickException(_("The status list file is not usable: %(error)s", error=error)) from None
        except vc.ProofError as error:
            purpose, bits, problem = None, None, _("The status list's signature is invalid: %(error)s.", error=error)
        except (vc.ContextRefused, vc.CanonicalizationRefused) as error:
            purpose, bits, problem = None, None, _("The status list could not be checked: %(error)s.", error=error)
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            purpose, bits, problem = (
                None,
                None,
                _("The status list could not be read (%(error)s).", error=error.__class__.__name__),
            )
        lists[document.get("id")] = (purpose, bits, problem)

    def status_bits(list_id: int, purpose: str) -> bytes:
        wanted = issuer.status_list_url(list_id)
        if wanted not in lists:
            given = ", ".join(repr(key) for key in lists)
            if purpose == "suspension":  # a file for the revocation list alone: suspension is not checked
                raise StatusNotGiven(
                    _(
                        "Suspension NOT checked: pass its status list %(wanted)s too (given: %(given)s).",
                        wanted=wanted,
                        given=given,
                    )
                )
            raise StatusUnavailable(
                _(
                    "Not checked against the right list: the status list file is %(given)s, but this credential's "
                    "status is in %(wanted)s. Download that list and check again.",
                    given=given,
                    wanted=wanted,
                )
            )
        signed_purpose, bits, problem = lists[wanted]
        if problem is not None:
            raise StatusUnavailable(problem)
        if signed_purpose != purpose:
            raise StatusUnavailable(
                _(
                    "The status list %(url)s is a %(signed)s list, but the credential's entry is for %(purpose)s.",
                    url=wanted,
                    signed=signed_purpose,
                    purpose=purpose,
                )
            )
        return bits

    return status_bits


@cli.command("verify", epilog="Exit status: 0 verified, 1 not verified or unreadable input, 2 bad usage.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))  # missing: our one-line error
@click.option(
    "--did",
    "did_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The issuer's DID document (did.json); default: the public keys of this installation.",
)
@click.option(
    "--status-list",
    "status_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A status list credential the credential points to (its credentialStatus' statusListCredential), "
    "downloaded, to check revocation and suspension offline; give it once per list (revocation, suspension).",
)
@click.option("--issuer-url", help="The issuer's public base URL (default: ISSUER_URL).")
def verify_command(file: Path, did_file: Path | None, status_files: tuple[Path, ...], issuer_url: str | None) -> None:
    """Verify a credential, certificate PDF or SVG badge offline: public keys only, no database."""
    try:
        report = _verify_offline(file, did_file, status_files, issuer_url)
    except click.ClickException:
        raise
    except Exception as error:  # never a traceback for a file someone handed us: say what and stop
        raise click.ClickException(
            _(
                "Could not verify %(file)s: %(error)s",
                file=file.name,
                error=error.__class__.__name__ + ": " + str(error),
            )
        ) from None
    for check in report.checks:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[check.ok]
        click.echo(f"{mark}  {check.name:<9} {check.message}")
    _echo_shown(report)
    if not report.ours and (did_file or status_files):
        click.echo(
            _(
                "Note: --did and --status-list are for this site's credentials; another issuer's DID document and "
                "status lists were fetched from where the credential points."
            )
        )
    status = next((c for c in report.checks if c.name == "status"), None)
    if not report.verified:
        click.echo(_("Verdict: %(verdict)s (not verified)", verdict=report.verdict))
        raise SystemExit(1)
    if status is not None and status.ok is None:
        click.echo(
            _(
                "Verdict: signature and dates hold; status NOT fully checked "
                "(pass --status-list with each list this credential points to)."
            )
        )
        return
    click.echo(_("Verdict: %(verdict)s", verdict=report.verdict))


def _echo_shown(report) -> None:
    """Who issued it (ours, or another issuer's DID) and what the credential shows, as the verify page says it."""
    summary = report.summary()
    shown = summary["credential"] or {}
    if summary["issued_by_us"] and report.verified:
        click.echo(_("Issued by %(name)s — verified", name=shown.get("issuer")))
    elif not summary["issued_by_us"] and summary["issuer_did"]:
        click.echo(_("Issued by %(did)s — not us", did=summary["issuer_did"]))
    if shown.get("issuer_name_claimed") and not summary["issued_by_us"]:
        click.echo(_("Issuer name: %(name)s (the issuer's own claim)", name=shown["issuer_name_claimed"]))
    achievement = shown.get("achievement") or {}
    for label, value in (
        (_("Achievement"), achievement.get("name")),
        (_("Description"), achievement.get("description")),
        (_("Criteria"), (achievement.get("criteria") or {}).get("narrative")),
        (_("Awarded to"), shown.get("holder_name")),
    ):
        if value:
            click.echo(f"      {label}: {value}")
    for part in report.parts:  # a learning record: each credential's own verdict
        name = part.facts.name if part.facts is not None else _("a credential that could not be read")
        verdict = part.verdict
        if part.verified and any(c.name == "status" and c.ok is None for c in part.checks):
            verdict = _("%(verdict)s (status not checked)", verdict=verdict)
        click.echo(f"      - {name}: {verdict}")


def _verify_offline(file: Path, did_file: Path | None, status_files: tuple[Path, ...], issuer_url: str | None):
    from credentials import displayer
    from credentials.keys import decode_public, load_keys
    from credentials.verification import SubmissionError, read_submission

    the_issuer = openbadges.Issuer(issuer_url or current_app.config["ISSUER_URL"], current_app.config["ISSUER_NAME"])
    if did_file:
        keys = _did_keys(_json_file(did_file, _("The DID document")), the_issuer)
    else:  # the local key store's public halves
        try:
            keys = {k.id: decode_public(k.public_multibase) for k in load_keys()[0]}
        except KeyError_ as error:
            raise click.ClickException(str(error)) from None
    status_bits = (
        _status_lookup([_json_file(f, _("The status list")) for f in status_files], the_issuer, keys)
        if status_files
        else None
    )
    try:
        data = file.read_bytes()
    except OSError as error:
        raise click.ClickException(_("%(file)s cannot be read: %(error)s", file=file, error=error.strerror)) from None
    try:
        credential = read_submission(data)
    except SubmissionError as error:
        raise click.ClickException(str(error)) from None
    # another issuer's credential is checked against its own DID and status lists, fetched under the verifier's
    # rules (credentials/fetcher.py); --did and --status-list are for our own credentials
    return displayer.check(credential, issuer=the_issuer, keys=keys, status_bits=status_bits, now=utcnow())
