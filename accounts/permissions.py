"""Who may do what: pure predicates, and the one way views apply them.

Every capability has a named predicate ``(user) -> bool`` (``can_manage_users``, ``can_author_courses``, …),
kept in the room that owns the capability (``courses/permissions.py``, ``insights/permissions.py``, …).
Views apply them with ``permission_required`` (a page or action as a whole) or ``authorize`` (after loading an
object); templates call the very same functions, registered as Jinja globals by the factory, so a link is shown
exactly when the page behind it would answer.

Today every staff capability maps to the admin role. Giving one of them to another role (an author who may use
the studio but not manage users) means changing one predicate, not every view.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, make_response
from flask_login import current_user

from accounts.models import Role, User
from core.extensions import login_manager

Predicate = Callable[[Any], bool]


def is_signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def is_admin(user) -> bool:
    """The site role behind the staff capabilities; views and templates ask for a capability instead."""
    return is_signed_in(user) and user.role is Role.ADMIN


def can_manage_users(user) -> bool:
    """Search people, change their role, deactivate and reactivate accounts (/admin/users)."""
    return is_admin(user)


def can_read_audit_log(user) -> bool:
    """Read and export the append-only record of staff actions (/admin/audit)."""
    return is_admin(user)


def can_manage_jobs(user) -> bool:
    """See the task queue and retry failed jobs (/admin/jobs)."""
    return is_admin(user)


def can_change_account(actor: User, target: User) -> bool:
    """Admins manage others; nobody demotes or deactivates themselves (no lock-out)."""
    return can_manage_users(actor) and actor.id != target.id


def _refuse_anonymous() -> None:
    # the login manager's answer: a redirect to /login with a strict `next` for pages, a 401 for API clients
    abort(make_response(login_manager.unauthorized()))


def permission_required(predicate: Predicate) -> Callable:
    """Decorate a view so that only users for whom ``predicate(user)`` holds reach it.

    Anonymous visitors get the login redirect (or a JSON 401); signed-in users without the permission get 403.
    The predicate is kept on the view as ``view.permission`` so that tests can prove every staff route has one.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                _refuse_anonymous()
            if not predicate(current_user):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = predicate  # type: ignore[attr-defined]
        return wrapped

    return decorator


def authorize(allowed: bool, *, hide: bool = False) -> None:
    """The check after loading an object: ``authorize(can_download(current_user, certificate))``.

    Raises (through ``abort``) the login redirect for anonymous visitors, then 403 when ``allowed`` is false,
    or 404 with ``hide=True`` where the object's existence is itself private (an organization to an outsider).
    """
    if allowed:
        return
    if not current_user.is_authenticated:
        _refuse_anonymous()
    abort(404 if hide else 403)
