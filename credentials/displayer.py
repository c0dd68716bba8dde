"""The Open Badges 3.0 "Displayer" role: verify a credential from any issuer we can check, and say what it shows.

Our own credentials go through ``verification.check_credential`` (our keys, our status lists, our records). Another
issuer's credential is checked against the issuer's own keys: a ``did:key`` issuer's key is in its DID; a
``did:web`` issuer's DID document is fetched by ``credentials.fetcher`` (https, public addresses only, 2 s,
100 KB, no redirects). Its Bitstring status lists are fetched the same way and their own signatures checked
against the same issuer. A list we cannot fetch or check gives "cannot be checked", never "valid". Any other DID
method gives "cannot be checked" with the reason.

A CLR 2.0 learning record of ours (``/certificates/record.json``) is checked as a whole (its proof) and each of
the credentials inside it on its own.

What a credential shows (achievement name, description, criteria, image, the issuer's name) is read from the
signed quads, never from the JSON keys. The issuer's name of another issuer is only its claim: the DID is what
was checked. Images are shown only when embedded as a ``data:`` URI of a raster type whose bytes match it; an
http(s) image is a link at most, and nothing is ever fetched for display.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from datetime import datetime

from flask_babel import gettext
from pyld import jsonld

from credentials import clr, didauth, dids, fetcher, openbadges, shape, vc
from credentials.verification import (
    CRED,
    NAME,
    OB,
    STATUS,
    Check,
    FactsError,
    Report,
    _parse_time,
    _validity_check,
    check_credential,
    signed_facts,
    structure_problems,
)

DESCRIPTION = "https://schema.org/description"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
MAX_DEPTH = 20
MAX_VALUES = 4000  # JSON values in one credential: JSON-LD expansion work grows with them, not with string length
MAX_LIST_BYTES = 4 * 1024 * 1024  # a decoded status list: 32 M entries, far above the W3C minimum of 131,072
# verifying a record costs ~50 ms of CPU per credential in it (its proof over everything, then each on its own)
MAX_RECORD_CREDENTIALS = 50
# another issuer's credential may have more blank nodes than ours (objects without ids); the CPU cap still holds
FOREIGN_BUDGET = vc.Budget(blank_nodes=80, cpu_seconds=0.1)
IMAGE_TYPES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
MAX_IMAGE_BYTES = 96 * 1024
DATA_URI = re.compile(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)")


def issuer_of(credential: dict) -> str | None:
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


def check(credential: dict, *, issuer: openbadges.Issuer, keys, status_bits, now: datetime, record=None) -> Report:
    """Check a submitted credential or learning record from us or from another issuer. Never raises for bad
    input: every problem is a check that failed (or could not be made) with its reason."""
    from credentials.verification import is_record

    if is_record(credential):
        return check_record(credential, issuer=issuer, keys=keys, status_bits=status_bits, now=now, record=record)
    named = issuer_of(credential)
    if named is None or named == issuer.did:
        report = check_credential(credential, issuer=issuer, keys=keys, status_bits=status_bits, now=now, record=record)
        report.issuer_did, report.ours = named, named == issuer.did
        if report.nquads is not None:
            report.display = display_fields(report.nquads, report.facts)
        return report
    return check_foreign(credential, issuer_did=named, now=now)


# ---- another issuer's credential ------------------------------------------------------------------------------


def size_problems(document: object) -> list[str]:
    """Depth and count of JSON values, checked before any JSON-LD work."""
    count, pending = 0, [(document, 0)]
    while pending:
        value, depth = pending.pop()
        count += 1
        if depth > MAX_DEPTH:
            return [gettext("the credential is nested more than %(depth)d levels deep", depth=MAX_DEPTH)]
        if count > MAX_VALUES:
            return [gettext("the credential holds more than %(count)d values", count=MAX_VALUES)]
        if isinstance(value, dict):
            pending += [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list):
            pending += [(item, depth + 1) for item in value]
    return []


def _not_checked(report: Report, names: list[str], message: str) -> Report:
    report.checks += [Check(name, None, message) for name in names]
    return report


def check_foreign(credential: dict, *, issuer_did: str, now: datetime) -> Report:
    report = Report(credential=credential, ours=False, issuer_did=issuer_did)
    problems = size_problems(credential) or structure_problems(credential, ours=False)
    report.checks.append(
        Check(
            "structure",
            not problems,
            "; ".join(problems) or gettext("All fields Open Badges 3.0 requires are present."),
        )
    )
    if problems:
        return _not_checked(report, ["proof", "status", "validity"], gettext("Not checked: the structure is invalid."))
    if dids.method_of(issuer_did) not in ("key", "web"):
        report.checks.append(Check("proof", None, dids.unsupported_message(issuer_did), verdict="unchecked"))
        return _not_checked(
            report, ["status", "validity"], gettext("Not checked: we cannot check this issuer's signature.")
        )
    try:
        resolved = dids.resolve(issuer_did)
    except dids.DidError as error:
        report.checks.append(
            Check("proof", False, gettext("The issuer's keys could not be read: %(problem)s", problem=error))
        )
        return _not_checked(report, ["status", "validity"], gettext("Not checked: the proof failed."))

    try:
        method, nquads = verify_with(credential, resolved)
        facts = signed_facts(nquads)
        if facts.issuer != issuer_did:
            raise FactsError(
                gettext("the signed issuer %(signed)s is not %(did)s", signed=repr(facts.issuer), did=issuer_did)
            )
    except vc.ProofError as error:
        report.checks.append(Check("proof", False, str(error)))
    except FactsError as error:
        report.checks.append(Check("proof", False, gettext("The signature matches, but %(problem)s.", problem=error)))
    except (vc.ContextRefused, vc.CanonicalizationRefused) as error:
        report.checks.append(Check("proof", False, str(error)))
    except (jsonld.JsonLdError, ValueError, TypeError, KeyError, RecursionError) as error:
        report.checks.append(
            Check(
                "proof",
                False,
                gettext("The credential is not valid JSON-LD (%(error)s).", error=error.__class__.__name__),
            )
        )
    if report.checks[-1].ok is False:
        return _not_checked(report, ["status", "validity"], gettext("Not checked: the proof failed."))
    report.checks.append(
        Check("proof", True, gettext("Signed by %(key)s, a key of the issuer %(did)s.", key=method, did=issuer_did))
    )
    report.facts, report.nquads = facts, nquads
    report.display = display_fields(nquads, facts)
    report.checks.append(foreign_status(facts, resolved, now))
    report.checks.append(_validity_check(facts, now))
    return report


def verify_with(document: dict, resolved: dids.Resolved) -> tuple[str, str]:
    """(method, nquads) of the document's proof made with one of the issuer's assertion keys. Raises
    vc.ProofError (saying which key and why it is not usable), ContextRefused, CanonicalizationRefused."""
    refused: list[str] = []

    def resolve_key(method: str):
        key = resolved.key_for(method)
        if key is None:
            if method in resolved.other_methods:
                refused.append(
                    gettext(
                        "the key %(key)s is in the issuer's DID document but not listed under assertionMethod, "
                        "so it may not sign credentials",
                        key=method[:160],
                    )
                )
            elif not method.startswith(resolved.did + "#"):
                refused.append(
                    gettext(
                        "the proof names the key %(key)s, which is not a key of the issuer %(did)s",
                        key=method[:160],
                        did=resolved.did,
                    )
                )
            else:
                refused.append(gettext("the key %(key)s is not in the issuer's DID document", key=method[:160]))
        return key

    try:
        return vc.verify_signed(document, resolve_key, didauth.loader(), accept_2020=True, budget=FOREIGN_BUDGET)
    except vc.ProofError:
        if refused:
            raise vc.ProofError(refused[0]) from None
        raise


def foreign_status(facts, resolved: dids.Resolved, now: datetime) -> Check:
    """Every status entry of another issuer's credential, against its list fetched and checked right now."""
    if not facts.statuses:
        return Check(
            "status",
            None,
            gettext("The issuer gives no status list for this credential, so there is no revocation to check."),
        )
    suspended = False
    for entry in sorted(facts.statuses, key=lambda e: e.purpose != "revocation"):
        if entry.purpose not in openbadges.PURPOSES:
            return _cannot(
                gettext("we check revocation and suspension entries, not %(purpose)s", purpose=repr(entry.purpose))
            )
        index = entry.index
        if not isinstance(index, str) or not index.isascii() or not index.isdigit() or len(index) > 9:
            return Check("status", False, gettext("statusListIndex is not a valid position in the list."))
        try:
            bits = status_list_bits(entry.list, entry.purpose, resolved, now)
        except StatusProblem as problem:
            return _cannot(str(problem))
        if int(index) >= len(bits) * 8:
            return Check("status", False, gettext("statusListIndex is not a valid position in the list."))
        if openbadges.bit_is_set(bits, int(index)):
            if entry.purpose == "revocation":
                return Check(
                    "status",
                    False,
                    gettext("Revoked: the issuer's status list marks this credential as revoked."),
                    verdict="revoked",
                )
            suspended = True
    if suspended:
        return Check(
            "status",
            False,
            gettext("Suspended: the issuer's status list marks this credential as suspended."),
            verdict="suspended",
        )
    return Check("status", True, gettext("Not revoked or suspended (checked against the issuer's status list now)."))


