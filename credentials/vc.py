"""W3C Data Integrity proofs with the eddsa-rdfc-2022 cryptosuite, over bundled JSON-LD contexts only.

Canonicalization is pyld's URDNA2015 (RDFC-1.0). The document loader serves the contexts shipped in
``credentials/contexts`` and refuses every other URL: nothing is ever fetched from the network.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from pathlib import Path

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld import jsonld

CONTEXTS_DIR = Path(__file__).with_name("contexts")
VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
BUNDLED = {VC_V2: "credentials-v2.jsonld", OB_V3: "ob-v3p0-3.0.3.json"}
CRYPTOSUITE = "eddsa-rdfc-2022"


class ContextRefused(ValueError):
    """A document named a JSON-LD context we do not ship; it was not fetched."""


@lru_cache(maxsize=8)
def _context(filename: str) -> dict:
    return json.loads((CONTEXTS_DIR / filename).read_text(encoding="utf-8"))


def make_loader(extra: dict[str, dict] | None = None):
    """A pyld document loader over the bundled contexts (plus ``extra`` documents, e.g. in tests)."""
    extra = extra or {}

    def load(url: str, options=None) -> dict:
        if url in extra:
            document = extra[url]
        elif url in BUNDLED:
            document = _context(BUNDLED[url])
        else:
            raise ContextRefused(f"the JSON-LD context {url!r} is not one we ship; it was not fetched")
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(document)}

    return load


DEFAULT_LOADER = make_loader()


def canonize(document: dict, loader=None) -> str:
    """RDFC-1.0 (URDNA2015) N-Quads. Raises ContextRefused or pyld's JsonLdError."""
    try:
        return jsonld.normalize(
            document,
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": loader or DEFAULT_LOADER,
                "safe": True,
            },
        )
    except jsonld.JsonLdError as error:
        refused = _find_cause(error, ContextRefused)
        if refused is not None:
            raise refused from None
        raise


def _find_cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, kind):
            return error
        details = getattr(error, "details", None) or {}
        cause = details.get("cause") if isinstance(details, dict) else None
        error = cause or error.__cause__ or error.__context__
    return None


def _hash_data(document: dict, proof_config: dict, loader) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = {**proof_config, "@context": document.get("@context")}
    config.pop("proofValue", None)
    proof_hash = hashlib.sha256(canonize(config, loader).encode()).digest()
    doc_hash = hashlib.sha256(canonize(unsecured, loader).encode()).digest()
    return proof_hash + doc_hash


def sign(document: dict, key: Ed25519PrivateKey, *, verification_method: str, created: str, loader=None) -> dict:
    """Return a copy of ``document`` with an eddsa-rdfc-2022 DataIntegrityProof (assertionMethod)."""
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
    }
    signature = key.sign(_hash_data(document, proof, loader))
    return {
        **{k: v for k, v in document.items() if k != "proof"},
        "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()},
    }


class ProofError(ValueError):
    """The proof is missing, malformed, made with an unknown key, or does not match the document."""


def verify(document: dict, resolve_key, loader=None) -> str:
    """Check the document's single DataIntegrityProof; return the verification method used.

    ``resolve_key(verification_method) -> Ed25519PublicKey | None``. Raises ProofError with a precise
    message, or ContextRefused.
    """
    proof = document.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise ProofError("expected exactly one proof")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("the credential has no proof")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(f"unsupported proof: expected a DataIntegrityProof with cryptosuite {CRYPTOSUITE}")
    if proof.get("proofPurpose") != "assertionMethod":
        raise ProofError("the proof purpose is not assertionMethod")
    method = proof.get("verificationMethod")
    public_key: Ed25519PublicKey | None = resolve_key(method) if isinstance(method, str) else None
    if public_key is None:
        raise ProofError(f"the signing key {method!r} is not one of the issuer's published keys")
    value = proof.get("proofValue")
    try:
        if not isinstance(value, str) or not value.startswith("z"):
            raise ValueError
        signature = base58.b58decode(value[1:])
    except ValueError:
        raise ProofError("the proofValue is not a base58btc signature") from None
    try:
        public_key.verify(
            signature, _hash_data(document, {k: v for k, v in proof.items() if k != "proofValue"}, loader)
        )
    except InvalidSignature:
        raise ProofError("the signature does not match: the credential was changed after signing") from None
    return method
