"""The issuer's Ed25519 signing keys: kept outside the database, published as Multikeys in a did:web document.

Storage: a JSON file (default ``instance/signing-keys.json``, mode 0600) or the ``SIGNING_KEYS`` setting
(e.g. the FLASK_SIGNING_KEYS environment variable) holding the same JSON:
``{"active": "key-2", "keys": [{"id": "key-1", "created": "...", "publicKeyMultibase": "z6Mk...",
"privateKeyMultibase": "z3u2..."}, ...]}``. Rotation adds a key and makes it active; old keys stay
published so credentials they signed still verify.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import base58
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from flask import current_app
from flask_babel import gettext

ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub
ED25519_PRIV = b"\x80\x26"  # multicodec ed25519-priv


class KeyError_(RuntimeError):
    """No usable signing key (missing, unreadable or malformed key store)."""


def encode_public(key: Ed25519PublicKey) -> str:
    return "z" + base58.b58encode(ED25519_PUB + key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def encode_private(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return "z" + base58.b58encode(ED25519_PRIV + raw).decode()


def decode_public(multibase: str) -> Ed25519PublicKey:
    if not isinstance(multibase, str) or not multibase.startswith("z"):
        raise ValueError("publicKeyMultibase must be base58btc (z...)")
    raw = base58.b58decode(multibase[1:])
    if raw[:2] != ED25519_PUB or len(raw) != 34:
        raise ValueError("not an Ed25519 Multikey")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def decode_private(multibase: str) -> Ed25519PrivateKey:
    raw = base58.b58decode(multibase[1:])
    if not multibase.startswith("z") or raw[:2] != ED25519_PRIV or len(raw) != 34:
        raise ValueError("not an Ed25519 private Multikey")
    return Ed25519PrivateKey.from_private_bytes(raw[2:])


@dataclass(frozen=True)
class SigningKey:
    id: str  # "key-1"
    public_multibase: str
    private: Ed25519PrivateKey | None
    created: str


def did_for(base_url: str) -> str:
    """did:web for the public base URL: host (with %3A before a port), then the path segments."""
    parts = urlsplit(base_url)
    host = quote(parts.netloc, safe="")
    path = ":".join(quote(p, safe="") for p in parts.path.strip("/").split("/") if p)
    return f"did:web:{host}" + (f":{path}" if path else "")


def key_file() -> Path:
    configured = current_app.config.get("SIGNING_KEY_FILE")
    return Path(configured) if configured else Path(current_app.instance_path) / "signing-keys.json"


def _read_store() -> dict | None:
    raw = current_app.config.get("SIGNING_KEYS")
    if raw:
        return raw if isinstance(raw, dict) else json.loads(raw)
    path = key_file()
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# parsed key stores by where they came from and, for a file, its size, mtime and inode: every admin page asks
# whether signing works (the banner), and re-reading and decoding the file each time was most of that cost;
# a replaced, edited or deleted file has another stat, so it is read again at once
_PARSED: dict[tuple, tuple[list[SigningKey], str | None]] = {}


def _store_stamp() -> tuple | None:
    """What identifies the key store's current contents, or None when it cannot be told cheaply."""
    raw = current_app.config.get("SIGNING_KEYS")
    if raw:
        # a dict (tests, or a setting given as a mapping) is stamped by its JSON: ~10 µs against ~0.7 ms decoding
        return ("setting", raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str))
    path = key_file()
    try:
        stat = path.stat()
    except OSError:
        return None
    return ("file", str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)


def load_keys() -> tuple[list[SigningKey], str | None]:
    """All published keys and the active key id. Raises KeyError_ when the store is unreadable."""
    stamp = _store_stamp()
    if stamp is not None and stamp in _PARSED:
        keys, active = _PARSED[stamp]
        return list(keys), active
    keys, active = _load_keys()
    if stamp is not None and keys:
        if len(_PARSED) > 8:
            _PARSED.clear()
        _PARSED[stamp] = (list(keys), active)
    return keys, active