def _cannot(reason: str) -> Check:
    return Check(
        "status", None, gettext("Status could not be checked: %(reason)s.", reason=reason.rstrip(".")), "unchecked"
    )


class StatusProblem(Exception):
    """The status list could not be fetched or is not the issuer's list for this entry."""


def status_list_bits(url: str | None, purpose: str, resolved: dids.Resolved, now: datetime) -> bytes:
    """The bits of the issuer's status list at ``url``, after checking it is that list (its id), signed by the
    same issuer, for this purpose, and current. Raises StatusProblem."""
    if not isinstance(url, str):
        raise StatusProblem(gettext("the status entry names no status list"))
    try:
        document = fetcher.fetch_json(url, what=gettext("The status list"))
    except fetcher.FetchRefused as error:
        raise StatusProblem(str(error)) from None
    if not isinstance(document, dict):
        raise StatusProblem(gettext("the status list is not a JSON object"))
    problems = size_problems(document)
    types = document.get("type")
    if problems or not isinstance(types, list) or "BitstringStatusListCredential" not in types:
        raise StatusProblem(gettext("%(url)s is not a Bitstring status list credential", url=url[:200]))
    if issuer_of(document) != resolved.did:
        raise StatusProblem(gettext("the status list was not issued by the credential's issuer"))
    try:
        _method, nquads = verify_with(document, resolved)
    except vc.ProofError as error:
        raise StatusProblem(gettext("the status list's signature is invalid: %(error)s", error=error)) from None
    except (vc.ContextRefused, vc.CanonicalizationRefused) as error:
        raise StatusProblem(str(error)) from None
    except (jsonld.JsonLdError, ValueError, TypeError, KeyError, RecursionError) as error:
        raise StatusProblem(
            gettext("the status list is not valid JSON-LD (%(error)s)", error=error.__class__.__name__)
        ) from None
    graph = _graph(nquads)
    lists = [
        n for n, p in graph.items() if {"type": "IRI", "value": CRED + "VerifiableCredential"} in p.get(RDF_TYPE, [])
    ]
    if lists != [url]:
        raise StatusProblem(
            gettext("the signed status list is not the list %(url)s the credential points to", url=url[:200])
        )
    until = _literal(graph, url, CRED + "validUntil")
    if until is not None and (_parse_time(until) is None or _parse_time(until) <= now):
        raise StatusProblem(gettext("the status list expired on %(date)s", date=until))
    subject = _node(graph, url, CRED + "credentialSubject")
    signed_purpose = _literal(graph, subject, STATUS + "statusPurpose") if subject else None
    encoded = _literal(graph, subject, STATUS + "encodedList") if subject else None
    if signed_purpose != purpose:
        raise StatusProblem(
            gettext(
                "the status list is a %(signed)s list, but the credential's entry is for %(purpose)s",
                signed=signed_purpose,
                purpose=purpose,
            )
        )
    if encoded is None:
        raise StatusProblem(gettext("the signed status list carries no encodedList"))
    return decode_list(encoded)


