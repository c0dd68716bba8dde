"""Verify an Open Badges credential — JSON, a certificate PDF carrying one, or a baked SVG badge.

Checks run in order and each is reported: structure, proof (against the issuer's published keys),
status (the Bitstring Status List), validity window. Nothing is fetched from the network: keys and
status lists come from callers (our database online, files offline).
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask_babel import gettext
from pyld.jsonld import JsonLdError

from credentials import openbadges, shape, vc

MAX_BYTES = 2 * 1024 * 1024
MAX_JSON_BYTES = 24 * 1024  # a PDF's attachment: ours are ~3 KB (programs ~10 KB)
# one credential as JSON or baked in a badge: another issuer's may carry its image as a data: URI
MAX_CREDENTIAL_BYTES = 128 * 1024
# a learning record (CLR 2.0, /certificates/record.json): every credential of a learner in full, ~6 KB each
MAX_RECORD_BYTES = 1024 * 1024
SVG_NAMESPACE = "https://purl.imsglobal.org/ob/v3p0"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEYWORD = b"openbadgecredential"  # OB 3.0 baking: the iTXt chunk's keyword


class SubmissionError(ValueError):
    """The upload is not something we can verify; the message says exactly why."""


class StatusUnavailable(Exception):
    """Raised by a ``status_bits`` lookup that cannot give the bits; the message says what failed (the status
    check then fails with it, and the verdict is not "revoked")."""


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not checked
    message: str
    verdict: str | None = None  # the verdict this failure gives, when not the check's usual one


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    credential: dict | None = None
    facts: SignedFacts | None = None  # set once the proof holds: what the signature covers
    issuer_name: str | None = None
    nquads: str | None = None  # the canonical quads the proof covers (once it holds)
    ours: bool = True  # issued by this site (False: another issuer's credential, shown as "not us")
    issuer_did: str | None = None  # the issuer the credential names (another issuer's, when not ours)
    display: dict | None = None  # the Open Badges displayer fields, read from the signed data (displayer.py)
    parts: list[Report] = field(default_factory=list)  # a learning record's (CLR) credentials, each checked

    @property
    def verified(self) -> bool:
        return (
            bool(self.checks)
            and all(c.ok is not False and c.verdict != "unchecked" for c in self.checks)
            and self.checks[1].ok is True
        )

    @property
    def verdict(self) -> str:
        failed = next((c for c in self.checks if c.ok is False), None)
        if failed is None:
            # "cannot be checked" (an issuer DID method or a status list we could not check) is never "valid"
            return "unchecked" if any(c.verdict == "unchecked" for c in self.checks) else "valid"
        return failed.verdict or {"validity": "expired"}.get(failed.name, "invalid")

    def summary(self) -> dict:
        """The verdict, the checks and, once the proof holds, the signed facts (never unsigned JSON keys)."""
        facts = self.facts
        summary = {
            "verified": self.verified,
            "verdict": self.verdict,
            "checks": [{"check": c.name, "ok": c.ok, "message": c.message} for c in self.checks],
            "issued_by_us": self.ours,
            "issuer_did": self.issuer_did,
            "credential": None
            if facts is None
            else {
                "id": facts.id,
                "name": facts.name,
                "holder_name": facts.holder_name,
                # another issuer's name is only what it claims: the DID is what was checked
                "issuer": self.issuer_name or facts.issuer if self.ours else facts.issuer,
                "validFrom": facts.valid_from,
                "validUntil": facts.valid_until,
                **(self.display or {}),
            },
        }
        if self.parts:
            summary["credentials"] = [part.summary() for part in self.parts]
        return summary


# ---- reading submissions ---------------------------------------------------------------------------


def read_submission(data: bytes) -> dict:
    """The credential inside JSON, a certificate PDF or a baked SVG. Raises SubmissionError."""
    if len(data) > MAX_BYTES:
        raise SubmissionError(gettext("The file is larger than %(size)d MB.", size=MAX_BYTES // (1024 * 1024)))
    if data.startswith(PNG_SIGNATURE):
        return _from_png(data)
    head = data.lstrip()[:5]
    if head.startswith(b"%PDF"):
        return _from_pdf(data)
    if head.startswith(b"<"):
        return _from_svg(data)
    document = parse_json(data, limit=MAX_RECORD_BYTES)
    if len(data) > MAX_CREDENTIAL_BYTES and not is_record(document):
        raise SubmissionError(
            gettext(
                "The credential JSON is larger than %(size)d KB; only a learning record (CLR) may be larger.",
                size=MAX_CREDENTIAL_BYTES // 1024,
            )
        )
    return document


def is_record(document: dict) -> bool:
    """A CLR 2.0 learning record (ClrCredential) rather than a single credential."""
    types = document.get("type")
    return isinstance(types, list) and "ClrCredential" in types


def parse_json(data: bytes, *, limit: int = MAX_JSON_BYTES) -> dict:
    if len(data) > limit:
        if limit == MAX_JSON_BYTES:
            message = gettext("The credential JSON is larger than %(size)d KB; ours are a few KB.", size=limit // 1024)
        else:
            message = gettext("The file is larger than %(size)d KB.", size=limit // 1024)
        raise SubmissionError(message)
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SubmissionError(gettext("The file is neither UTF-8 JSON, a PDF nor an SVG badge.")) from None
    except json.JSONDecodeError as error:
        raise SubmissionError(
            gettext(
                "The credential is not valid JSON (line %(line)d, column %(column)d: %(detail)s).",
                line=error.lineno,
                column=error.colno,
                detail=error.msg,
            )
        ) from None
    except RecursionError:
        raise SubmissionError(gettext("The credential JSON is nested too deeply.")) from None
    except ValueError:  # e.g. an integer of thousands of digits (Python's int-conversion limit)
        raise SubmissionError(gettext("The credential JSON holds a number too long to read; ours hold none.")) from None
    if not isinstance(document, dict):
        raise SubmissionError(gettext("The credential must be a JSON object."))
    return document


MAX_ATTACHMENTS = 8


def _embedded_files(reader) -> list[tuple[str, object]]:
    """(name, file stream) of each embedded file, walking the name tree without decoding any stream."""
    from pypdf.generic import ArrayObject, DictionaryObject

    names = reader.trailer["/Root"].get("/Names")
    tree = names.get_object().get("/EmbeddedFiles") if isinstance(names, DictionaryObject) else None
    found: list[tuple[str, object]] = []
    pending = [(tree.get_object(), 0)] if tree is not None else []
    while pending:
        node, depth = pending.pop()
        if not isinstance(node, DictionaryObject) or depth > 4:
            raise SubmissionError(gettext("The PDF's list of attachments is malformed."))
        kids = node.get("/Kids")
        if isinstance(kids, ArrayObject):
            pending += [(kid.get_object(), depth + 1) for kid in kids[:MAX_ATTACHMENTS]]
        pairs = node.get("/Names")
        pairs = pairs.get_object() if pairs is not None else []
        for index in range(0, len(pairs) - 1, 2):
            spec = pairs[index + 1].get_object()
            stream = spec.get("/EF", {}).get("/F") if isinstance(spec, DictionaryObject) else None
            found.append((str(pairs[index].get_object()), stream.get_object() if stream is not None else None))
        if len(found) > MAX_ATTACHMENTS:
            raise SubmissionError(gettext("This PDF carries more than %(count)d attachments.", count=MAX_ATTACHMENTS))
    return found


def _bounded_content(stream) -> bytes:
    """An attachment's bytes, inflating at most MAX_JSON_BYTES + 1 of them: a Flate bomb stops there."""
    import zlib

    from pypdf.generic import ArrayObject

    if stream is None:
        raise SubmissionError(gettext("The PDF's credential attachment has no content."))
    filters = stream.get("/Filter")
    filters = [str(f) for f in filters] if isinstance(filters, ArrayObject) else ([str(filters)] if filters else [])
    raw = stream._data  # the encoded bytes as stored; never decoded by pypdf
    if filters == []:
        return raw[: MAX_JSON_BYTES + 1]
    if filters != ["/FlateDecode"] or stream.get("/DecodeParms"):
        raise SubmissionError(
            gettext("The PDF's credential attachment is encoded in a way certificates from this site never use.")
        )
    try:
        inflater = zlib.decompressobj()
        return inflater.decompress(raw, MAX_JSON_BYTES + 1)
    except zlib.error:
        raise SubmissionError(gettext("The PDF's credential attachment is corrupt (bad Flate data).")) from None


