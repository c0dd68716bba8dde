"""Open Badges 3.0 credentials and W3C Bitstring Status Lists for certificates. Flush only; callers commit."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
from datetime import UTC, datetime

from flask_babel import force_locale, gettext
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from core.extensions import db
from credentials import keys, vc
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificatePart, StatusList

LIST_SIZE = 131072  # 16 KiB of bits: the W3C minimum, so one list hides which credential is checked
LIST_FILL = 0.75  # start a new list when this share of slots is taken (random allocation stays fast)
STATUS_TTL_SECONDS = 300  # the list's ttl: how long verifiers (and our own HTTP caching) may keep a copy
FRAMEWORK_NAME = "AI Workforce Academy skills framework (America's AI Action Plan workforce goals)"
# OB 3.0 §8.2: an AchievementCredential names the 1EdTech JSON Schema it conforms to (a list, as in the spec's
# examples). Its type is defined only by OB 3.0's extensions context (vc.OB_EXTENSIONS), so every credential naming
# it carries that context too: without it jsonld.js in safe mode (Digital Bazaar's and the DCC's verifiers) refuses
# the undefined @type ("relative @type reference").
CREDENTIAL_SCHEMA = [
    {
        "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
        "type": "1EdTechJsonSchemaValidator2019",
    }
]


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Issuer:
    """The issuer as the credentials name it: did:web identity, web address, display name."""

    def __init__(self, base_url: str, name: str, email: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.email = email
        self.did = keys.did_for(self.base_url)

    def profile(self) -> dict:
        profile = {
            "id": self.did,
            "type": ["Profile"],
            "name": self.name,
            "url": self.base_url,
            "image": {"id": f"{self.base_url}/static/img/favicon.svg", "type": "Image"},
        }
        if self.email:
            profile["email"] = self.email
        return profile

    def credential_url(self, certificate: Certificate) -> str:
        return f"{self.base_url}/credentials/{format_public_id(certificate.public_id)}"

    def status_list_url(self, list_id: int) -> str:
        return f"{self.base_url}/credentials/status/{list_id}"


# ---- status lists ------------------------------------------------------------------------------
#
# Two lists per slot range: a revocation list (which owns the slots) and a suspension list mirroring it (same
# index). Everything below is generic over the list's purpose, read from its row.

PURPOSES = ("revocation", "suspension")


def allocate_status_slot(certificate: Certificate) -> None:
    """Give the certificate a unique random slot in the current revocation list (safe under concurrency); its
    suspension bit sits at the same index of the mirroring suspension list."""
    if certificate.status_list_index is not None:
        return
    if certificate.subject_salt is None:
        certificate.subject_salt = secrets.token_hex(16)
    for _ in range(50):
        list_id = _current_list_id()
        index = secrets.randbelow(LIST_SIZE)
        try:
            with db.session.begin_nested():
                certificate.status_list_id, certificate.status_list_index = list_id, index
                db.session.flush()
            return
        except IntegrityError:
            db.session.refresh(certificate)  # slot taken by a concurrent issuance: draw again
    raise RuntimeError("could not allocate a status list slot")


def draw_slot(*latest) -> tuple[int, int]:
    """(list id, index): a random slot of the current revocation list for a credential about to be written.
    ``latest``: the (id, used) values of LATEST_LIST_ID / LATEST_LIST_USED when the caller read them with its own
    statement (id None: no list yet); without them they are read here. The caller's INSERT decides a slot drawn
    twice (unique (list, index)). Flush only."""
    return _current_list_id(latest or _UNREAD), secrets.randbelow(LIST_SIZE)


# the latest revocation list and how many slots it has given out, in one statement (its id only: the row also
# holds the signed list, tens of kilobytes)
_LATEST_LIST = (
    select(
        StatusList.id,
        select(func.count())
        .where(Certificate.status_list_id == StatusList.id)
        .correlate(StatusList)
        .scalar_subquery()
        .label("used"),
    )
    .where(StatusList.purpose == "revocation")
    .order_by(StatusList.id.desc())
    .limit(1)
)
# the same two values as scalar subqueries, for a caller that reads them with something else in one statement
LATEST_LIST_ID = (
    select(StatusList.id)
    .where(StatusList.purpose == "revocation")
    .order_by(StatusList.id.desc())
    .limit(1)
    .scalar_subquery()
)
LATEST_LIST_USED = select(func.count()).where(Certificate.status_list_id == LATEST_LIST_ID).scalar_subquery()
_UNREAD = object()


def _current_list_id(latest=_UNREAD) -> int:
    if latest is _UNREAD:
        latest = db.session.execute(_LATEST_LIST).first()
    if latest is not None and latest[0] is not None and latest[1] < LIST_SIZE * LIST_FILL:
        return latest[0]
    try:
        with db.session.begin_nested():
            new = StatusList(size=LIST_SIZE, purpose="revocation")
            db.session.add(new)
            db.session.flush()
        return new.id
    except IntegrityError:  # pragma: no cover - ids come from a sequence
        return _current_list_id()


def suspension_list_id(revocation_list_id: int) -> int:
    """The suspension list mirroring a revocation list, created on first need. Two app servers creating it at
    once: the unique constraint on ``revocation_list_id`` keeps one, the other reads it. Flush only."""
    wanted = select(StatusList.id).where(StatusList.revocation_list_id == revocation_list_id)
    found = db.session.scalar(wanted)
    if found is not None:
        return found
    try:
        with db.session.begin_nested():
            new = StatusList(size=LIST_SIZE, purpose="suspension", revocation_list_id=revocation_list_id)
            db.session.add(new)
            db.session.flush()
        return new.id
    except IntegrityError:
        return db.session.scalar(wanted)


def list_ids_of(certificate: Certificate) -> list[int]:
    """The ids of the lists holding the certificate's bits (revocation, then suspension if it exists yet)."""
    if certificate.status_list_id is None:
        return []
    mirror = db.session.scalar(select(StatusList.id).where(StatusList.revocation_list_id == certificate.status_list_id))
    return [certificate.status_list_id] + ([mirror] if mirror is not None else [])


