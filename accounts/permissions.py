"""Pure permission predicates shared by views and templates."""

from __future__ import annotations

from accounts.models import Role, User


def can_manage_users(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role is Role.ADMIN


def can_change_account(actor: User, target: User) -> bool:
    """Admins manage others; nobody demotes or deactivates themselves (no lock-out)."""
    return can_manage_users(actor) and actor.id != target.id