def _from_pdf(data: bytes) -> dict:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        found = [(name, stream) for name, stream in _embedded_files(reader) if name.lower().endswith(".json")]
        if len(found) == 1:
            content = _bounded_content(found[0][1])
    except SubmissionError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as error:
        raise SubmissionError(
            gettext("The PDF could not be read (%(error)s).", error=error.__class__.__name__)
        ) from None
    if not found:
        raise SubmissionError(
            gettext(
                "This PDF carries no credential attachment. Certificates from this site embed one; "
                "check it by its ID instead."
            )
        )
    if len(found) > 1:
        raise SubmissionError(
            gettext("This PDF carries %(count)d JSON attachments; a certificate carries exactly one.", count=len(found))
        )
    return parse_json(content)


def _from_svg(data: bytes) -> dict:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as error:
        raise SubmissionError(
            gettext("The SVG could not be read safely (%(error)s).", error=error.__class__.__name__)
        ) from None
    nodes = root.findall(f".//{{{SVG_NAMESPACE}}}credential")
    if not nodes:
        raise SubmissionError(
            gettext("This SVG is not a baked Open Badges 3.0 badge (no openbadges:credential element).")
        )
    if len(nodes) > 1:
        raise SubmissionError(gettext("This SVG carries more than one credential."))
    return parse_json((nodes[0].text or "").strip().encode(), limit=MAX_CREDENTIAL_BYTES)


