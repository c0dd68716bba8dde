"""Events from lower rooms → notifications, queued in the event's own transaction (sent after its commit)."""

from __future__ import annotations

from accounts.services import email_verified
from credentials.programs import reinstatement_settled, suspension_changed
from credentials.services import certificate_issued, certificate_reissued, certificate_revoked
from notifications import services


@email_verified.connect
def _welcome(user, now, **_) -> None:
    services.notify(user, "welcome", key=f"welcome:{user.id}", category="tips", user=user)


@certificate_issued.connect
def _issued(certificate, now, **_) -> None:
    services.certificate_issued(certificate)


@certificate_revoked.connect
def _revoked(certificate, now, **_) -> None:
    services.certificate_changed(certificate, "revoked", now=now)


@reinstatement_settled.connect
def _reinstated(certificate, now, **_) -> None:
    # after the program cascade: a program certificate may have come back suspended, and the notice says so
    services.certificate_changed(certificate, "reinstated", now=now)


@certificate_reissued.connect
def _reissued(certificate, now, **_) -> None:
    services.certificate_changed(certificate, "reissued", now=now)


@suspension_changed.connect
def _suspension(certificate, change, programs, now, **_) -> None:
    # sent once the cascade has run: one notice names the certificate and the program certificates that followed
    services.certificate_suspension(certificate, change, programs=programs, now=now)
