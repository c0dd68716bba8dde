"""Verify an Open Badges credential — JSON, a certificate PDF carrying one, or a baked SVG badge.

Checks run in order and each is reported: structure, proof (against the issuer's published keys),
status (the Bitstring Status List), validity window. Nothing is fetched from the network: keys and
status lists come from callers (our database online, files offline).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyld.jsonld import JsonLdError

from credentials import openbadges, vc

MAX_BYTES = 2 * 1024 * 1024
MAX_JSON_BYTES = 32 * 1024  # ours are ~3 KB; canonicalizing a large document costs seconds of CPU
SVG_NAMESPACE = "https://purl.imsglobal.org/ob/v3p0"


class SubmissionError(ValueError):
    """The upload is not something we can verify; the message says exactly why."""


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not checked
    message: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    credential: dict | None = None

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(c.ok is not False for c in self.checks) and self.checks[1].ok is True

    @property
    def verdict(self) -> str:
        failed = next((c for c in self.checks if c.ok is False), None)
        if failed is None:
            return "valid"
        return {"status": "revoked", "validity": "expired"}.get(failed.name, "invalid")

    def summary(self) -> dict:
        subject = (self.credential or {}).get("credentialSubject") or {}
        return {
            "verified": self.verified,
            "verdict": self.verdict,
            "checks": [{"check": c.name, "ok": c.ok, "message": c.message} for c in self.checks],
            "credential": None
            if self.credential is None
            else {
                "id": self.credential.get("id"),
                "name": self.credential.get("name"),
                "holder_name": subject.get("name") if isinstance(subject, dict) else None,
                "issuer": (self.credential.get("issuer") or {}).get("name")
                if isinstance(self.credential.get("issuer"), dict)
                else self.credential.get("issuer"),
                "validFrom": self.credential.get("validFrom"),
                "validUntil": self.credential.get("validUntil"),
            },
        }


# ---- reading submissions ---------------------------------------------------------------------------


def read_submission(data: bytes) -> dict:
    """The credential inside JSON, a certificate PDF or a baked SVG. Raises SubmissionError."""
    if len(data) > MAX_BYTES:
        raise SubmissionError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    head = data.lstrip()[:5]
    if head.startswith(b"%PDF"):
        return _from_pdf(data)
    if head.startswith(b"<"):
        return _from_svg(data)
    return parse_json(data)


def parse_json(data: bytes) -> dict:
    if len(data) > MAX_JSON_BYTES:
        raise SubmissionError(f"The credential JSON is larger than {MAX_JSON_BYTES // 1024} KB; ours are a few KB.")
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SubmissionError("The file is neither UTF-8 JSON, a PDF nor an SVG badge.") from None
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"The credential is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from None
    except RecursionError:
        raise SubmissionError("The credential JSON is nested too deeply.") from None
    if not isinstance(document, dict):
        raise SubmissionError("The credential must be a JSON object.")
    return document


def _from_pdf(data: bytes) -> dict:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        attachments = PdfReader(io.BytesIO(data)).attachments
        found = [
            (name, content)
            for name, contents in attachments.items()
            for content in contents
            if name.lower().endswith(".json")
        ]
    except (PdfReadError, ValueError, KeyError, TypeError, RecursionError) as error:
        raise SubmissionError(f"The PDF could not be read ({error.__class__.__name__}).") from None
    if not found:
        raise SubmissionError(
            "This PDF carries no credential attachment. Certificates from this site embed one; "
            "check it by its ID instead."
        )
    if len(found) > 1:
        raise SubmissionError(f"This PDF carries {len(found)} JSON attachments; a certificate carries exactly one.")
    return parse_json(found[0][1])


def _from_svg(data: bytes) -> dict:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as error:
        raise SubmissionError(f"The SVG could not be read safely ({error.__class__.__name__}).") from None
    nodes = root.findall(f".//{{{SVG_NAMESPACE}}}credential")
    if not nodes:
        raise SubmissionError("This SVG is not a baked Open Badges 3.0 badge (no openbadges:credential element).")
    if len(nodes) > 1:
        raise SubmissionError("This SVG carries more than one credential.")
    return parse_json((nodes[0].text or "").strip().encode())


def bake_svg(credential: dict, *, title: str) -> str:
    """An SVG badge with the signed credential baked in (Open Badges 3.0 baking)."""
    from xml.sax.saxutils import escape

    payload = json.dumps(credential, ensure_ascii=False).replace("]]>", "]]]]><![CDATA[>")
    label = escape(title[:60])
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:openbadges="{SVG_NAMESPACE}" width="240" height="240" '
        f'viewBox="0 0 240 240" role="img" aria-label="{label}">\n'
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


def structure_problems(credential: dict) -> list[str]:
    problems = []
    context = credential.get("@context")
    if not isinstance(context, list) or context[:2] != [vc.VC_V2, vc.OB_V3]:
        problems.append(f"@context must start with {vc.VC_V2} and {vc.OB_V3}")
    types = credential.get("type")
    if not isinstance(types, list) or not {"VerifiableCredential", "OpenBadgeCredential"} <= set(_strings(types)):
        problems.append('type must include "VerifiableCredential" and "OpenBadgeCredential"')
    for key in ("id", "name"):
        if not isinstance(credential.get(key), str):
            problems.append(f"{key} is required")
    issuer = credential.get("issuer")
    if not (isinstance(issuer, str) or (isinstance(issuer, dict) and isinstance(issuer.get("id"), str))):
        problems.append("issuer (with an id) is required")
    if _parse_time(credential.get("validFrom")) is None:
        problems.append("validFrom must be an ISO 8601 date-time")
    if "validUntil" in credential and _parse_time(credential.get("validUntil")) is None:
        problems.append("validUntil must be an ISO 8601 date-time")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        problems.append("credentialSubject is required")
    else:
        subject_types = subject.get("type")
        if "AchievementSubject" not in (
            _strings(subject_types) if isinstance(subject_types, list) else [subject_types]
        ):
            problems.append('credentialSubject.type must include "AchievementSubject"')
        achievement = subject.get("achievement")
        if not isinstance(achievement, dict) or not all(k in achievement for k in ("id", "type", "name", "criteria")):
            problems.append("credentialSubject.achievement needs id, type, name and criteria")
    status = credential.get("credentialStatus")
    if status is not None and not (isinstance(status, dict) and status.get("type") == "BitstringStatusListEntry"):
        problems.append("credentialStatus must be a BitstringStatusListEntry")
    return problems


def check_credential(
    credential: dict,
    *,
    issuer: openbadges.Issuer,
    keys: dict[str, Ed25519PublicKey],
    status_bits: Callable[[int], bytes | None] | None,
    now: datetime,
) -> Report:
    """Run the four checks in order. ``keys``: the issuer's published keys by id ("key-1").

    ``status_bits(list_id)`` returns the list's bits, or None if unknown; pass None to skip the status
    check (offline without a status list).
    """
    report = Report(credential=credential)
    problems = structure_problems(credential)
    report.checks.append(
        Check("structure", not problems, "; ".join(problems) or "All fields Open Badges 3.0 requires are present.")
    )
    not_checked = ["proof", "status", "validity"]
    if problems:
        report.checks += [Check(name, None, "Not checked: the structure is invalid.") for name in not_checked]
        return report

    issuer_id = credential["issuer"] if isinstance(credential["issuer"], str) else credential["issuer"]["id"]

    def resolve(method: str):
        if issuer_id != issuer.did or not method.startswith(issuer.did + "#"):
            return None
        return keys.get(method.split("#", 1)[1])

    try:
        method = vc.verify(credential, resolve)
        report.checks.append(Check("proof", True, f"Signed by {method}, a published key of {issuer.name}."))
    except vc.ProofError as error:
        message = str(error)
        if issuer_id != issuer.did:
            message = f"The issuer {issuer_id!r} is not {issuer.name} ({issuer.did}); we only verify our own."
        report.checks.append(Check("proof", False, message))
    except vc.ContextRefused as error:
        report.checks.append(Check("proof", False, str(error)))
    except (JsonLdError, ValueError, TypeError, KeyError, RecursionError) as error:  # malformed JSON-LD
        report.checks.append(
            Check("proof", False, f"The credential is not valid JSON-LD ({error.__class__.__name__}).")
        )
    if report.checks[-1].ok is False:
        report.checks += [Check(name, None, "Not checked: the proof failed.") for name in not_checked[1:]]
        return report

    report.checks.append(_status_check(credential, issuer, status_bits))
    valid_from = _parse_time(credential["validFrom"])
    valid_until = _parse_time(credential.get("validUntil"))
    if valid_from > now:
        report.checks.append(Check("validity", False, f"Not valid before {credential['validFrom']}."))
    elif valid_until is not None and valid_until <= now:
        report.checks.append(Check("validity", False, f"Expired on {credential['validUntil']}."))
    else:
        until = f" until {credential['validUntil']}" if valid_until else " with no expiry"
        report.checks.append(Check("validity", True, f"Within its validity period{until}."))
    return report


def _status_check(credential: dict, issuer: openbadges.Issuer, status_bits) -> Check:
    entry = credential.get("credentialStatus")
    if entry is None:
        return Check("status", False, "The credential has no status entry, so revocation cannot be checked.")
    url = entry.get("statusListCredential")
    prefix = issuer.status_list_url(0)[:-1]
    match = re.fullmatch(re.escape(prefix) + r"(\d{1,9})", url or "")
    if entry.get("statusPurpose") != "revocation" or match is None:
        return Check("status", False, f"The status list {url!r} is not one of {issuer.name}'s lists.")
    index = entry.get("statusListIndex")
    if not isinstance(index, str) or not index.isdigit() or int(index) >= openbadges.LIST_SIZE:
        return Check("status", False, "statusListIndex is not a valid position in the list.")
    if status_bits is None:
        return Check("status", None, "Not checked offline: pass the status list file to check revocation.")
    bits = status_bits(int(match.group(1)))
    if bits is None or len(bits) * 8 < openbadges.LIST_SIZE:
        return Check("status", False, f"The status list {url} is unknown.")
    if openbadges.bit_is_set(bits, int(index)):
        return Check("status", False, "Revoked: the issuer's status list marks this credential as revoked.")
    return Check("status", True, "Not revoked (checked against the issuer's status list).")


def bits_from_status_list(document: dict, *, issuer: openbadges.Issuer, keys: dict[str, Ed25519PublicKey]) -> bytes:
    """Offline: the bits of a status list credential file, after checking its own proof and issuer."""
    if document.get("issuer") != issuer.did:
        raise SubmissionError("The status list was not issued by the same issuer.")
    vc.verify(document, lambda m: keys.get(m.split("#", 1)[1]) if m.startswith(issuer.did + "#") else None)
    return openbadges.decode_bits(document["credentialSubject"]["encodedList"])