def _from_png(data: bytes) -> dict:
    """The credential in a baked PNG's iTXt chunk, read from the chunk headers alone: no pixel is decoded,
    so a decompression bomb in the image data costs nothing."""
    texts: list[bytes] = []
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 12 + length
        if end > len(data):
            raise SubmissionError(gettext("The PNG is truncated or corrupt."))
        body = data[offset + 8 : end - 4]
        if kind == b"iTXt" and body.split(b"\0", 1)[0] == PNG_KEYWORD:
            if zlib.crc32(data[offset + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
                raise SubmissionError(gettext("The PNG's credential chunk is corrupt (its checksum does not match)."))
            rest = body[len(PNG_KEYWORD) + 1 :]
            if len(rest) < 2 or rest[0] != 0:
                raise SubmissionError(
                    gettext("The PNG's credential is compressed; Open Badges 3.0 baking stores it uncompressed.")
                )
            parts = rest[2:].split(b"\0", 2)  # language tag, translated keyword, text
            if len(parts) != 3:
                raise SubmissionError(gettext("The PNG's credential chunk is malformed."))
            texts.append(parts[2])
        if kind == b"IEND":
            break
        offset = end
    if not texts:
        raise SubmissionError(
            gettext("This PNG is not a baked Open Badges 3.0 badge (no iTXt chunk “openbadgecredential”).")
        )
    if len(texts) > 1:
        raise SubmissionError(gettext("This PNG carries more than one credential."))
    return parse_json(texts[0], limit=MAX_CREDENTIAL_BYTES)


def bake_svg(credential: dict, *, title: str) -> str:
    """An SVG badge with the signed credential baked in (Open Badges 3.0 baking)."""
    from xml.sax.saxutils import escape

    payload = json.dumps(credential, ensure_ascii=False).replace("]]>", "]]]]><![CDATA[>")
    label = escape(title[:60])
    # quotes escaped too: a course title must never close the attribute and add one of its own
    aria_label = '"' + escape(title[:60], {'"': "&quot;", "'": "&apos;"}) + '"'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:openbadges="{SVG_NAMESPACE}" width="240" height="240" '
        f'viewBox="0 0 240 240" role="img" aria-label={aria_label}>\n'
        f"<openbadges:credential><![CDATA[{payload}]]></openbadges:credential>\n"
        '<circle cx="120" cy="120" r="112" fill="#0b4f8a"/><circle cx="120" cy="120" r="98" fill="none" '
        'stroke="#fff" stroke-width="4"/>\n'
        '<path d="M80 170 120 70l40 100h-18l-22-56-22 56z" fill="#fff"/>\n'
        f"<title>{label}</title>\n</svg>\n"
    )


# ---- checking -----------------------------------------------------------------------------------


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value
    ):
        return None
    try:  # the pattern still lets through days, hours and offsets that do not exist
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _strings(items: list) -> list[str]:
    """The strings of a submitted list (anything else in it, even unhashable, is just not a match)."""
    return [item for item in items if isinstance(item, str)]