def _load_keys() -> tuple[list[SigningKey], str | None]:
    try:
        store = _read_store()
    except (OSError, ValueError) as error:
        raise KeyError_(f"the signing key store cannot be read: {error}") from None
    if not store:
        return [], None
    try:
        keys = [
            SigningKey(
                k["id"],
                k["publicKeyMultibase"],
                decode_private(k["privateKeyMultibase"]) if k.get("privateKeyMultibase") else None,
                k.get("created", ""),
            )
            for k in store["keys"]
        ]
        for key in keys:
            decode_public(key.public_multibase)
    except (KeyError, TypeError, ValueError) as error:
        raise KeyError_(f"the signing key store is malformed: {error}") from None
    return keys, store.get("active")


def active_key() -> SigningKey:
    keys, active = load_keys()
    key = next((k for k in keys if k.id == active and k.private is not None), None)
    if key is None:
        raise KeyError_("no active signing key: run `flask credentials keygen`")
    return key


def public_keys() -> dict[str, Ed25519PublicKey]:
    """{verification method id fragment: public key} for every published key."""
    return {k.id: decode_public(k.public_multibase) for k in published_keys()}


def _write_store(store: dict) -> Path:
    path = key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(store, handle, indent=2)
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return path


def generate(*, rotate: bool) -> tuple[SigningKey, Path]:
    """Create the first key (keygen) or add a new active key keeping the old ones (rotate)."""
    if current_app.config.get("SIGNING_KEYS"):
        raise KeyError_("keys come from the SIGNING_KEYS setting; generate and rotate them where it is kept")
    store = _read_store() or {"keys": [], "active": None}
    if store["keys"] and not rotate:
        raise KeyError_("a signing key already exists; use `flask credentials rotate-key` to add a new one")
    private = Ed25519PrivateKey.generate()
    key_id = f"key-{len(store['keys']) + 1}"
    created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    store["keys"].append(
        {
            "id": key_id,
            "created": created,
            "publicKeyMultibase": encode_public(private.public_key()),
            "privateKeyMultibase": encode_private(private),
        }
    )
    store["active"] = key_id
    path = _write_store(store)
    return SigningKey(key_id, encode_public(private.public_key()), private, created), path


def publish(keys: list[SigningKey]) -> None:
    """Record the public half of these keys in the database (once each; flush only, callers commit)."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from core.extensions import db
    from credentials.models import PublishedKey

    known = set(db.session.scalars(select(PublishedKey.id)))
    for key in keys:
        if key.id in known:
            continue
        try:
            with db.session.begin_nested():
                db.session.add(PublishedKey(id=key.id, public_multibase=key.public_multibase, created=key.created))
        except IntegrityError:  # another request published it first
            pass


def published_keys() -> list[SigningKey]:
    """Every key we can show the world: the key store's, then any published earlier that the store lacks.

    Never raises for a missing or unreadable store: verification must go on while signing waits."""
    from sqlalchemy import select

    from core.extensions import db
    from credentials.models import PublishedKey

    try:
        keys, _ = load_keys()
    except KeyError_ as error:
        current_app.logger.warning("signing key store unavailable, using published keys: %s", error)
        keys = []
    have = {k.id for k in keys}
    for row in db.session.scalars(select(PublishedKey).order_by(PublishedKey.published_at, PublishedKey.id)):
        if row.id not in have:
            keys.append(SigningKey(row.id, row.public_multibase, None, row.created))
    return keys


def signing_problem() -> str | None:
    """Why new credentials cannot be signed right now, in words for admins; None when signing works."""
    try:
        active_key()
    except KeyError_ as error:
        where = gettext("the SIGNING_KEYS setting") if current_app.config.get("SIGNING_KEYS") else str(key_file())
        # the technical detail (error) stays as raised: it names files and commands an admin searches for
        return gettext(
            "Credentials cannot be signed: %(error)s (%(where)s). Certificates are still issued and verify by ID; "
            "their signed credentials, PDF attachments and revocation lists are made once a key is back. "
            "Restore the key file or run `flask credentials keygen`.",
            error=error,
            where=where,
        )
    return None


def did_document(base_url: str) -> dict:
    did = did_for(base_url)
    keys = published_keys()
    methods = [
        {"id": f"{did}#{k.id}", "type": "Multikey", "controller": did, "publicKeyMultibase": k.public_multibase}
        for k in keys
    ]
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
        "authentication": [m["id"] for m in methods],
    }
