"""Pure predicates about certificates."""

from __future__ import annotations

from accounts.models import Role
from credentials.models import Certificate


def can_manage_certificates(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role is Role.ADMIN


def can_download(user, certificate: Certificate) -> bool:
    """The holder and admins download the PDF; employers verify through the public page."""
    return bool(getattr(user, "is_authenticated", False)) and (
        user.id == certificate.user_id or user.role is Role.ADMIN
    )