def structure_problems(credential: dict, *, ours: bool = True) -> list[str]:
    """What keeps ``credential`` from being one we could have issued (``ours``) or, for another issuer's, from
    being an Open Badges 3.0 credential on VC 2.0; checked before any JSON-LD work."""
    problems = shape.problems(credential) if ours else []
    context = credential.get("@context")
    if ours and (not isinstance(context, list) or context[:2] != [vc.VC_V2, vc.OB_V3]):
        problems.append(gettext("@context must start with %(first)s and %(second)s", first=vc.VC_V2, second=vc.OB_V3))
    if not ours and (not isinstance(context, list) or not context or context[0] != vc.VC_V2):
        problems.append(gettext("@context must start with %(first)s (Verifiable Credentials 2.0)", first=vc.VC_V2))
    types = credential.get("type")
    # AchievementCredential is OB 3.0's alias of OpenBadgeCredential (the context maps both to one IRI)
    if (
        not isinstance(types, list)
        or "VerifiableCredential" not in _strings(types)
        or not {"OpenBadgeCredential", "AchievementCredential"} & set(_strings(types))
    ):
        problems.append(
            gettext('type must include "VerifiableCredential" and "OpenBadgeCredential" (or "AchievementCredential")')
        )
    for key in ("id", "name"):
        if not isinstance(credential.get(key), str):
            problems.append(gettext("%(key)s is required", key=key))
    issuer = credential.get("issuer")
    if not (isinstance(issuer, str) or (isinstance(issuer, dict) and isinstance(issuer.get("id"), str))):
        problems.append(gettext("issuer (with an id) is required"))
    elif not ours and not shape.IRI.fullmatch(issuer if isinstance(issuer, str) else issuer["id"]):
        problems.append(gettext("%(name)s must be an absolute IRI", name="issuer.id"))
    if _parse_time(credential.get("validFrom")) is None:
        problems.append(gettext("%(key)s must be an ISO 8601 date-time", key="validFrom"))
    if "validUntil" in credential and _parse_time(credential.get("validUntil")) is None:
        problems.append(gettext("%(key)s must be an ISO 8601 date-time", key="validUntil"))
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        problems.append(gettext("%(key)s is required", key="credentialSubject"))
    else:
        subject_types = subject.get("type")
        if "AchievementSubject" not in (
            _strings(subject_types) if isinstance(subject_types, list) else [subject_types]
        ):
            problems.append(gettext('credentialSubject.type must include "AchievementSubject"'))
        achievement = subject.get("achievement")
        if not isinstance(achievement, dict) or not all(k in achievement for k in ("id", "type", "name", "criteria")):
            problems.append(gettext("credentialSubject.achievement needs id, type, name and criteria"))
    status = credential.get("credentialStatus")
    entries = status if isinstance(status, list) else [status]
    if status is not None and not (
        entries and all(isinstance(e, dict) and e.get("type") == "BitstringStatusListEntry" for e in entries)
    ):
        problems.append(gettext("credentialStatus must be a BitstringStatusListEntry (or a list of them)"))
    return problems