def _set_conditions(status_list: StatusList, now: datetime) -> list:
    """Which certificates have their bit set in this list, as SQL conditions (the same rules as
    ``Certificate.status_at``: revoked wins over suspended; a suspension past its end no longer counts)."""
    if status_list.purpose == "suspension":
        return [
            Certificate.status_list_id == status_list.revocation_list_id,
            Certificate.revoked_at.is_(None),
            Certificate.suspended_at.is_not(None),
            or_(Certificate.suspended_until.is_(None), Certificate.suspended_until > now),
        ]
    return [Certificate.status_list_id == status_list.id, Certificate.revoked_at.is_not(None)]


def list_bits(status_list: StatusList, now: datetime) -> bytes:
    """The list's bits at ``now`` (bit 0 is the most significant bit of byte 0)."""
    bits = bytearray(LIST_SIZE // 8)
    for index in db.session.scalars(select(Certificate.status_list_index).where(*_set_conditions(status_list, now))):
        bits[index // 8] |= 0x80 >> (index % 8)
    return bytes(bits)


def next_change(status_list: StatusList, now: datetime) -> datetime | None:
    """When the list's bits next change by themselves: the earliest end of a suspension still running in it
    (None for a revocation list, or when no running suspension has an end). Caches of the list expire then."""
    if status_list.purpose != "suspension":
        return None
    return db.session.scalar(
        select(func.min(Certificate.suspended_until)).where(
            *_set_conditions(status_list, now), Certificate.suspended_until.is_not(None)
        )
    )


def revoked_bits(list_id: int) -> bytes:
    """The bits of a revocation list, set for revoked certificates."""
    status_list = db.session.get(StatusList, list_id)
    if status_list is None or status_list.purpose != "revocation":
        return bytes(LIST_SIZE // 8)
    return list_bits(status_list, datetime.now(UTC))


def encoded_bits(list_id: int, now: datetime | None = None) -> str:
    """The list's bits at ``now`` (default: this moment): GZIP + base64url (no padding) multibase, "u" prefix."""
    status_list = db.session.get(StatusList, list_id)
    if status_list is None:
        raise LookupError(list_id)
    return encode_bits(list_bits(status_list, now or datetime.now(UTC)))


def encode_bits(bits: bytes) -> str:
    packed = gzip.compress(bits, compresslevel=9, mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_bits(encoded: str) -> bytes:
    if not encoded.startswith("u"):
        raise ValueError("the encoded list is not base64url multibase (u...)")
    data = encoded[1:]
    return gzip.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))


def bit_is_set(bits: bytes, index: int) -> bool:
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def signed_status_list(list_id: int, issuer: Issuer, *, now: datetime) -> dict:
    """The signed status list credential (its purpose from its row), re-signed whenever its bits at ``now``
    changed: a revocation, a suspension, a lift, or a suspension reaching its end. Raises LookupError for an
    unknown list, keys.KeyError_ when no key can sign. Flush only."""
    status_list = db.session.get(StatusList, list_id)
    if status_list is None:
        raise LookupError(list_id)
    encoded = encode_bits(list_bits(status_list, now))
    # the ttl is part of what was signed: changing it re-signs the list
    digest = hashlib.sha256(f"{encoded}|ttl={STATUS_TTL_SECONDS}".encode()).hexdigest()
    if status_list.bits_sha256 == digest and status_list.signed_credential:
        return json.loads(status_list.signed_credential)
    url = issuer.status_list_url(list_id)
    document = {
        "@context": [vc.VC_V2],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer.did,
        "validFrom": iso(now),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": status_list.purpose,
            "encodedList": encoded,
            "ttl": STATUS_TTL_SECONDS * 1000,  # milliseconds
        },
    }
    signed = _sign(document, issuer, now)
    status_list.bits_sha256, status_list.signed_credential, status_list.updated_at = digest, json.dumps(signed), now
    db.session.flush()
    return signed


def status_entries(certificate: Certificate, issuer: Issuer) -> list[dict]:
    """The credential's two BitstringStatusListEntry objects: revocation, then suspension (same index)."""
    allocate_status_slot(certificate)
    index = certificate.status_list_index
    entries = []
    for purpose, list_id in (
        ("revocation", certificate.status_list_id),
        ("suspension", suspension_list_id(certificate.status_list_id)),
    ):
        list_url = issuer.status_list_url(list_id)
        entries.append(
            {
                "id": f"{list_url}#{index}",
                "type": "BitstringStatusListEntry",
                "statusPurpose": purpose,
                "statusListIndex": str(index),
                "statusListCredential": list_url,
            }
        )
    return entries


def _sign(document: dict, issuer: Issuer, now: datetime) -> dict:
    key = keys.active_key()
    keys.publish([key])  # its public half outlives the key file
    return vc.sign(document, key.private, verification_method=f"{issuer.did}#{key.id}", created=iso(now))


# ---- credentials --------------------------------------------------------------------------------


def build_credential(certificate: Certificate, issuer: Issuer) -> dict:
    """The unsigned OpenBadgeCredential for a certificate snapshot (never the plain email)."""
    allocate_status_slot(certificate)
    email = db.session.scalar(select(User.email).where(User.id == certificate.user_id))
    achievement_id = f"{issuer.base_url}/courses/{certificate.course_slug}#achievement"
    if certificate.is_program:
        achievement_id = f"{issuer.base_url}/programs/{certificate.course_slug}#achievement"
    score_id = f"{achievement_id}-final-score"
    text = _achievement_text(certificate)
    url = issuer.credential_url(certificate)
    credential = {
        "@context": [vc.VC_V2, vc.OB_V3, vc.OB_EXTENSIONS],
        "id": url,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": certificate.course_title,
        "issuer": issuer.profile(),
        "validFrom": iso(certificate.issued_at),
        "awardedDate": iso(certificate.awarded_at),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "name": certificate.holder_name,
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityHash": "sha256$" + hashlib.sha256((email + certificate.subject_salt).encode()).hexdigest(),
                    "identityType": "emailAddress",
                    "hashed": True,
                    "salt": certificate.subject_salt,
                }
            ],
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "achievementType": "Certificate",
                "name": certificate.course_title,
                "inLanguage": certificate.language,
                "description": text["description"],
                "criteria": {"narrative": text["criteria"]},
                "alignment": [
                    {
                        "type": ["Alignment"],
                        "targetName": skill["name"],
                        "targetUrl": f"{issuer.base_url}/skills/{skill['id']}",
                        "targetCode": skill["id"],
                        "targetFramework": FRAMEWORK_NAME,
                    }
                    for skill in certificate.skills
                ],
                "resultDescription": [
                    {
                        "id": score_id,
                        "type": ["ResultDescription"],
                        "name": text["score"],
                        "resultType": "Percent",
                        "valueMin": "0",
                        "valueMax": "100",
                    }
                ],
            },
            "result": [{"type": ["Result"], "resultDescription": score_id, "value": str(certificate.score)}],
        },
        # revocation and suspension (VC 2.0 allows several entries; credentials signed before had revocation only)
        "credentialStatus": status_entries(certificate, issuer),
        "credentialSchema": [dict(schema) for schema in CREDENTIAL_SCHEMA],
    }
    if certificate.expires_at is not None:
        credential["validUntil"] = iso(certificate.expires_at)
    if certificate.is_program:
        _describe_program(credential["credentialSubject"]["achievement"], certificate, issuer)
    return credential


