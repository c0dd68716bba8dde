"""Certificate work done in the worker: PDF pre-rendering, status-list re-signing, and issuing program
certificates a suspension held back once it has run out (all idempotent)."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from core import queue
from core.database import utcnow
from core.extensions import db
from credentials import openbadges, programs
from credentials.identity import issuer
from credentials.models import Certificate
from credentials.services import (
    certificate_issued,
    certificate_reinstated,
    certificate_reissued,
    certificate_revoked,
    certificate_suspended,
    certificate_suspension_lifted,
)
from credentials.storage import stored_pdf  # the one place that renders and stores


@queue.job("credentials.prerender_pdf", attempts=4, lease=300, label="Render a certificate's PDF")
def prerender_pdf(certificate_id: int, revision: int) -> None:
    certificate = db.session.get(Certificate, certificate_id)
    if certificate is None or certificate.revision != revision:
        return  # changed since: the job queued by that change renders it
    stored_pdf(certificate, utcnow())  # a no-op when the stored file is current; the queue commits


@queue.job("credentials.resign_status_list", attempts=8, lease=120, label=_l("Re-sign a status list"))
def resign_status_list(list_id: int) -> None:
    # signs only when the bits changed since the last signature; raises while the key is missing (retried)
    openbadges.signed_status_list(list_id, issuer(), now=utcnow())


def _prerender(certificate: Certificate) -> None:
    if current_app.config["PRERENDER_PDF"]:
        queue.enqueue(
            "credentials.prerender_pdf",
            key=f"pdf:{certificate.id}:{certificate.revision}",
            certificate_id=certificate.id,
            revision=certificate.revision,
        )


def _resign(certificate: Certificate) -> None:
    # revocation and suspension lists, and those of the program certificates following it (the cascades)
    list_ids = {i for c in [certificate, *programs.stacking(certificate)] for i in openbadges.list_ids_of(c)}
    for list_id in sorted(list_ids):
        queue.enqueue("credentials.resign_status_list", list_id=list_id)


@queue.job(
    "credentials.programs_after_suspensions",
    attempts=4,
    lease=300,
    label=_l("Issue program certificates a suspension held back"),
)
def programs_after_suspensions() -> None:
    programs.programs_after_suspensions(utcnow())  # the queue commits


queue.every("credentials.programs_after_suspensions", 60)


@certificate_issued.connect
def _on_issued(certificate, now, **_) -> None:
    db.session.flush()  # the certificate's id and revision
    _prerender(certificate)


@certificate_reissued.connect
def _on_reissued(certificate, now, **_) -> None:
    _prerender(certificate)


@certificate_revoked.connect
@certificate_reinstated.connect
@certificate_suspended.connect
@certificate_suspension_lifted.connect
def _on_status_change(certificate, now, **_) -> None:
    # the admin's request signs the list before answering; this job signs it if that could not (key missing)
    _resign(certificate)
