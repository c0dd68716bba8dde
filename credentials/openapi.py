"""The OpenAPI 3.1 description of the public verification API, the wallet exchange (VC-API / LCW) and the learner's
record download (CLR 2.0)."""

from __future__ import annotations

from credentials.ids import LENGTH


def spec(base_url: str, issuer: str) -> dict:
    certificate = {
        "type": "object",
        "required": ["id", "status", "holder_name", "course", "issuer", "awarded_at", "issued_at", "expires_at"],
        "properties": {
            "id": {"type": "string", "example": "7K3Q-9XWM-4D2P-T8VB-1RZC-6HNF-5JAE"},
            "status": {"type": "string", "enum": ["valid", "expired", "revoked", "suspended"]},
            "holder_name": {"type": "string"},
            "kind": {"type": "string", "enum": ["course", "program"]},
            "course": {"type": "object", "properties": {"title": {"type": "string"}, "version": {"type": "integer"}}},
            "stacks": {
                "type": "array",
                "description": "A program certificate's course credentials, with their live status.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "course": {"type": "string"},
                        "status": {"type": "string"},
                        "verification_url": {"type": "string"},
                    },
                },
            },
            "skills": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
            },
            "plan_goals": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "string"}, "title": {"type": "string"}}},
            },
            "score": {"type": "integer", "minimum": 0, "maximum": 100},
            "issuer": {"type": "string"},
            "awarded_at": {"type": "string", "format": "date-time"},
            "issued_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": "string", "format": "date-time"},
            "suspended_at": {"type": "string", "format": "date-time"},
            "suspended_until": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the suspension ends by itself (null: until the issuer lifts it).",
            },
            "revocation_reason": {
                "type": "string",
                "enum": [
                    "issued_in_error",
                    "academic_misconduct",
                    "identity_mismatch",
                    "superseded",
                    "holder_request",
                    "other",
                    "stacked_revoked",  # a program certificate whose stacked course credential was revoked
                ],
            },
            "verification_url": {"type": "string", "format": "uri"},
        },
    }
    problem = {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "enum": ["invalid_id", "not_found"]},
            "message": {"type": "string"},
        },
    }
    # what the site answers for any refused request before the API's own code runs (unknown path, NUL
    # byte, body too large, rate limit): the HTTP status as a number
    http_error = {
        "type": "object",
        "required": ["error", "message", "status"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "status": {"type": "integer"}},
    }
    refused = {"anyOf": [problem, http_error]}
    achievement = {
        "type": ["object", "null"],
        "properties": {
            "id": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "description": {"type": ["string", "null"]},
            "criteria": {
                "type": ["object", "null"],
                "properties": {"id": {"type": ["string", "null"]}, "narrative": {"type": ["string", "null"]}},
            },
        },
    }
    image = {
        "type": ["object", "null"],
        "description": "`data`: an embedded PNG, JPEG, GIF or WebP image whose bytes match its type (safe to show); "
        "`link`: an http(s) address, to show as a link at most (never fetched by us). null: no image, or one that is "
        "not safe to show (SVG, mismatched bytes, other schemes).",
        "properties": {"data": {"type": "string"}, "link": {"type": "string", "format": "uri"}},
    }
    report = {
        "type": "object",
        "required": ["verified", "verdict", "checks", "credential", "issued_by_us", "issuer_did"],
        "properties": {
            "verified": {"type": "boolean"},
            "verdict": {
                "type": "string",
                "enum": ["valid", "revoked", "suspended", "expired", "invalid", "unchecked"],
                "description": "`unchecked`: the credential cannot be checked by us (an issuer DID method other "
                "than did:key and did:web, an issuer DID document or a status list we could not fetch); never "
                "a sign that it is valid.",
            },
            "issued_by_us": {
                "type": "boolean",
                "description": "true: names this site as its issuer, so it was checked against our keys, lists "
                "and records (`verified` says whether it holds); false: another issuer's credential, checked "
                "against its own DID and status lists — not ours.",
            },
            "issuer_did": {"type": ["string", "null"], "description": "The issuer the credential names."},
            "checks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["check", "ok", "message"],
                    "properties": {
                        "check": {
                            "type": "string",
                            "enum": ["structure", "proof", "status", "validity", "record", "credentials"],
                        },
                        "ok": {"type": ["boolean", "null"], "description": "null: not checked"},
                        "message": {"type": "string"},
                    },
                },
            },
            "credential": {
                "type": ["object", "null"],
                "description": "The facts the proof covers, read from the signed (canonical) data; null "
                "until the proof holds. `issuer` is our name for our credentials and the issuer's DID for "
                "another issuer's; `issuer_name_claimed` is the name another issuer gives itself (a claim).",
                "properties": {
                    **{k: {} for k in ("id", "name", "holder_name", "issuer", "validFrom", "validUntil")},
                    "description": {"type": ["string", "null"]},
                    "awardedDate": {"type": ["string", "null"]},
                    "issuer_name_claimed": {"type": ["string", "null"]},
                    "achievement": achievement,
                    "image": image,
                },
            },
            "credentials": {
                "type": "array",
                "description": "A learning record (CLR 2.0) only: the report of each credential inside it, each "
                "checked on its own (the same fields as this report).",
                "items": {"type": "object"},
            },
        },
    }
    unreadable = {
        "type": "object",
        "required": ["verified", "verdict", "message"],
        "properties": {
            "verified": {"const": False},
            "verdict": {"const": "unreadable"},
            "message": {"type": "string"},
        },
    }
    json_error = {"application/json": {"schema": http_error}}
    # Crockford base32 (I, L and O read as 1, 1 and 0; no U); case ignored, a dash or space allowed anywhere
    separator = "[-\\t \u2010-\u2014]?"
    id_pattern = f"^{separator}(?:[0-9A-TV-Za-tv-z]{separator}){{{LENGTH}}}$"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{issuer} certificate verification API",
            "version": "1.0.0",
            "description": "Check a certificate's status (valid, expired, revoked) and facts. No account needed; "
            "requests are rate-limited per client. The holder's email is never returned.",
        },
        "servers": [{"url": base_url.rstrip("/")}],
        "paths": {
            "/api/v1/certificates/{id}": {
                "get": {
                    "operationId": "getCertificate",
                    "summary": "Verify one certificate",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "description": f"The certificate ID: {LENGTH} Crockford base32 characters; dashes, spaces "
                            "and case are ignored.",
                            "schema": {"type": "string", "maxLength": 64, "pattern": id_pattern},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The certificate exists; see `status`.",
                            "content": {"application/json": {"schema": certificate}},
                        },
                        "400": {
                            "description": "Not a certificate ID.",
                            "content": {"application/json": {"schema": refused}},
                        },
                        "404": {
                            "description": "No certificate has this ID.",
                            "content": {"application/json": {"schema": refused}},
                        },
                        "429": {
                            "description": "Too many requests from this client; retry later.",
                            "content": json_error,
                        },
                    },
                }
            },
            "/api/v1/verify": {
                "post": {
                    "operationId": "verifyCredential",
                    "summary": "Verify a signed Open Badges 3.0 credential (ours or another issuer's) or our CLR",
                    "description": "Checks, in order, the credential's structure, its proof (against the issuer's "
                    "published keys), its revocation status, its validity period and, for our certificates, that it "
                    "matches our record of the certificate. Every check after the proof reads the signed data. "
                    "Another issuer's Open Badges 3.0 / VC 2.0 credential is checked against its own keys when its "
                    "issuer is a did:key or a did:web (fetched over https from a public address, 2 s, 100 KB, no "
                    "redirects), with its Bitstring status lists (eddsa-rdfc-2022 or Ed25519Signature2020 proofs); "
                    "`issued_by_us` is then false. Other DID methods give the verdict `unchecked`. A CLR 2.0 "
                    "learning record from this site (up to 1 MB) is checked as a whole and credential by credential "
                    "(`credentials`). "
                    "Send the credential JSON "
                    "as the body; the raw bytes of a certificate PDF or a baked SVG or PNG badge, or a multipart "
                    "upload in a `file` field, are read the same way. A credential that fails a check is still a 200 "
                    "answer: see `verified` and `verdict`.",
                    "requestBody": {
                        "required": True,
                        # every type here is tested to work (tests/test_verifier_edges.py posts one of each)
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "application/ld+json": {"schema": {"type": "object"}},
                            "application/vc+ld+json": {"schema": {"type": "object"}},
                            "application/pdf": {
                                "schema": {"type": "string", "format": "binary"},
                                "description": "A certificate PDF carrying its credential as an attachment.",
                            },
                            "image/svg+xml": {
                                "schema": {"type": "string", "format": "binary"},
                                "description": "A baked Open Badges 3.0 SVG badge.",
                            },
                            "image/png": {
                                "schema": {"type": "string", "format": "binary"},
                                "description": "A baked Open Badges 3.0 PNG badge (iTXt chunk `openbadgecredential`).",
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                    "required": ["file"],
                                },
                                "encoding": {
                                    "file": {
                                        "contentType": "application/json, application/pdf, image/svg+xml, image/png"
                                    }
                                },
                            },
                            "application/x-www-form-urlencoded": {
                                "schema": {"type": "string"},
                                "description": "The credential JSON as the whole body, as `curl -d @credential.json` "
                                "sends it (not form fields).",
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The verification report.",
                            "content": {"application/json": {"schema": report}},
                        },
                        "400": {
                            "description": "Not a credential: not a JSON object, nor a PDF, SVG or PNG carrying one; "
                            "or larger than we read (one credential: 128 KB; a learning record: 1 MB).",
                            "content": {"application/json": {"schema": {"anyOf": [unreadable, http_error]}}},
                        },
                        "413": {"description": "The body is larger than 2 MB.", "content": json_error},
                        "429": {
                            "description": "Too many requests from this client; retry later.",
                            "content": json_error,
                        },
                        "503": {
                            "description": "The issuer's keys are briefly unavailable.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "status": {"const": "unavailable"},
                                            "message": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                    },
                }
            },
            **wallet_paths(json_error),
        },
        "components": {
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "The signed-in learner's session cookie (log in on the site).",
                }
            }
        },
    }


