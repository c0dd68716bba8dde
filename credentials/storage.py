"""Certificate PDFs on disk: rendered once from the snapshot, stored atomically, served from storage.

Flush only: the caller (a view, a job, the CLI) commits, and that commit also keeps a freshly signed
credential. The file is written before the commit; a rolled-back hash only means the next download renders
it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from flask import current_app

from credentials import openbadges
from credentials.identity import issuer
from credentials.keys import KeyError_
from credentials.models import Certificate
from credentials.pdf import render_pdf
from credentials.presenters import certificate_data, stamp_for


def pdf_folder() -> Path:
    return Path(current_app.config["CERTIFICATE_DIR"] or Path(current_app.instance_path) / "certificates")


def stored_pdf(certificate: Certificate, now: datetime) -> bytes:
    """The stored PDF, rendered from the snapshot and stored first if missing, changed, wrongly stamped or
    unsigned. Raises what rendering raises; a file that cannot be written is logged and served unstored.
    Flush only: the caller commits."""
    folder = pdf_folder()
    try:
        credential = json.dumps(openbadges.signed_credential(certificate, issuer(), now=now), ensure_ascii=False)
    except KeyError_ as error:
        current_app.logger.warning(
            "certificate %s PDF made without its signed credential: %s", certificate.public_id, error
        )
        credential = None
    if pdf_is_current(certificate, folder, now, signed=credential is not None):
        return (folder / certificate.pdf_path).read_bytes()
    pdf = render_pdf(replace(certificate_data(certificate, now), credential_json=credential))
    try:
        store_pdf(certificate, pdf, folder, now=now, signed=credential is not None)
    except OSError:
        current_app.logger.exception(
            "could not store the PDF of certificate %s; serving it unstored", certificate.public_id
        )
    return pdf


def pdf_variant(certificate: Certificate, now: datetime, *, signed: bool) -> str:
    """What a PDF shows beyond the snapshot: its stamp, and whether it carries the signed credential."""
    return (stamp_for(certificate, now) or "") + ("+vc" if signed else "")


def pdf_is_current(certificate: Certificate, folder: Path, now: datetime, *, signed: bool = True) -> bool:
    """The stored PDF exists, matches its recorded sha256, carries the right stamp and its credential.

    ``signed``: whether a signed credential can be embedded now (a PDF made while the key was missing
    is replaced once it is back).
    """
    if (
        not certificate.pdf_path
        or not certificate.pdf_sha256
        or certificate.pdf_stamp != pdf_variant(certificate, now, signed=signed)
    ):
        return False
    path = folder / certificate.pdf_path
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == certificate.pdf_sha256
    except OSError:
        return False


def store_pdf(certificate: Certificate, pdf: bytes, folder: Path, *, now: datetime, signed: bool = True) -> Path:
    """Write the PDF atomically (temp file + rename) and record its hash. Caller commits."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{certificate.public_id}.pdf"
    temporary = folder / f".{name}.{now.timestamp():.0f}.tmp"
    temporary.write_bytes(pdf)
    temporary.replace(folder / name)
    certificate.pdf_path = name
    certificate.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    certificate.pdf_rendered_at = now
    certificate.pdf_stamp = pdf_variant(certificate, now, signed=signed)
    return folder / name
