"""The exact JSON shapes of the credentials we issue, checked before any JSON-LD processing.

Canonicalization (RDFC-1.0) can be made exponentially expensive by blank nodes that all look alike, and
JSON-LD lets one statement be written under several keys. We only ever verify credentials we issued, so
anything outside the shape ``openbadges.build_credential`` and ``signed_status_list`` produce — an unknown
property, an ``@``-keyword, a full-IRI key, a blank node identifier (``_:``), a number, a longer list — is
refused here, at the cost of a walk over at most 24 KB of JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext

IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*")
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Str:
    max_length: int = 2000
    iri: bool = False


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Int:
    low: int
    high: int


@dataclass(frozen=True)
class ListOf:
    item: object
    max_items: int


@dataclass(frozen=True)
class Obj:
    fields: dict


@dataclass(frozen=True)
class Const:
    """Exactly this JSON value (compared after parsing), nothing added, nothing left out."""

    value: object


@dataclass(frozen=True)
class AnyOf:
    options: tuple


TEXT = Str(8000)  # a program's criteria name each of its courses
ID = Str(500, iri=True)
TYPES = AnyOf((Str(100), ListOf(Str(100), 4)))
IMAGE = AnyOf((ID, Obj({"id": ID, "type": TYPES})))
PROFILE = Obj(
    {"id": ID, "type": TYPES, "name": Str(300), "url": ID, "image": IMAGE, "email": Str(300), "description": TEXT}
)
PROOF = Obj(
    {
        "type": Str(100),
        "cryptosuite": Str(100),
        "created": Str(40),
        "verificationMethod": ID,
        "proofPurpose": Str(100),
        "proofValue": Str(200),
    }
)
STATUS_ENTRY = Obj(
    {
        "id": ID,
        "type": Str(100),
        "statusPurpose": Str(40),
        "statusListIndex": Str(20),
        "statusListCredential": ID,
    }
)
OPEN_BADGE = Obj(
    {
        "@context": ListOf(Str(200, iri=True), 4),
        "id": ID,
        "type": TYPES,
        "name": Str(500),
        "description": TEXT,
        "issuer": AnyOf((ID, PROFILE)),
        "validFrom": Str(40),
        "validUntil": Str(40),
        "awardedDate": Str(40),
        "credentialSubject": Obj(
            {
                "id": ID,  # the holder's DID, on a credential issued to a wallet (credentials/wallet.py)
                "type": TYPES,
                "name": Str(500),
                "identifier": ListOf(
                    Obj(
                        {
                            "type": TYPES,
                            "identityHash": Str(200),
                            "identityType": Str(100),
                            "hashed": Bool(),
                            "salt": Str(200),
                        }
                    ),
                    2,
                ),
                "achievement": Obj(
                    {
                        "id": ID,
                        "type": TYPES,
                        "achievementType": Str(100),
                        "name": Str(500),
                        "inLanguage": Str(35),  # a BCP 47 language tag
                        "description": TEXT,
                        "criteria": Obj({"narrative": TEXT}),
                        "alignment": ListOf(
                            Obj(
                                {
                                    "type": TYPES,
                                    "targetName": Str(300),
                                    "targetUrl": ID,
                                    "targetCode": Str(100),
                                    "targetFramework": Str(300),
                                    "targetDescription": Str(500),  # program credentials: a stacked course
                                    "targetType": Str(100),
                                }
                            ),
                            40,
                        ),
                        "resultDescription": ListOf(
                            Obj(
                                {
                                    "id": ID,
                                    "type": TYPES,
                                    "name": Str(300),
                                    "resultType": Str(100),
                                    "valueMin": Str(20),
                                    "valueMax": Str(20),
                                }
                            ),
                            2,
                        ),
                    }
                ),
                "result": ListOf(Obj({"type": TYPES, "resultDescription": ID, "value": Str(20)}), 2),
            }
        ),
        # one entry (revocation: credentials signed before suspension existed) or two (revocation, suspension)
        "credentialStatus": AnyOf((STATUS_ENTRY, ListOf(STATUS_ENTRY, 2))),
        # the one schema we name (openbadges.CREDENTIAL_SCHEMA); older credentials have none
        "credentialSchema": Const(
            [
                {
                    "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
                    "type": "1EdTechJsonSchemaValidator2019",
                }
            ]
        ),
        "proof": AnyOf((PROOF, ListOf(PROOF, 1))),
    }
)
STATUS_LIST = Obj(
    {
        "@context": ListOf(Str(200, iri=True), 2),
        "id": ID,
        "type": TYPES,
        "issuer": ID,
        "validFrom": Str(40),
        "validUntil": Str(40),
        "credentialSubject": Obj(
            {
                "id": ID,
                "type": TYPES,
                "statusPurpose": Str(40),
                "encodedList": Str(200_000),
                "ttl": Int(0, 10**10),
            }
        ),
        "proof": AnyOf((PROOF, ListOf(PROOF, 1))),
    }
)


def _name(path: str) -> str:
    return path or gettext("the credential")


def _key(key: str) -> str:
    return key if len(key) <= 80 else key[:80] + "…"


def _walk(value: object, spec: object, path: str, problems: list[str]) -> None:
    if len(problems) >= MAX_PROBLEMS:
        return
    if isinstance(spec, AnyOf):
        for option in spec.options:
            trial: list[str] = []
            _walk(value, option, path, trial)
            if not trial:
                return
        # report against the closest option: the one of the same JSON type, else the first
        kinds = {Obj: dict, ListOf: list, Str: str, Bool: bool, Int: int, Const: object}
        best = next((o for o in spec.options if isinstance(value, kinds[type(o)])), spec.options[0])
        _walk(value, best, path, problems)
    elif isinstance(spec, Str):
        if not isinstance(value, str):
            problems.append(gettext("%(name)s must be a string", name=_name(path)))
        elif len(value) > spec.max_length:
            problems.append(
                gettext("%(name)s is longer than %(count)d characters", name=_name(path), count=spec.max_length)
            )
        elif value.startswith("_:"):
            problems.append(gettext("%(name)s names a blank node; credentials we issue have none", name=_name(path)))
        elif spec.iri and not IRI.fullmatch(value):
            problems.append(gettext("%(name)s must be an absolute IRI", name=_name(path)))
    elif isinstance(spec, Const):
        # type-exact: json.loads gives 1 and True as different types, and so must we
        if not _same(value, spec.value):
            problems.append(gettext("%(name)s is not the value credentials we issue carry", name=_name(path)))
    elif isinstance(spec, Int):
        if isinstance(value, bool) or not isinstance(value, int) or not spec.low <= value <= spec.high:
            problems.append(
                gettext(
                    "%(name)s must be a whole number from %(low)d to %(high)d",
                    name=_name(path),
                    low=spec.low,
                    high=spec.high,
                )
            )
    elif isinstance(spec, Bool):
        if not isinstance(value, bool):
            problems.append(gettext("%(name)s must be true or false", name=_name(path)))
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            problems.append(gettext("%(name)s must be a list", name=_name(path)))
        elif len(value) > spec.max_items:
            problems.append(
                gettext(
                    "%(name)s has %(count)d entries; at most %(limit)d are allowed",
                    name=_name(path),
                    count=len(value),
                    limit=spec.max_items,
                )
            )
        else:
            for index, item in enumerate(value):
                _walk(item, spec.item, f"{path}[{index}]", problems)
    elif isinstance(spec, Obj):
        if not isinstance(value, dict):
            problems.append(gettext("%(name)s must be an object", name=_name(path)))
            return
        for key, item in value.items():
            where = f"{path}.{_key(key)}" if path else _key(key)
            if key not in spec.fields:
                problems.append(
                    gettext("unexpected property %(key)s: credentials we issue do not have it", key=repr(where))
                )
            else:
                _walk(item, spec.fields[key], where, problems)
            if len(problems) >= MAX_PROBLEMS:
                return


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def problems(document: dict, spec: Obj = OPEN_BADGE) -> list[str]:
    """What in ``document`` falls outside ``spec`` (at most MAX_PROBLEMS messages; empty when it fits)."""
    found: list[str] = []
    _walk(document, spec, "", found)
    return found
