"""Certificate PDFs in storage (core/storage.py): rendered once from the snapshot, stored atomically, served
from storage by any app server.

Flush only: the caller (a view, a job, the CLI) commits, and that commit also keeps a freshly signed
credential. The object is written before the commit; a rolled-back hash only means the next download renders
it again. Its key is the certificate's public id, so a render that runs twice (a killed job run again, two
servers at once) replaces the one object instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime

from flask import current_app

from core.storage import Storage, storage
from credentials import openbadges
from credentials.identity import issuer
from credentials.keys import KeyError_
from credentials.models import Certificate
from credentials.pdf import render_pdf
from credentials.presenters import certificate_data, stamp_for


def pdf_storage() -> Storage:
    return storage("certificates")


def pdf_key(certificate: Certificate) -> str:
    return f"{certificate.public_id}.pdf"


def stored_pdf(certificate: Certificate, now: datetime) -> bytes:
    """The stored PDF, rendered from the snapshot and stored first if missing, changed, wrongly stamped or
    unsigned. Raises what rendering raises; an object that cannot be written is logged and served unstored.
    Flush only: the caller commits."""
    store = pdf_storage()
    try:
        credential = json.dumps(openbadges.signed_credential(certificate, issuer(), now=now), ensure_ascii=False)
    except KeyError_ as error:
        current_app.logger.warning(
            "certificate %s PDF made without its signed credential: %s", certificate.public_id, error
        )
        credential = None
    current = current_pdf(certificate, store, now, signed=credential is not None)
    if current is not None:
        return current
    pdf = render_pdf(replace(certificate_data(certificate, now), credential_json=credential))
    try:
        store_pdf(certificate, pdf, store, now=now, signed=credential is not None)
    except OSError:
        current_app.logger.exception(
            "could not store the PDF of certificate %s; serving it unstored", certificate.public_id
        )
    return pdf


def pdf_variant(certificate: Certificate, now: datetime, *, signed: bool) -> str:
    """What a PDF shows beyond the snapshot: its stamp, and whether it carries the signed credential."""
    return (stamp_for(certificate, now) or "") + ("+vc" if signed else "")


def current_pdf(certificate: Certificate, store: Storage, now: datetime, *, signed: bool = True) -> bytes | None:
    """The stored PDF if it exists, matches its recorded sha256, carries the right stamp and its credential;
    else None (also when storage cannot be read: the caller renders it again).

    ``signed``: whether a signed credential can be embedded now (a PDF made while the key was missing
    is replaced once it is back).
    """
    if (
        not certificate.pdf_path
        or not certificate.pdf_sha256
        or certificate.pdf_stamp != pdf_variant(certificate, now, signed=signed)
    ):
        return None
    try:
        pdf = store.read(certificate.pdf_path)
    except (OSError, ValueError):
        return None
    return pdf if hashlib.sha256(pdf).hexdigest() == certificate.pdf_sha256 else None


def pdf_is_current(certificate: Certificate, store: Storage, now: datetime, *, signed: bool = True) -> bool:
    return current_pdf(certificate, store, now, signed=signed) is not None


def store_pdf(certificate: Certificate, pdf: bytes, store: Storage, *, now: datetime, signed: bool = True) -> str:
    """Store the PDF under the certificate's key (replacing any earlier one) and record its hash.
    Raises OSError if storage fails (nothing recorded then). Caller commits. Returns the key."""
    key = pdf_key(certificate)
    store.write(key, pdf, content_type="application/pdf")
    certificate.pdf_path = key
    certificate.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    certificate.pdf_rendered_at = now
    certificate.pdf_stamp = pdf_variant(certificate, now, signed=signed)
    return key