def decode_list(encoded: str) -> bytes:
    """A Bitstring status list's bits (multibase base64url of GZIP), inflating at most MAX_LIST_BYTES."""
    if not encoded.startswith("u"):
        raise StatusProblem(gettext("the encoded list is not base64url multibase"))
    try:
        packed = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
        inflater = zlib.decompressobj(wbits=31)  # GZIP framing
        bits = inflater.decompress(packed, MAX_LIST_BYTES + 1)
    except (binascii.Error, ValueError, zlib.error, gzip.BadGzipFile):
        raise StatusProblem(gettext("the encoded list is not GZIP-compressed base64url")) from None
    if len(bits) > MAX_LIST_BYTES:
        raise StatusProblem(gettext("the status list is larger than we read"))
    return bits


# ---- what a credential shows ----------------------------------------------------------------------------------


def _graph(nquads: str) -> dict[str, dict[str, list[dict]]]:
    from pyld.nquads import parse_nquads

    graph: dict[str, dict[str, list[dict]]] = {}
    for quad in parse_nquads(nquads).get("@default", []):
        graph.setdefault(quad["subject"]["value"], {}).setdefault(quad["predicate"]["value"], []).append(quad["object"])
    return graph


def _literal(graph, node: str | None, predicate: str) -> str | None:
    values = [v["value"] for v in graph.get(node, {}).get(predicate, []) if v["type"] == "literal"]
    return values[0] if len(values) == 1 else None


