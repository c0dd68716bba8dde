"""Words people read for values that stay English in data, CSV and APIs (statuses, check names)."""

from __future__ import annotations

from flask_babel import gettext

from credentials.models import status_label


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
    }.get(name, name.capitalize())
