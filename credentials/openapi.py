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
    report = {
        "type": "object",
        "required": ["verified", "verdict", "checks", "credential"],
        "properties": {
            "verified": {"type": "boolean"},
            "verdict": {"type": "string", "enum": ["valid", "revoked", "suspended", "expired", "invalid"]},
            "checks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["check", "ok", "message"],
                    "properties": {
                        "check": {"type": "string", "enum": ["structure", "proof", "status", "validity", "record"]},
                        "ok": {"type": ["boolean", "null"], "description": "null: not checked"},
                        "message": {"type": "string"},
                    },
                },
            },
            "credential": {
                "type": ["object", "null"],
                "description": "The facts the proof covers, read from the signed (canonical) data; null "
                "until the proof holds.",
                "properties": {k: {} for k in ("id", "name", "holder_name", "issuer", "validFrom", "validUntil")},
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
                    "summary": "Verify a signed Open Badges 3.0 credential",
                    "description": "Checks, in order, the credential's structure, its proof (against the issuer's "
                    "published keys), its revocation status, its validity period and, for our certificates, that it "
                    "matches our record of the certificate. Every check after the proof reads the signed data. "
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
                            "description": "Not a credential: not a JSON object, nor a PDF or SVG carrying one.",
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
