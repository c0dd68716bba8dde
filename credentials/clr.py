"""A learner's whole record as one 1EdTech CLR 2.0 ``ClrCredential``. Flush only; callers commit.

The record holds every valid course and program credential of the learner as the full signed credential anyone
can verify on its own (an Open Badges 3.0 ``OpenBadgeCredential``, the context's alias of
``AchievementCredential``), their achievements, and one ``isParentOf`` association from each program's achievement
to each course achievement it stacks; the whole is signed with the same suite (``eddsa-rdfc-2022``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import uuid
from datetime import datetime
from functools import lru_cache

import base58
from flask_babel import gettext
from pyld import jsonld
from pyld.canon import URDNA2015
from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from credentials import didauth, keys, openbadges, vc
from credentials import programs as program_certificates
from credentials.models import Certificate, CertificateStatus

CLR_V2 = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
CLR_CONTEXT_FILE = "clr-v2p0-2.0.1.json"


def record_certificates(user: User, now: datetime) -> list[Certificate]:
    """The learner's valid course and program certificates, oldest award first (revoked, suspended and expired
    ones are left out: the record says what the learner holds today)."""
    certificates = db.session.scalars(
        select(Certificate)
        .where(Certificate.user_id == user.id, Certificate.revoked_at.is_(None))
        .order_by(Certificate.awarded_at, Certificate.id)
    )
    return [c for c in certificates if c.status_at(now) == CertificateStatus.VALID]


@lru_cache(maxsize=1)
def loader():
    """The shipped contexts plus the CLR 2.0.1 context (shipped beside them); nothing is fetched."""
    clr_context = json.loads((vc.CONTEXTS_DIR / CLR_CONTEXT_FILE).read_text(encoding="utf-8"))
    base = didauth.loader()

    def load(url: str, options=None):
        if url == CLR_V2:
            return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(clr_context)}
        return base(url, options)

    return load


def build(user: User, issuer: openbadges.Issuer, *, now: datetime, holder: str | None = None) -> dict:
    """The unsigned ClrCredential of the learner's record; ``holder`` (a wallet's DID) becomes the subject's id.

    Signs (and keeps) each certificate's own credential when it has no current signed copy. Raises
    keys.KeyError_ when there is no signing key. Flush only.
    """
    certificates = record_certificates(user, now)
    credentials = [openbadges.signed_credential(c, issuer, now=now) for c in certificates]
    achievement_ids = {
        c.id: cred["credentialSubject"]["achievement"]["id"] for c, cred in zip(certificates, credentials, strict=True)
    }
    associations = []
    for certificate in certificates:
        if not certificate.is_program:
            continue
        for part in program_certificates.parts_of(certificate):
            if part.id in achievement_ids:  # a stacked course credential that is itself still valid
                associations.append(
                    {
                        "type": "Association",
                        "associationType": "isParentOf",
                        "sourceId": achievement_ids[certificate.id],
                        "targetId": achievement_ids[part.id],
                    }
                )
    salt = secrets.token_hex(16)
    subject: dict = {
        "type": ["ClrSubject"],
        "identifier": [
            {
                "type": "IdentityObject",
                "identityHash": "sha256$" + hashlib.sha256((user.email + salt).encode()).hexdigest(),
                "identityType": "emailAddress",
                "hashed": True,
                "salt": salt,
            }
        ],
        "achievement": [cred["credentialSubject"]["achievement"] for cred in credentials],
        "verifiableCredential": credentials,
        "association": associations,
    }
    if holder:
        subject = {"id": holder, **subject}
    return {
        "@context": [vc.VC_V2, CLR_V2, vc.OB_V3],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", "ClrCredential"],
        "name": gettext("Learning record of %(name)s", name=user.name),
        "description": gettext(
            "Every valid course and program credential %(name)s holds from %(issuer)s, each signed on its own.",
            name=user.name,
            issuer=issuer.name,
        ),
        "issuer": issuer.profile(),
        "validFrom": openbadges.iso(now),
        "credentialSubject": subject,
    }


def _canonize(document: dict, load) -> str:
    # vc.canonize caps the work for documents from outside; this one is ours, and embedding every credential
    # (each with its own proof graph) passes vc.py's blank-node cap by design. Same options otherwise.
    dataset = jsonld.to_rdf(
        document, {"documentLoader": load, "safe": True, "produceGeneralizedRdf": False, "base": None}
    )
    return URDNA2015().main(dataset, {"algorithm": "URDNA2015", "format": "application/n-quads"})


def sign(document: dict, issuer: openbadges.Issuer, *, now: datetime) -> dict:
    """eddsa-rdfc-2022 DataIntegrityProof, as vc.sign, over our own (large) record. Raises keys.KeyError_."""
    key = keys.active_key()
    keys.publish([key])
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": vc.CRYPTOSUITE,
        "created": openbadges.iso(now),
        "verificationMethod": f"{issuer.did}#{key.id}",
        "proofPurpose": "assertionMethod",
    }
    load = loader()
    proof_hash = hashlib.sha256(_canonize({**proof, "@context": document["@context"]}, load).encode()).digest()
    document_hash = hashlib.sha256(_canonize(document, load).encode()).digest()
    signature = key.private.sign(proof_hash + document_hash)
    return {**document, "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()}}


def signed_record(user: User, issuer: openbadges.Issuer, *, now: datetime, holder: str | None = None) -> dict:
    """The learner's signed ClrCredential. Raises keys.KeyError_. Flush only (each credential's signed copy)."""
    return sign(build(user, issuer, now=now, holder=holder), issuer, now=now)
