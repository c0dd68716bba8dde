"""Per-account throttling of failed logins, beside the per-address rate limit.

Guessing spread over many addresses was unbounded per account. Failures are counted per email (known or
not, so the throttle says nothing about which accounts exist) in the rate limiter's own storage (memory, or
Redis shared by every app server). After FREE_FAILURES failures within the hour each further failure locks
the account's logins for a doubling delay (30 s, 1 min, 2 min … capped at 15 min); the owner is emailed
once, when the lock first starts. A successful login clears the count.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask_babel import ngettext

from core.extensions import limit_storage

FREE_FAILURES = 5
WINDOW_SECONDS = 3600
FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 900


def _keys(email: str) -> tuple[str, str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"awa/login-failures/{digest}", f"awa/login-lock/{digest}"


def locked_for(email: str) -> int:
    """Seconds until this account's logins are accepted again (0: not locked)."""
    _, lock = _keys(email)
    storage = limit_storage()
    if storage is None or storage.get(lock) <= 0:
        return 0
    return max(1, math.ceil(storage.get_expiry(lock) - time.time()))


def record_failure(email: str) -> bool:
    """Count a failed login; start or lengthen the lock. True when the owner should now be told (once)."""
    failures, lock = _keys(email)
    storage = limit_storage()
    if storage is None:  # rate limits switched off (RATELIMIT_ENABLED=False): so is this throttle
        return False
    count = storage.incr(failures, WINDOW_SECONDS)
    if count < FREE_FAILURES:
        return False
    delay = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (count - FREE_FAILURES))
    storage.clear(lock)
    storage.incr(lock, delay)
    return count == FREE_FAILURES


def record_success(email: str) -> None:
    storage = limit_storage()
    for key in _keys(email) if storage is not None else ():
        storage.clear(key)


def wait_message(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return ngettext(
            "Too many failed logins for this account. Try again in %(num)d second, or reset your password.",
            "Too many failed logins for this account. Try again in %(num)d seconds, or reset your password.",
            seconds,
        )
    return ngettext(
        "Too many failed logins for this account. Try again in %(num)d minute, or reset your password.",
        "Too many failed logins for this account. Try again in %(num)d minutes, or reset your password.",
        minutes,
    )