# ---- wallets: the VC-API exchange, the VCALM interaction URL, the learner's record -------------------------


def _credential_schemas() -> tuple[dict, dict, dict]:
    """(OpenBadgeCredential, DIDAuth presentation, ClrCredential) as we send and accept them."""
    strings = {"type": "array", "items": {"type": "string"}, "minItems": 1}
    proof = {
        "type": "object",
        "required": ["type", "verificationMethod", "proofPurpose", "proofValue"],
        "properties": {
            "type": {"type": "string", "enum": ["DataIntegrityProof", "Ed25519Signature2020"]},
            "cryptosuite": {"const": "eddsa-rdfc-2022"},
            "created": {"type": "string"},
            "verificationMethod": {"type": "string"},
            "proofPurpose": {"type": "string"},
            "challenge": {"type": "string"},
            "domain": {"type": "string"},
            "proofValue": {"type": "string", "pattern": "^z[1-9A-HJ-NP-Za-km-z]+$"},
        },
    }
    issuer = {
        "type": "object",
        "required": ["id", "type", "name"],
        "properties": {
            "id": {"type": "string", "pattern": "^did:"},
            "type": strings,
            "name": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
        },
    }
    status_entry = {
        "type": "object",
        "required": ["id", "type", "statusPurpose", "statusListIndex", "statusListCredential"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "type": {"const": "BitstringStatusListEntry"},
            "statusPurpose": {"type": "string", "enum": ["revocation", "suspension"]},
            "statusListIndex": {"type": "string", "pattern": "^[0-9]+$"},
            "statusListCredential": {"type": "string", "format": "uri"},
        },
    }
    achievement = {
        "type": "object",
        "required": ["id", "type", "name", "criteria"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "type": strings,
            "achievementType": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "criteria": {"type": "object"},
        },
    }
    credential = {
        "type": "object",
        "description": "A signed Open Badges 3.0 credential (eddsa-rdfc-2022). From an exchange, "
        "`credentialSubject.id` is the wallet holder's DID and the proof is fresh.",
        "required": [
            "@context",
            "id",
            "type",
            "issuer",
            "validFrom",
            "credentialSubject",
            "credentialStatus",
            "credentialSchema",
            "proof",
        ],
        "properties": {
            "@context": strings,
            "id": {"type": "string", "format": "uri"},
            "type": {"type": "array", "items": {"type": "string"}, "contains": {"const": "OpenBadgeCredential"}},
            "name": {"type": "string"},
            "issuer": issuer,
            "validFrom": {"type": "string", "format": "date-time"},
            "validUntil": {"type": "string", "format": "date-time"},
            "awardedDate": {"type": "string", "format": "date-time"},
            "credentialSubject": {
                "type": "object",
                "required": ["type", "achievement"],
                "properties": {
                    "id": {"type": "string", "pattern": "^did:"},
                    "type": strings,
                    "name": {"type": "string"},
                    "achievement": achievement,
                },
            },
            "credentialStatus": {"type": "array", "items": status_entry, "minItems": 2, "maxItems": 2},
            "credentialSchema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "type"],
                    "properties": {
                        "id": {"type": "string", "format": "uri"},
                        "type": {"const": "1EdTechJsonSchemaValidator2019"},
                    },
                },
            },
            "proof": proof,
        },
    }
    presentation = {
        "type": "object",
        "description": "A DIDAuth presentation signed by the holder's did:key (Ed25519Signature2020 or "
        "eddsa-rdfc-2022), proof purpose `authentication`, answering this exchange's challenge (and our domain).",
        "required": ["@context", "type", "holder", "proof"],
        "properties": {
            "@context": strings,
            "type": {"type": "array", "items": {"type": "string"}, "contains": {"const": "VerifiablePresentation"}},
            "holder": {"type": "string", "pattern": "^did:key:"},
            "proof": proof,
        },
    }
    clr = {
        "type": "object",
        "description": "A signed CLR 2.0 ClrCredential: every valid course and program credential of the learner, "
        "each a full signed OpenBadgeCredential, their achievements, and one `isParentOf` association per course "
        "a program certificate stacks.",
        "required": ["@context", "id", "type", "name", "issuer", "validFrom", "credentialSubject", "proof"],
        "properties": {
            "@context": strings,
            "id": {"type": "string", "pattern": "^urn:uuid:"},
            "type": {"type": "array", "items": {"type": "string"}, "contains": {"const": "ClrCredential"}},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "issuer": issuer,
            "validFrom": {"type": "string", "format": "date-time"},
            "credentialSubject": {
                "type": "object",
                "required": ["type", "achievement", "verifiableCredential", "association"],
                "properties": {
                    "id": {"type": "string", "pattern": "^did:"},
                    "type": {"type": "array", "items": {"const": "ClrSubject"}},
                    "achievement": {"type": "array", "items": achievement},
                    "verifiableCredential": {"type": "array", "items": credential},
                    "association": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "associationType", "sourceId", "targetId"],
                            "properties": {
                                "type": {"const": "Association"},
                                "associationType": {"const": "isParentOf"},
                                "sourceId": {"type": "string", "format": "uri"},
                                "targetId": {"type": "string", "format": "uri"},
                            },
                        },
                    },
                },
            },
            "proof": proof,
        },
    }
    return credential, presentation, clr