# ---- the signed facts ---------------------------------------------------------------------------

CRED = "https://www.w3.org/2018/credentials#"
STATUS = "https://www.w3.org/ns/credentials/status#"
OB = "https://purl.imsglobal.org/spec/vc/ob/vocab.html#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
NAME = "https://schema.org/name"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"


class FactsError(ValueError):
    """The signed statements do not say one clear thing (e.g. two expiry dates, no issuer)."""


@dataclass(frozen=True)
class SignedFacts:
    """What the proof actually covers, read from the canonical N-Quads it was computed over."""

    id: str
    name: str
    issuer: str
    valid_from: str
    valid_until: str | None
    awarded: str | None
    holder_name: str | None  # OB 3.0 lets a subject go unnamed (identified otherwise)
    statuses: tuple[StatusEntry, ...]  # every credentialStatus entry signed (ours: revocation, then suspension)


@dataclass(frozen=True)
class StatusEntry:
    purpose: str | None
    index: str | None
    list: str | None


def signed_facts(nquads: str, *, outermost: bool = False) -> SignedFacts:
    """Read the credential's facts from its canonical quads. Raises FactsError.

    ``outermost``: the quads may describe credentials inside the credential (a CLR record's, in the default
    graph); the one read is the only credential no other statement points to."""
    from pyld.nquads import parse_nquads

    graph: dict[str, dict[str, list[dict]]] = {}
    for quad in parse_nquads(nquads).get("@default", []):
        graph.setdefault(quad["subject"]["value"], {}).setdefault(quad["predicate"]["value"], []).append(quad["object"])

    def values(node: str, predicate: str) -> list[dict]:
        return graph.get(node, {}).get(predicate, [])

    def one(node: str, predicate: str, *, optional: bool = False, kind: str = "literal", datatype: str | None = None):
        found = values(node, predicate)
        label = predicate.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if not found and optional:
            return None
        if len(found) != 1:
            raise FactsError(
                gettext(
                    "the signed data has %(count)d values for %(name)s; exactly one is required",
                    count=len(found),
                    name=label,
                )
            )
        value = found[0]
        if kind == "literal" and value["type"] != "literal":
            raise FactsError(gettext("the signed %(name)s is not a literal", name=label))
        if kind == "node" and value["type"] not in ("IRI", "blank node"):
            raise FactsError(gettext("the signed %(name)s is not a node", name=label))
        if datatype is not None and value.get("datatype") != datatype:
            raise FactsError(gettext("the signed %(name)s is not typed %(type)s", name=label, type=datatype))
        return value["value"]

    credentials = [
        node
        for node, predicates in graph.items()
        if {"type": "IRI", "value": CRED + "VerifiableCredential"} in predicates.get(RDF_TYPE, [])
    ]
    if outermost:
        pointed_to = {
            value["value"] for predicates in graph.values() for objects in predicates.values() for value in objects
        }
        credentials = [node for node in credentials if node not in pointed_to]
    if len(credentials) != 1 or credentials[0].startswith("_:"):
        raise FactsError(gettext("the signed data must describe exactly one credential with an id"))
    node = credentials[0]
    subject = one(node, CRED + "credentialSubject", kind="node")
    entries = values(node, CRED + "credentialStatus")
    if len(entries) > 2 or any(entry["type"] not in ("IRI", "blank node") for entry in entries):
        raise FactsError(gettext("the signed credentialStatus must be one or two entries"))
    statuses = tuple(
        StatusEntry(
            purpose=one(entry["value"], STATUS + "statusPurpose", optional=True),
            index=one(entry["value"], STATUS + "statusListIndex", optional=True),
            list=one(entry["value"], STATUS + "statusListCredential", kind="node", optional=True),
        )
        for entry in entries
    )
    return SignedFacts(
        id=node,
        name=one(node, NAME),
        issuer=one(node, CRED + "issuer", kind="node"),
        valid_from=one(node, CRED + "validFrom", datatype=XSD_DATETIME),
        valid_until=one(node, CRED + "validUntil", datatype=XSD_DATETIME, optional=True),
        awarded=one(node, OB + "awardedDate", optional=True),
        holder_name=one(subject, NAME, optional=True),
        statuses=statuses,
    )