def _node(graph, node: str | None, predicate: str) -> str | None:
    values = [v["value"] for v in graph.get(node, {}).get(predicate, []) if v["type"] in ("IRI", "blank node")]
    return values[0] if len(values) == 1 else None


def safe_image(iri: str | None) -> dict | None:
    """{"data": data URI} for an embedded raster image whose bytes are what it says, {"link": url} for an https
    or http address (shown as a link, never loaded), else None."""
    if not iri:
        return None
    if iri.startswith(("https://", "http://")) and len(iri) <= 2000:
        return {"link": iri}
    match = DATA_URI.fullmatch(iri)
    if match is None or match.group(1) not in IMAGE_TYPES:
        return None
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) > MAX_IMAGE_BYTES or not raw.startswith(IMAGE_TYPES[match.group(1)]):
        return None
    if match.group(1) == "image/webp" and raw[8:12] != b"WEBP":
        return None
    return {"data": iri}


def display_fields(nquads: str, facts) -> dict:
    """The Open Badges 3.0 displayer fields the signature covers: achievement name, description, criteria,
    image, the issuer's name (as the issuer states it) and the credential's description."""
    graph = _graph(nquads)
    node = facts.id
    subject = _node(graph, node, CRED + "credentialSubject")
    achievement = _node(graph, subject, OB + "achievement") if subject else None
    criteria = _node(graph, achievement, OB + "Criteria") if achievement else None
    issuer = _node(graph, node, CRED + "issuer")
    image = (
        (_node(graph, achievement, OB + "image") if achievement else None)
        or _node(graph, node, OB + "image")
        or (_node(graph, issuer, OB + "image") if issuer else None)
    )
    return {
        "description": _literal(graph, node, DESCRIPTION),
        "achievement": None
        if achievement is None
        else {
            "id": None if achievement.startswith("_:") else achievement,
            "name": _literal(graph, achievement, NAME),
            "description": _literal(graph, achievement, DESCRIPTION),
            "criteria": None
            if criteria is None
            else {
                "id": None if criteria.startswith("_:") else criteria,
                "narrative": _literal(graph, criteria, OB + "narrative"),
            },
        },
        "issuer_name_claimed": _literal(graph, issuer, NAME) if issuer else None,
        "image": safe_image(image),
        "awardedDate": facts.awarded,
    }


# ---- a learning record (CLR 2.0) ------------------------------------------------------------------------------