def wallet_paths(json_error: dict) -> dict:
    """The wallet's endpoints (credentials/wallet_views.py). Their own refusals are ``{"error", "status"}``; the
    site's (unknown address, rate limit) add ``message``, and are HTML for a client that does not ask for JSON."""
    credential, presentation, clr = _credential_schemas()
    refusal = {
        "type": "object",
        "required": ["error", "status"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "status": {"type": "integer"}},
    }
    refused = {"application/json": {"schema": refusal}}
    page_or_refused = {**refused, "text/html": {"schema": {"type": "string"}}}
    exchange_id = {
        "name": "exchange_id",
        "in": "path",
        "required": True,
        "description": "The exchange's public id (from the QR code or deep link): 32 URL-safe base64 characters.",
        "schema": {"type": "string", "maxLength": 64},
    }
    request = {
        "type": "object",
        "required": ["verifiablePresentationRequest"],
        "properties": {
            "verifiablePresentationRequest": {
                "type": "object",
                "required": ["query", "challenge", "domain", "interact"],
                "properties": {
                    "query": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {"type": {"const": "DIDAuthentication"}},
                        },
                    },
                    "challenge": {"type": "string", "minLength": 32},
                    "domain": {"type": "string"},
                    "interact": {"type": "object"},
                },
            }
        },
    }
    wrapped = {
        "type": "object",
        "required": ["verifiablePresentation"],
        "properties": {
            "verifiablePresentation": {
                "type": "object",
                "required": ["@context", "type", "verifiableCredential"],
                "properties": {
                    "@context": {"type": "array", "items": {"type": "string"}},
                    "type": {"type": "array", "items": {"const": "VerifiablePresentation"}},
                    "verifiableCredential": {"type": "array", "items": credential, "minItems": 1, "maxItems": 1},
                },
            }
        },
    }
    unavailable = {
        "description": "The issuer's signing key is briefly unavailable; the exchange stays open.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {"status": {"const": "unavailable"}, "message": {"type": "string"}},
                }
            }
        },
    }
    too_many = {"description": "Too many requests from this client; retry later.", "content": page_or_refused}
    return {
        "/wallet/exchanges/{exchange_id}": {
            "post": {
                "operationId": "walletExchange",
                "summary": "Receive a credential in a wallet (VC-API exchange or the Learner Credential Wallet)",
                "description": "VC-API: post `{}` to get a DIDAuthentication request (challenge and domain), then "
                '`{"verifiablePresentation": …}` signed for both to get the credential inside a presentation. '
                "Learner Credential Wallet: post the signed presentation itself (domain optional) to get the "
                "credential itself. Either way the credential's subject is the holder's DID and it is signed now. "
                "The challenge is valid once; a refused presentation does not use it up. No session or CSRF token: "
                "the challenge is the authority. Nothing is issued on any answer but 200.",
                "parameters": [exchange_id],
                "requestBody": {
                    "required": False,
                    "description": "An empty body is read as `{}`.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [
                                    {"type": "object", "maxProperties": 0, "description": "VC-API: start"},
                                    {
                                        "type": "object",
                                        "required": ["verifiablePresentation"],
                                        "properties": {"verifiablePresentation": presentation},
                                        "description": "VC-API: the answer to our request",
                                    },
                                    presentation,
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "`{}`: the DIDAuthentication request. A wrapped presentation: the credential "
                        "in a presentation. A bare presentation: the credential.",
                        "headers": {"Cache-Control": {"required": True, "schema": {"const": "no-store"}}},
                        "content": {"application/json": {"schema": {"anyOf": [request, wrapped, credential]}}},
                    },
                    "400": {
                        "description": "Not JSON, not an object, nested deeper than 12 levels, or a malformed "
                        "presentation (the message says which).",
                        "content": page_or_refused,
                    },
                    "403": {
                        "description": "The presentation does not authenticate: another challenge or domain, a key "
                        "that is not the holder's, or a bad signature.",
                        "content": refused,
                    },
                    "404": {"description": "There is no exchange at this address.", "content": page_or_refused},
                    "409": {
                        "description": "The challenge was already used, or the certificate (or every certificate "
                        "of the record) is no longer valid.",
                        "content": refused,
                    },
                    "410": {
                        "description": "The exchange expired (15 minutes after it was opened).",
                        "content": refused,
                    },
                    "413": {"description": "The body is larger than 64 KB.", "content": page_or_refused},
                    "429": too_many,
                    "503": unavailable,
                },
            }
        },
        "/wallet/interactions/{exchange_id}": {
            "get": {
                "operationId": "walletInteraction",
                "summary": "The VCALM interaction URL: the protocols a wallet may continue with",
                "description": "JSON when the client prefers `application/json` (a wallet), else a short page "
                "for a person with the deep link. Answers carry `Vary: Accept`.",
                "parameters": [
                    exchange_id,
                    {"name": "iuv", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "The protocols (VC-API exchange URL and LCW deep link), or the page.",
                        "headers": {"Vary": {"schema": {"type": "string", "pattern": "Accept"}}},
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["protocols"],
                                    "properties": {
                                        "protocols": {
                                            "type": "object",
                                            "required": ["vcapi", "lcw"],
                                            "properties": {
                                                "vcapi": {"type": "string", "format": "uri"},
                                                "lcw": {"type": "string", "pattern": "^https://lcw\\.app/request"},
                                            },
                                        }
                                    },
                                }
                            },
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "400": {"description": "A malformed request (for example a NUL byte).", "content": page_or_refused},
                    "404": {"description": "There is no exchange at this address.", "content": page_or_refused},
                    "429": too_many,
                },
            }
        },
        "/certificates/record.json": {
            "get": {
                "operationId": "getLearnerRecord",
                "summary": "The signed-in learner's whole record as a signed CLR 2.0 credential",
                "description": "Revoked, suspended and expired certificates are left out. Sent as a download "
                "(`Content-Disposition: attachment`), never cached.",
                "security": [{"session": []}],
                "responses": {
                    "200": {
                        "description": "The ClrCredential.",
                        "headers": {
                            "Cache-Control": {"schema": {"const": "private, no-store"}},
                            "Content-Disposition": {"schema": {"type": "string", "pattern": "^attachment"}},
                        },
                        "content": {"application/ld+json": {"schema": clr}},
                    },
                    "302": {
                        "description": "Not signed in: to the login page, which comes back here.",
                        "headers": {"Location": {"schema": {"type": "string", "pattern": "/login\\?next="}}},
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "401": {
                        "description": "Not signed in, and the client asked for JSON.",
                        "content": json_error,
                    },
                    "429": too_many,
                    "503": unavailable,
                },
            }
        },
    }
