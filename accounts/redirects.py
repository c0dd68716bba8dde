"""The one strict helper for post-login ``next`` redirects."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MAX_NEXT_LENGTH = 2048


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a same-site relative path, else None.

    Accepts only paths that start with a single "/". Refuses schemes, hosts,
    protocol-relative forms (``//host``, ``/\\host``, ``/%09/host``, ``/%2F/host``),
    backslashes and control characters, in the raw string and once percent-decoded.
    """
    if not target or not isinstance(target, str) or len(target) > MAX_NEXT_LENGTH:
        return None
    for candidate in (target, unquote(target)):
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in candidate):
            return None
        if "\\" in candidate:
            return None
        if not candidate.startswith("/") or candidate.startswith("//"):
            return None
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return None
        # whitespace before a second slash (e.g. "/ /host") is stripped by some browsers
        if candidate[1:].lstrip().startswith("/") and candidate[1] != "/" and candidate[1:2].isspace():
            return None
    return target
