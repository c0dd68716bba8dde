"""Plain factory functions: each writes and commits real rows."""

from __future__ import annotations

import itertools

from accounts.models import Role, User
from accounts.passwords import hash_password
from core.database import utcnow
from core.extensions import db

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_hash_cache: dict[str, str] = {}


def make_user(
    *,
    email: str | None = None,
    name: str | None = None,
    role: Role = Role.LEARNER,
    password: str = PASSWORD,
    active: bool = True,
) -> User:
    n = next(_counter)
    if password not in _hash_cache:  # argon2 is slow on purpose; reuse the hash across tests
        _hash_cache[password] = hash_password(password)
    now = utcnow()
    user = User(
        email=(email or f"user{n}@example.org").lower(),
        name=name or f"Test User {n}",
        legal_name=name or f"Test User {n}",
        role=role,
        active=active,
        password_hash=_hash_cache[password],
        created_at=now,
        updated_at=now,
    )
    db.session.add(user)
    db.session.commit()
    return user


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.submit("/login", {"email": email, "password": password, **extra})
