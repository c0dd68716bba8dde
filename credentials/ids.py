"""Public certificate IDs: 140 random bits as 28 Crockford base32 characters, read aloud in groups of four."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 28  # 28 × 5 = 140 bits
GROUP = 4
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
MAX_INPUT = 64


def new_public_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize_public_id(raw: object) -> str | None:
    """Canonical form of a typed, pasted or case-mangled ID, or None if it cannot be one.

    Spaces, dashes and case are ignored; O/I/L are read as 0/1 as in Crockford's base32.
    """
    if not isinstance(raw, str) or len(raw) > MAX_INPUT:
        return None
    text = "".join(ch for ch in raw.upper() if ch not in " -\t\u2010\u2011\u2012\u2013\u2014").translate(_CONFUSABLE)
    if len(text) != LENGTH or any(ch not in ALPHABET for ch in text):
        return None
    return text


def format_public_id(public_id: str) -> str:
    return "-".join(public_id[i : i + GROUP] for i in range(0, len(public_id), GROUP))
