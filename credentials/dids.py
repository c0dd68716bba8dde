"""Issuer DIDs of other issuers: the Ed25519 keys a ``did:key`` or ``did:web`` lets sign credentials.

``did:key`` carries its key (resolved here, nothing fetched). ``did:web`` is a DID document at an https address
derived from the DID, fetched by ``credentials.fetcher`` under its rules. Only keys the document lists under
``assertionMethod`` count: a key present only for ``authentication`` signs no credential. Any other DID method
is ``Unsupported`` (the verdict is "cannot be checked", not "invalid").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask_babel import gettext

from credentials import fetcher, keys

MAX_METHODS = 32
KEY_TYPES = ("Multikey", "Ed25519VerificationKey2020")
HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
SEGMENT = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=@-]{1,200}")


class Unsupported(ValueError):
    """The issuer is not a did:key or did:web; we cannot check it (the message says so)."""


class DidError(ValueError):
    """The DID or its document is malformed, unreachable, or does not name the key; the message says why."""


@dataclass
class Resolved:
    did: str
    # verification method id -> key, for the keys listed under assertionMethod only
    assertion_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    # every other Ed25519 method the document lists (for a precise "not in assertionMethod" message)
    other_methods: set[str] = field(default_factory=set)

    def key_for(self, method: str) -> Ed25519PublicKey | None:
        return self.assertion_keys.get(method)


def method_of(did: object) -> str | None:
    if not isinstance(did, str) or not did.startswith("did:"):
        return None
    return did.split(":", 2)[1] if did.count(":") >= 2 else None


def unsupported_message(did: object) -> str:
    return gettext(
        "We can only check did:key and did:web issuers; this credential's issuer is %(issuer)s.",
        issuer=repr(did)[:120] if not isinstance(did, str) else did[:120],
    )


def web_url(did: str) -> str:
    """The https (or, under test configuration, loopback http) address of a did:web's document."""
    parts = did.split(":")[2:]
    if not parts or not parts[0]:
        raise DidError(gettext("%(did)s is not a valid did:web.", did=did[:120]))
    host = unquote(parts[0])
    if not HOST.fullmatch(host) or any(not SEGMENT.fullmatch(p) for p in parts[1:]):
        raise DidError(gettext("%(did)s is not a valid did:web.", did=did[:120]))
    path = "/".join(quote(unquote(p), safe="") for p in parts[1:])
    scheme = "http" if fetcher.allow_loopback() else "https"
    return f"{scheme}://{host}/" + (f"{path}/did.json" if path else ".well-known/did.json")


def resolve(did: str) -> Resolved:
    """The DID's assertion keys. Raises Unsupported, DidError."""
    method = method_of(did)
    if method == "key":
        return _did_key(did)
    if method == "web":
        return _did_web(did)
    raise Unsupported(unsupported_message(did))


def _did_key(did: str) -> Resolved:
    multibase = did.removeprefix("did:key:")
    if "#" in did or "/" in did or "?" in did:
        raise DidError(gettext("%(did)s is not a plain did:key.", did=did[:120]))
    try:
        key = keys.decode_public(multibase)
    except ValueError:
        raise DidError(
            gettext("%(did)s does not name an Ed25519 key; we check Ed25519 did:keys only.", did=did[:120])
        ) from None
    return Resolved(did, {f"{did}#{multibase}": key})


def _did_web(did: str) -> Resolved:
    if "#" in did or "?" in did or "/" in did:
        raise DidError(gettext("%(did)s is not a plain did:web.", did=did[:120]))
    url = web_url(did)
    try:
        document = fetcher.fetch_json(url, what=gettext("The issuer's DID document"))
    except fetcher.FetchRefused as error:
        raise DidError(str(error)) from None
    return read_document(did, document)


def read_document(did: str, document: object) -> Resolved:
    """The assertion keys of a DID document we fetched for ``did``. Raises DidError."""
    if not isinstance(document, dict):
        raise DidError(gettext("The issuer's DID document is not a JSON object."))
    if document.get("id") != did:
        raise DidError(
            gettext(
                "The DID document is for %(found)s, not for the issuer %(did)s.",
                found=repr(document.get("id"))[:120],
                did=did,
            )
        )
    methods = document.get("verificationMethod", [])
    assertion = document.get("assertionMethod", [])
    if not isinstance(methods, list) or not isinstance(assertion, list):
        raise DidError(gettext("The DID document's verificationMethod and assertionMethod must be lists."))
    if len(methods) + len(assertion) > MAX_METHODS:
        raise DidError(gettext("The DID document lists more than %(count)d keys.", count=MAX_METHODS))

    def absolute(method_id: object) -> str | None:
        if not isinstance(method_id, str):
            return None
        return did + method_id if method_id.startswith("#") else method_id

    found: dict[str, Ed25519PublicKey] = {}
    for method in methods + [m for m in assertion if isinstance(m, dict)]:
        if not isinstance(method, dict):
            raise DidError(gettext("Each verificationMethod of the DID document must be an object."))
        method_id = absolute(method.get("id"))
        if method_id is None or not method_id.startswith(did + "#") or method.get("controller") != did:
            continue  # another controller's key signs nothing for this issuer
        if method.get("type") not in KEY_TYPES:
            continue
        try:
            found[method_id] = keys.decode_public(method.get("publicKeyMultibase"))
        except (ValueError, TypeError):
            raise DidError(
                gettext("The DID document's key %(key)s is not an Ed25519 key.", key=method_id[:160])
            ) from None
    listed = {absolute(m if isinstance(m, str) else m.get("id")) for m in assertion}
    resolved = Resolved(did)
    for method_id, key in found.items():
        if method_id in listed:
            resolved.assertion_keys[method_id] = key
        else:
            resolved.other_methods.add(method_id)
    return resolved
