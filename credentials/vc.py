"""W3C Data Integrity proofs with the eddsa-rdfc-2022 cryptosuite, over bundled JSON-LD contexts only.

Canonicalization is pyld's URDNA2015 (RDFC-1.0). The document loader serves the contexts shipped in
``credentials/contexts`` and refuses every other URL: nothing is ever fetched from the network.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask_babel import gettext as _
from pyld import jsonld
from pyld.canon import URDNA2015

CONTEXTS_DIR = Path(__file__).with_name("contexts")
VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
# OB 3.0's extensions context: defines the credentialSchema type 1EdTechJsonSchemaValidator2019 (as in 1EdTech's
# own complete examples), which neither VC 2.0 nor OB 3.0.3 defines
OB_EXTENSIONS = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"
BUNDLED = {VC_V2: "credentials-v2.jsonld", OB_V3: "ob-v3p0-3.0.3.json", OB_EXTENSIONS: "ob-v3p0-extensions.json"}
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
            raise ContextRefused(_("the JSON-LD context %(url)s is not one we ship; it was not fetched", url=repr(url)))
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(document)}

    return load


DEFAULT_LOADER = make_loader()


# RDFC-1.0 is exponential in the worst case ("poison" graphs of blank nodes that all look alike). Our own
# credentials have a handful of tree-shaped blank nodes and never need the hash-N-degree step, so these limits
# are generous for them and stop anything else long before it costs ~50 ms of CPU.
MAX_BLANK_NODES = 40
MAX_N_DEGREE_CALLS = 64
MAX_ALIKE_RELATED = 4  # a group of 4 look-alike related blank nodes is 24 permutations
CPU_BUDGET_SECONDS = 0.05


class CanonicalizationRefused(ValueError):
    """The document would cost more canonicalization work than any credential we issue or accept."""


@dataclass(frozen=True)
class Budget:
    """How much canonicalization work one document may cost (the defaults: any single credential)."""

    blank_nodes: int = MAX_BLANK_NODES
    cpu_seconds: float = CPU_BUDGET_SECONDS
    n_degree_calls: int = MAX_N_DEGREE_CALLS


DEFAULT_BUDGET = Budget()


class _BoundedURDNA2015(URDNA2015):
    """pyld's URDNA2015 with a hard budget on blank nodes, hash-N-degree calls, permutations and CPU time."""

    def __init__(self, budget: Budget = DEFAULT_BUDGET) -> None:
        super().__init__()
        self.budget = budget
        self.started = time.thread_time()
        self.n_degree_calls = 0

    def _check_time(self) -> None:
        if time.thread_time() - self.started > self.budget.cpu_seconds:
            raise CanonicalizationRefused(
                _("canonicalizing this document takes too long; it is not a credential we issue")
            )

    def main(self, dataset, options):
        blank = {
            component["value"]
            for triples in dataset.values()
            for quad in triples
            for component in quad.values()
            if isinstance(component, dict) and component.get("type") == "blank node"
        }
        blank |= {name for name in dataset if name.startswith("_:")}
        if len(blank) > self.budget.blank_nodes:
            raise CanonicalizationRefused(
                _(
                    "the document has %(count)d blank nodes; credentials we accept have at most %(limit)d",
                    count=len(blank),
                    limit=self.budget.blank_nodes,
                )
            )
        self._check_time()
        return super().main(dataset, options)

    def hash_n_degree_quads(self, id_, issuer):
        self.n_degree_calls += 1
        if self.n_degree_calls > self.budget.n_degree_calls:
            raise CanonicalizationRefused(
                _("the document's blank nodes are too alike to canonicalize cheaply; it is not a credential we issue")
            )
        self._check_time()
        return super().hash_n_degree_quads(id_, issuer)

    def create_hash_to_related(self, id_, issuer):
        related = super().create_hash_to_related(id_, issuer)
        if any(len(nodes) > MAX_ALIKE_RELATED for nodes in related.values()):
            raise CanonicalizationRefused(
                _("the document links too many look-alike blank nodes; it is not a credential we issue")
            )
        return related