# ---- checking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Our stored certificate for a credential id, as far as verification compares it."""

    holder_name: str
    course_title: str
    awarded: str  # ISO 8601, seconds, Z
    issued: str
    # the suspension our records hold at the time of the check: (suspended, until as ISO 8601 or None)
    suspended: bool = False
    suspended_until: str | None = None


def check_credential(
    credential: dict,
    *,
    issuer: openbadges.Issuer,
    keys: dict[str, Ed25519PublicKey],
    status_bits: Callable[[int], bytes | None] | None,
    now: datetime,
    record: Callable[[str], Record | None] | None = None,
) -> Report:
    """Run the checks in order. ``keys``: the issuer's published keys by id ("key-1").

    ``status_bits(list_id)`` returns the list's bits, or None if unknown; pass None to skip the status
    check (offline without a status list). ``record(credential_id)`` returns our stored certificate for
    the id, or None if we have none; pass None to skip that comparison (offline). Every check after the
    proof reads the signed facts (the canonical quads), never the submitted JSON keys.
    """
    report = Report(credential=credential)
    problems = structure_problems(credential)
    report.checks.append(
        Check(
            "structure",
            not problems,
            "; ".join(problems) or gettext("All fields Open Badges 3.0 requires are present."),
        )
    )
    not_checked = ["proof", "status", "validity", "record"]
    if problems:
        report.checks += [Check(name, None, gettext("Not checked: the structure is invalid.")) for name in not_checked]
        return report

    issuer_id = credential["issuer"] if isinstance(credential["issuer"], str) else credential["issuer"]["id"]

    def resolve(method: str):
        if issuer_id != issuer.did or not method.startswith(issuer.did + "#"):
            return None
        return keys.get(method.split("#", 1)[1])

    facts = None
    try:
        method, nquads = vc.verify_signed(credential, resolve)
        facts = signed_facts(nquads)
        if facts.issuer != issuer.did:
            raise FactsError(
                gettext("the signed issuer %(signed)s is not %(did)s", signed=repr(facts.issuer), did=issuer.did)
            )
        report.checks.append(
            Check(
                "proof",
                True,
                gettext("Signed by %(key)s, a published key of %(issuer)s.", key=method, issuer=issuer.name),
            )
        )
    except vc.ProofError as error:
        message = str(error)
        if issuer_id != issuer.did:
            message = gettext(
                "The issuer %(submitted)s is not %(issuer)s (%(did)s); we only verify our own.",
                submitted=repr(issuer_id),
                issuer=issuer.name,
                did=issuer.did,
            )
        report.checks.append(Check("proof", False, message))
    except FactsError as error:
        report.checks.append(Check("proof", False, gettext("The signature matches, but %(problem)s.", problem=error)))
    except (vc.ContextRefused, vc.CanonicalizationRefused) as error:
        report.checks.append(Check("proof", False, str(error)))
    except (JsonLdError, ValueError, TypeError, KeyError, RecursionError) as error:  # malformed JSON-LD
        report.checks.append(
            Check(
                "proof",
                False,
                gettext("The credential is not valid JSON-LD (%(error)s).", error=error.__class__.__name__),
            )
        )
    if report.checks[-1].ok is False or facts is None:
        report.checks += [Check(name, None, gettext("Not checked: the proof failed.")) for name in not_checked[1:]]
        return report

    report.facts, report.issuer_name, report.nquads, report.issuer_did = facts, issuer.name, nquads, issuer.did
    stored = record(facts.id) if record is not None else None
    report.checks.append(_status_check(facts, issuer, status_bits, stored))
    report.checks.append(_validity_check(facts, now))
    report.checks.append(_record_check(facts, record, stored))
    return report


