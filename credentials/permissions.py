"""Pure predicates about certificates."""

from __future__ import annotations

from accounts.permissions import is_admin
from credentials.models import Certificate


def can_manage_certificates(user) -> bool:
    """Find, revoke, reinstate and reissue certificates, decide name corrections, set the branding (/admin/…)."""
    return is_admin(user)


def can_download(user, certificate: Certificate) -> bool:
    """The holder and admins download the PDF; employers verify through the public page."""
    return can_manage_certificates(user) or (
        bool(getattr(user, "is_authenticated", False)) and user.id == certificate.user_id
    )


def can_edit_branding(user) -> bool:
    """The issuer's address, signatory and seal printed on certificates (/admin/branding)."""
    return is_admin(user)
