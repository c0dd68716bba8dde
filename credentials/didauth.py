"""DIDAuth presentations from wallets: check that a holder controls a did:key and answers our challenge.

A wallet (the DCC's Learner Credential Wallet, or any VC-API client) proves who it is with an empty Verifiable
Presentation whose ``holder`` is its ``did:key`` and whose proof (purpose ``authentication``) carries our challenge
and, in the VC-API flow, our domain. We accept the two suites such wallets use: ``Ed25519Signature2020`` (the
Learner Credential Wallet today) and a ``DataIntegrityProof`` with ``eddsa-rdfc-2022``. Both hash the canonical
proof options, then the canonical presentation, and sign the two hashes with Ed25519, so one check serves both.

Pure functions: no database, no network (a did:key carries its public key; contexts are the shipped copies).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from functools import lru_cache

import base58
from cryptography.exceptions import InvalidSignature
from flask_babel import gettext as _
from pyld import jsonld

from credentials import keys, vc

VC_V1 = "https://www.w3.org/2018/credentials/v1"
ED25519_2020 = "https://w3id.org/security/suites/ed25519-2020/v1"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
# contexts a wallet's presentation may name, beyond the VC 2.0 and Open Badges contexts vc.py ships
WALLET_CONTEXTS = {
    VC_V1: "credentials-v1.jsonld",
    ED25519_2020: "ed25519-signature-2020-v1.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
}
SUITES = ("Ed25519Signature2020", "eddsa-rdfc-2022")
MAX_FIELD = 512  # holder DIDs, verification methods, challenges and domains are far shorter


class PresentationRefused(ValueError):
    """The presentation does not prove control of the holder's DID for this challenge; the message says why."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Authenticated:
    holder: str  # the holder's did:key
    suite: str  # one of SUITES


@lru_cache(maxsize=1)
def loader():
    """The shipped contexts (VC 1.1 and 2.0, Ed25519Signature2020, Data Integrity v2, Open Badges); nothing else."""
    extra = {
        url: json.loads((vc.CONTEXTS_DIR / filename).read_text(encoding="utf-8"))
        for url, filename in WALLET_CONTEXTS.items()
    }
    return vc.make_loader(extra)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
        raise PresentationRefused(
            _(
                "the presentation's %(field)s must be a string of at most %(limit)d characters",
                field=what,
                limit=MAX_FIELD,
            )
        )
    return value


def did_key_public(did: str):
    """The Ed25519 public key a ``did:key:z6Mk…`` names. Raises PresentationRefused."""
    if not did.startswith("did:key:z"):
        raise PresentationRefused(_("the holder must be a did:key (the wallet's own key); got %(did)s", did=did[:80]))
    try:
        return keys.decode_public(did.removeprefix("did:key:"))
    except ValueError:
        raise PresentationRefused(_("the holder's did:key does not name an Ed25519 key")) from None


def check(presentation: object, *, challenge: str, domain: str, domain_required: bool) -> Authenticated:
    """Check a DIDAuth presentation for our ``challenge`` (and ``domain``); return the holder and the suite.

    Raises PresentationRefused (status 400 for a malformed presentation, 403 when it does not authenticate: another
    challenge, another domain, a key that is not the holder's, a signature that does not verify).
    """
    if not isinstance(presentation, dict):
        raise PresentationRefused(_("the presentation must be a JSON object"))
    context = presentation.get("@context")
    first = context[0] if isinstance(context, list) and context else context
    if first not in (VC_V1, vc.VC_V2):
        raise PresentationRefused(
            _("the presentation's first @context must be %(v1)s or %(v2)s", v1=VC_V1, v2=vc.VC_V2)
        )
    kinds = presentation.get("type")
    if "VerifiablePresentation" not in (kinds if isinstance(kinds, list) else [kinds]):
        raise PresentationRefused(_("the body is not a VerifiablePresentation"))
    if presentation.get("verifiableCredential"):
        raise PresentationRefused(_("a DIDAuth presentation carries no credentials; send an empty presentation"))
    holder = _text(presentation.get("holder"), "holder")
    public_key = did_key_public(holder)

    proof = presentation.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if not isinstance(proof, dict):
        raise PresentationRefused(_("the presentation must carry exactly one proof"))
    suite = proof.get("type")
    if suite == "DataIntegrityProof":
        suite = proof.get("cryptosuite")
    if suite not in SUITES:
        raise PresentationRefused(
            _("unsupported proof: we accept Ed25519Signature2020 and DataIntegrityProof with eddsa-rdfc-2022")
        )
    if proof.get("proofPurpose") != "authentication":
        raise PresentationRefused(_("the proof's purpose must be authentication"))

    answered = _text(proof.get("challenge"), "challenge")
    if not hmac.compare_digest(answered.encode(), challenge.encode()):
        raise PresentationRefused(_("the presentation answers another challenge than this exchange's"), status=403)
    if ("domain" in proof or domain_required) and proof.get("domain") != domain:
        raise PresentationRefused(
            _("the presentation was made for another domain: expected %(domain)s", domain=domain), status=403
        )

    method = _text(proof.get("verificationMethod"), "verificationMethod")
    controller, _hash, fragment = method.partition("#")
    if controller != holder:
        raise PresentationRefused(
            _("the presentation is signed by a key that is not the holder's: %(method)s", method=method[:120]),
            status=403,
        )
    if fragment != holder.removeprefix("did:key:"):
        raise PresentationRefused(_("a did:key's verification method is the DID followed by #<its own key>"))

    value = proof.get("proofValue")
    try:
        if not isinstance(value, str) or not value.startswith("z") or len(value) > 200:
            raise ValueError
        signature = base58.b58decode(value[1:])
    except ValueError:
        raise PresentationRefused(_("the proofValue is not a base58btc signature")) from None
    if len(signature) != 64:
        raise PresentationRefused(
            _("the proofValue is malformed: an Ed25519 signature is 64 bytes, this one has %(n)d", n=len(signature))
        )
    try:
        hashed, _nquads = vc._hash_data(presentation, {k: v for k, v in proof.items() if k != "proofValue"}, loader())
    except vc.ContextRefused as error:
        raise PresentationRefused(str(error)) from None
    except vc.CanonicalizationRefused as error:
        raise PresentationRefused(str(error)) from None
    except (jsonld.JsonLdError, TypeError, ValueError, KeyError) as error:
        raise PresentationRefused(
            _("the presentation is not valid JSON-LD: %(error)s", error=str(error).splitlines()[0][:200])
        ) from None
    try:
        public_key.verify(signature, hashed)
    except InvalidSignature:
        raise PresentationRefused(
            _(
                "the presentation's signature does not verify with the holder's key: it was altered or signed "
                "by another key"
            ),
            status=403,
        ) from None
    return Authenticated(holder=holder, suite=suite)
