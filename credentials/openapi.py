"""The OpenAPI 3.1 description of the public verification API."""

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
                "description": "true: issued by this site (checked against our keys, lists and records); false: "
                "another issuer's credential, checked against its own DID and status lists — not ours.",
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
        },
    }