def _validity_check(facts: SignedFacts, now: datetime) -> Check:
    valid_from = _parse_time(facts.valid_from)
    valid_until = _parse_time(facts.valid_until) if facts.valid_until is not None else None
    if valid_from is None or (facts.valid_until is not None and valid_until is None):
        return Check("validity", False, gettext("The signed validity dates are not ISO 8601 date-times."))
    if valid_from > now:
        return Check("validity", False, gettext("Not valid before %(date)s.", date=facts.valid_from))
    if valid_until is not None and valid_until <= now:
        return Check("validity", False, gettext("Expired on %(date)s.", date=facts.valid_until))
    if valid_until is None:
        return Check("validity", True, gettext("Within its validity period with no expiry."))
    return Check("validity", True, gettext("Within its validity period until %(date)s.", date=facts.valid_until))


def _record_check(facts: SignedFacts, record: Callable[[str], Record | None] | None, stored: Record | None) -> Check:
    if record is None:
        return Check("record", None, gettext("Not compared offline with the issuer's records."))
    if stored is None:
        return Check("record", False, gettext("We have no certificate with this credential's id."))
    differ = [
        label
        for label, signed, ours in (
            (gettext("holder name"), facts.holder_name, stored.holder_name),
            (gettext("course"), facts.name, stored.course_title),
            (gettext("award date"), facts.awarded, stored.awarded),
        )
        if signed != ours
    ]
    if differ:
        return Check(
            "record",
            False,
            gettext(
                "The %(fields)s differ from our record of this certificate (reissued %(date)s); "
                "ask the holder for the current version.",
                date=stored.issued,
                fields=", ".join(differ),
            ),
        )
    return Check("record", True, gettext("Matches our record of this certificate."))


class StatusNotGiven(StatusUnavailable):
    """Raised by an offline ``status_bits`` lookup that was given no file for this list: the entry is not checked
    (the check says so and the verdict is not "valid"), rather than failed."""


def _suspended_message(until: str | None) -> str:
    if until is None:
        return gettext("Suspended: the issuer's status list marks this credential as suspended.")
    return gettext("Suspended until %(date)s: the issuer's status list marks this credential as suspended.", date=until)