def canonize(document: dict, loader=None, budget: Budget = DEFAULT_BUDGET) -> str:
    """RDFC-1.0 (URDNA2015) N-Quads under a hard work budget.

    Raises ContextRefused, CanonicalizationRefused (too much work) or pyld's JsonLdError.
    """
    try:  # expansion is bounded by the size and shape checks in front of it; the budget is for the hashing
        dataset = jsonld.to_rdf(
            document,
            # base None: a relative IRI (the OB 3.0 credentialSchema type "1EdTechJsonSchemaValidator2019" is
            # defined by no context we ship) stays relative and is left out of the quads, as jsonld.js does;
            # pyld's default would resolve it against http://example.org/base/ and sign a quad no one else sees
            {"documentLoader": loader or DEFAULT_LOADER, "safe": True, "produceGeneralizedRdf": False, "base": None},
        )
    except jsonld.JsonLdError as error:
        refused = _find_cause(error, ContextRefused)
        if refused is not None:
            raise refused from None
        raise
    return _BoundedURDNA2015(budget).main(dataset, {"algorithm": "URDNA2015", "format": "application/n-quads"})


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


def _hash_data(document: dict, proof_config: dict, loader, budget: Budget = DEFAULT_BUDGET) -> tuple[bytes, str]:
    """(proof hash + document hash, the document's canonical N-Quads)."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = {**proof_config, "@context": document.get("@context")}
    config.pop("proofValue", None)
    proof_hash = hashlib.sha256(canonize(config, loader).encode()).digest()
    nquads = canonize(unsecured, loader, budget)
    return proof_hash + hashlib.sha256(nquads.encode()).digest(), nquads


def sign(document: dict, key: Ed25519PrivateKey, *, verification_method: str, created: str, loader=None) -> dict:
    """Return a copy of ``document`` with an eddsa-rdfc-2022 DataIntegrityProof (assertionMethod)."""
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
    }
    signature = key.sign(_hash_data(document, proof, loader)[0])
    return {
        **{k: v for k, v in document.items() if k != "proof"},
        "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()},
    }


class ProofError(ValueError):
    """The proof is missing, malformed, made with an unknown key, or does not match the document."""


def verify(document: dict, resolve_key, loader=None) -> str:
    """Check the document's single DataIntegrityProof; return the verification method used.

    ``resolve_key(verification_method) -> Ed25519PublicKey | None``. Raises ProofError with a precise
    message, ContextRefused or CanonicalizationRefused.
    """
    return verify_signed(document, resolve_key, loader)[0]


ED25519_2020 = "Ed25519Signature2020"


def verify_signed(
    document: dict, resolve_key, loader=None, *, accept_2020: bool = False, budget: Budget = DEFAULT_BUDGET
) -> tuple[str, str]:
    """Like verify, but also return the canonical N-Quads the signature covers: (method, nquads).

    Read facts from those quads, never from the JSON keys: JSON-LD lets the same quads be written
    with other keys (a full IRI instead of ``validUntil``), and the proof cannot tell them apart.
    ``accept_2020``: an ``Ed25519Signature2020`` proof is checked too (other issuers' credentials; it hashes
    the same two canonical documents and signs them with Ed25519, as eddsa-rdfc-2022 does).
    """
    proof = document.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise ProofError("expected exactly one proof")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("the credential has no proof")
    is_2020 = accept_2020 and proof.get("type") == ED25519_2020 and "cryptosuite" not in proof
    if not is_2020 and (proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE):
        if accept_2020:
            raise ProofError(
                _(
                    "unsupported proof: we check a DataIntegrityProof with cryptosuite %(suite)s, or "
                    "Ed25519Signature2020",
                    suite=CRYPTOSUITE,
                )
            )
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
    if len(signature) != 64:
        raise ProofError(
            _("the proofValue is malformed: an Ed25519 signature is 64 bytes, this one has %(n)d", n=len(signature))
        )
    hashed, nquads = _hash_data(document, {k: v for k, v in proof.items() if k != "proofValue"}, loader, budget)
    try:
        public_key.verify(signature, hashed)
    except InvalidSignature:
        # the same failure whether the content was altered or another key made the signature: say both
        raise ProofError(
            _(
                "the signature does not verify with the published key %(method)s: either the credential was "
                "altered, or it was signed with a different key",
                method=method,
            )
        ) from None
    return method, nquads