def check_record(credential: dict, *, issuer: openbadges.Issuer, keys, status_bits, now: datetime, record) -> Report:
    """Our ClrCredential: its own proof (the whole record as signed), then each credential inside it, each on its
    own against our keys, status lists and records."""
    named = issuer_of(credential)
    report = Report(credential=credential, ours=named == issuer.did, issuer_did=named)
    subject = credential.get("credentialSubject")
    inner = subject.get("verifiableCredential") if isinstance(subject, dict) else None
    context = credential.get("@context")
    problems = []
    if not isinstance(context, list) or context[:2] != [vc.VC_V2, clr.CLR_V2]:
        problems.append(gettext("@context must start with %(first)s and %(second)s", first=vc.VC_V2, second=clr.CLR_V2))
    if not isinstance(inner, list) or not all(isinstance(c, dict) for c in inner):
        problems.append(gettext("credentialSubject.verifiableCredential must be a list of credentials"))
    elif len(inner) > MAX_RECORD_CREDENTIALS:
        problems.append(gettext("the record holds more than %(count)d credentials", count=MAX_RECORD_CREDENTIALS))
    if not problems:
        # bound the JSON-LD work before the record's proof expands it all: each credential inside must have the
        # exact shape of ours, and everything else the size of one credential
        rest = {k: v for k, v in credential.items() if k != "credentialSubject"}
        rest["credentialSubject"] = {k: v for k, v in subject.items() if k != "verifiableCredential"}
        problems = size_problems(rest)
        for position, inner_credential in enumerate(inner, start=1):
            shape_problems = shape.problems(inner_credential)
            if shape_problems:
                problems.append(
                    gettext(
                        "credential %(position)d of the record: %(problems)s",
                        position=position,
                        problems="; ".join(shape_problems),
                    )
                )
                break
    report.checks.append(
        Check(
            "structure",
            not problems,
            "; ".join(problems)
            or gettext("A CLR 2.0 learning record holding %(count)d credentials.", count=len(inner)),
        )
    )
    names = ["proof", "status", "validity", "credentials"]
    if problems:
        return _not_checked(report, names, gettext("Not checked: the structure is invalid."))
    if named != issuer.did:
        report.checks.append(
            Check(
                "proof",
                None,
                gettext("We check learning records (CLR) issued by %(name)s only.", name=issuer.name),
                verdict="unchecked",
            )
        )
        return _not_checked(report, names[1:], gettext("Not checked: we cannot check this record's signature."))

    def resolve(method: str):
        return keys.get(method.split("#", 1)[1]) if method.startswith(issuer.did + "#") else None

    # each credential inside adds its own graph and proof graph: a few blank nodes and a little work each
    budget = vc.Budget(
        blank_nodes=40 + 12 * len(inner),
        cpu_seconds=0.5 + 0.1 * len(inner),
        n_degree_calls=vc.MAX_N_DEGREE_CALLS + 12 * len(inner),
    )
    try:
        method, nquads = vc.verify_signed(credential, resolve, clr.loader(), budget=budget)
        facts = signed_facts(nquads, outermost=True)
        if facts.issuer != issuer.did:
            raise FactsError(gettext("the signed issuer is not %(did)s", did=issuer.did))
    except vc.ProofError as error:
        report.checks.append(Check("proof", False, str(error)))
    except FactsError as error:
        report.checks.append(Check("proof", False, gettext("The signature matches, but %(problem)s.", problem=error)))
    except (vc.ContextRefused, vc.CanonicalizationRefused) as error:
        report.checks.append(Check("proof", False, str(error)))
    except (jsonld.JsonLdError, ValueError, TypeError, KeyError, RecursionError) as error:
        report.checks.append(
            Check(
                "proof", False, gettext("The record is not valid JSON-LD (%(error)s).", error=error.__class__.__name__)
            )
        )
    if report.checks[-1].ok is False:
        return _not_checked(report, names[1:], gettext("Not checked: the proof failed."))
    report.checks.append(
        Check(
            "proof", True, gettext("Signed by %(key)s, a published key of %(issuer)s.", key=method, issuer=issuer.name)
        )
    )
    report.facts, report.nquads, report.issuer_name = facts, nquads, issuer.name
    report.checks.append(
        Check("status", None, gettext("A learning record has no status of its own; see each credential."))
    )
    report.checks.append(_validity_check(facts, now))
    report.parts = [check(c, issuer=issuer, keys=keys, status_bits=status_bits, now=now, record=record) for c in inner]
    failing = [part for part in report.parts if not part.verified]
    if failing:
        report.checks.append(
            Check(
                "credentials",
                False,
                gettext(
                    "%(failed)d of the %(count)d credentials in the record do not verify now (see each below).",
                    failed=len(failing),
                    count=len(report.parts),
                ),
                verdict=failing[0].verdict if failing[0].verdict in ("revoked", "suspended", "expired") else None,
            )
        )
    else:
        report.checks.append(
            Check(
                "credentials",
                True,
                gettext(
                    "Each of the %(count)d credentials in the record verifies on its own.", count=len(report.parts)
                ),
            )
        )
    return report