def _status_check(facts: SignedFacts, issuer: openbadges.Issuer, status_bits, stored: Record | None = None) -> Check:
    """Every status entry (revocation, and suspension on credentials signed since it exists) against its list.

    ``status_bits(list_id, purpose)`` gives the bits of our list ``list_id`` if it has that purpose, None if we
    have no such list, or raises StatusUnavailable (StatusNotGiven: offline, no file for it). Revoked wins over
    suspended. A credential signed before the suspension list (one entry) is reported suspended when our records
    (``stored``, online only) say so: its own entries cannot."""
    if not facts.statuses:
        return Check("status", False, gettext("The credential has no status entry, so revocation cannot be checked."))
    prefix = issuer.status_list_url(0)[:-1]
    entries: list[tuple[str, int, int, str]] = []  # purpose, list id, index, url
    for entry in facts.statuses:
        match = re.fullmatch(re.escape(prefix) + r"(\d{1,9})", entry.list or "")
        if entry.purpose not in openbadges.PURPOSES or match is None:
            return Check(
                "status",
                False,
                gettext(
                    "The status list %(url)s is not one of %(issuer)s's lists.",
                    url=repr(entry.list),
                    issuer=issuer.name,
                ),
            )
        index = entry.index
        if (
            not isinstance(index, str)
            or not index.isascii()
            or not index.isdigit()
            or int(index) >= openbadges.LIST_SIZE
        ):
            return Check("status", False, gettext("statusListIndex is not a valid position in the list."))
        entries.append((entry.purpose, int(match.group(1)), int(index), entry.list))
    purposes = [entry[0] for entry in entries]
    if purposes.count("revocation") != 1 or purposes.count("suspension") > 1:
        return Check(
            "status",
            False,
            gettext("The credential must have one revocation entry and at most one suspension entry."),
        )
    if status_bits is None:
        return Check(
            "status",
            None,
            gettext("Not checked offline: pass the status list files to check revocation and suspension."),
        )
    entries.sort(key=lambda entry: entry[0] != "revocation")  # revocation first: it wins
    suspended, not_given = False, []
    for purpose, list_id, index, url in entries:
        try:
            bits = status_bits(list_id, purpose)
        except StatusNotGiven as error:
            not_given.append(str(error))
            continue
        except StatusUnavailable as error:
            return Check("status", False, str(error))
        if bits is None or len(bits) * 8 < openbadges.LIST_SIZE:
            return Check("status", False, gettext("The status list %(url)s is unknown.", url=url))
        if openbadges.bit_is_set(bits, index):
            if purpose == "revocation":
                return Check(
                    "status",
                    False,
                    gettext("Revoked: the issuer's status list marks this credential as revoked."),
                    verdict="revoked",
                )
            suspended = True
    if suspended:
        until = stored.suspended_until if stored is not None and stored.suspended else None
        return Check("status", False, _suspended_message(until), verdict="suspended")
    if "suspension" not in purposes and stored is not None and stored.suspended:
        message = (
            gettext(
                "Suspended until %(date)s: this copy predates the issuer's suspension list, and the issuer's "
                "records show the certificate suspended.",
                date=stored.suspended_until,
            )
            if stored.suspended_until
            else gettext(
                "Suspended: this copy predates the issuer's suspension list, and the issuer's records show the "
                "certificate suspended."
            )
        )
        return Check("status", False, message, verdict="suspended")
    if not_given:
        return Check("status", None, " ".join(not_given))
    if "suspension" in purposes:
        return Check(
            "status", True, gettext("Neither revoked nor suspended (checked against the issuer's status lists).")
        )
    return Check("status", True, gettext("Not revoked (checked against the issuer's status list)."))


def bits_from_status_list(document: dict, *, issuer: openbadges.Issuer, keys: dict[str, Ed25519PublicKey]) -> bytes:
    """Offline: the bits of a status list credential file (see ``read_status_list``)."""
    return read_status_list(document, issuer=issuer, keys=keys)[1]


def read_status_list(
    document: dict, *, issuer: openbadges.Issuer, keys: dict[str, Ed25519PublicKey]
) -> tuple[str | None, bytes]:
    """Offline: (signed statusPurpose, bits) of a status list credential file, after checking its shape, proof
    and issuer.

    Raises SubmissionError, vc.ProofError, vc.ContextRefused or vc.CanonicalizationRefused.
    """
    problems = (
        shape.problems(document, shape.STATUS_LIST)
        if isinstance(document, dict)
        else [gettext("%(name)s must be an object", name=gettext("the status list"))]
    )
    if problems:
        raise SubmissionError(
            gettext("The status list is not one we issue: %(problems)s", problems="; ".join(problems))
        )
    if document.get("issuer") != issuer.did:
        raise SubmissionError(gettext("The status list was not issued by the same issuer."))
    _, nquads = vc.verify_signed(
        document, lambda m: keys.get(m.split("#", 1)[1]) if m.startswith(issuer.did + "#") else None
    )
    from pyld.nquads import parse_nquads

    quads = parse_nquads(nquads).get("@default", [])
    encoded = [q["object"]["value"] for q in quads if q["predicate"]["value"] == STATUS + "encodedList"]
    if len(encoded) != 1:
        raise SubmissionError(gettext("The signed status list must carry exactly one encodedList."))
    purposes = [q["object"]["value"] for q in quads if q["predicate"]["value"] == STATUS + "statusPurpose"]
    return (purposes[0] if len(purposes) == 1 else None), openbadges.decode_bits(encoded[0])
