"""Words people read for values that stay English in data, CSV and APIs (statuses, check names)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import format_date, gettext

from credentials.models import Certificate, status_label, suspended_at_time


def bulk_status_label(value: str) -> str:
    """A bulk-verification row's status ("valid", "not_found", "invalid", ...) in the reader's language."""
    if value == "not_found":
        return gettext("Not found")
    if value == "invalid":
        return gettext("Invalid")
    return status_label(value)


def check_label(name: str) -> str:
    """The name of one check of an uploaded credential (credentials.verification) in the reader's language."""
    return {
        "structure": gettext("Structure"),
        "proof": gettext("Proof"),
        "validity": gettext("Validity"),
        "record": gettext("Record"),
        "status": gettext("Status"),
        "credentials": gettext("Credentials in the record"),
    }.get(name, name.capitalize())


def suspension_text(certificate: Certificate, now: datetime) -> str | None:
    """The words for a running suspension ("Suspended until 31 December 2026", "Suspended until further notice")
    in the reader's language, or None when the certificate is not suspended at ``now``. Raises nothing."""
    if certificate.revoked_at is not None or not suspended_at_time(certificate, now):
        return None
    if certificate.suspended_until is None:
        return gettext("Suspended until further notice")
    return gettext("Suspended until %(date)s", date=format_date(certificate.suspended_until, "long"))
