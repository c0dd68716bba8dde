"""The one coarse role decorator; object-level checks live in each domain's permissions.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user

from core.extensions import login_manager


def roles_required(*roles: str) -> Callable:
    """Refuse anonymous users (login redirect or 401) and users without one of ``roles`` (403)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role.value not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