def _achievement_text(certificate: Certificate) -> dict[str, str]:
    """The achievement's description, criteria and score name in the language of the course (its ``inLanguage``),
    whoever is viewing when the credential is first signed: a Spanish course's credential reads in Spanish."""
    with force_locale(certificate.language):
        return {
            "description": gettext(
                "Completion of the course “%(title)s” (version %(version)s) at %(issuer)s.",
                title=certificate.course_title,
                version=certificate.course_version,
                issuer=certificate.issuer_name,
            ),
            "criteria": gettext(
                "Complete every lesson of the course and pass every module quiz at or above its pass mark. "
                "The final score is the mean of the best score of each quiz."
            ),
            "score": gettext("Final score"),
        }


def _describe_program(achievement: dict, certificate: Certificate, issuer: Issuer) -> None:
    """A program's achievement names each course achievement it stacks: in its criteria, and as an alignment
    to that achievement (targetType ceterms:Credential) next to the skill alignments."""
    parts = list(
        db.session.scalars(
            select(Certificate)
            .join(CertificatePart, CertificatePart.part_id == Certificate.id)
            .where(CertificatePart.certificate_id == certificate.id)
            .order_by(CertificatePart.position)
        )
    )
    names = "; ".join(f"“{p.course_title}” ({issuer.base_url}/courses/{p.course_slug}#achievement)" for p in parts)
    achievement["achievementType"] = "Certificate"
    achievement["description"] = (
        f"Completion of the program “{certificate.course_title}” (version {certificate.course_version}) at "
        f"{certificate.issuer_name}: every one of its courses, each earned as its own course credential."
    )
    achievement["criteria"] = {
        "narrative": f"Earn the course credential of every course in the program, in any order: {names}. "
        "The final score is the mean of those courses' final scores."
    }
    achievement["alignment"] = [
        {
            "type": ["Alignment"],
            "targetName": part.course_title,
            "targetUrl": f"{issuer.base_url}/courses/{part.course_slug}#achievement",
            "targetDescription": "Course achievement stacked into this program (course credential "
            f"{format_public_id(part.public_id)}).",
            "targetType": "ceterms:Credential",
        }
        for part in parts
    ] + achievement["alignment"]


def signed_credential(certificate: Certificate, issuer: Issuer, *, now: datetime) -> dict:
    """The certificate's signed credential, signed once per revision (and once more if the stored copy predates
    the suspension list). Raises keys.KeyError_. Flush only."""
    if certificate.signed_credential and certificate.signed_revision == certificate.revision:
        stored = json.loads(certificate.signed_credential)
        if isinstance(stored.get("credentialStatus"), list):
            return stored
        # signed before suspension existed (one status entry): signed again with both. Copies handed out before
        # still verify; this one lets wallets and verifiers see a suspension too.
    signed = _sign(build_credential(certificate, issuer), issuer, now)
    certificate.signed_credential, certificate.signed_revision = json.dumps(signed), certificate.revision
    db.session.flush()
    return signed
