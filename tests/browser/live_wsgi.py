"""The browser tests' live servers: the app exactly as wsgi.py builds it, with the suite's test-sized argon2.

Why not production's cost here: no browser test measures or asserts the hash parameters (tests/test_accounts.py
does, in process: the stored hash, rehash on login, the dummy hash for unknown emails), and at production cost
every registration, login and process start of the live servers spent ~0.26 s of CPU each on argon2 alone. The
hasher is still the real argon2id with the same code path, as in the rest of the suite (tests/conftest.py,
_test_sized_argon2). The two-server tests (tests/servers) keep production's configuration.

Used as gunicorn's app (with --preload the master imports the app before it forks the worker). The servers' setup
commands run in the pytest process instead (conftest.run_setup), with the same test-sized hasher.
"""

from __future__ import annotations

from argon2 import PasswordHasher

from accounts import passwords

passwords.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
passwords._DUMMY_HASH = passwords.hasher.hash("a dummy password to spend the same time on unknown emails")

from core.extensions import db  # noqa: E402 (after the hasher is replaced)
from wsgi import app  # noqa: E402

# no connection may be open when gunicorn forks the workers from this process (--preload): each worker then opens
# its own, never one shared with its sibling (PostgreSQL and SQLite connections must not cross a fork)
with app.app_context():
    db.engine.dispose()
