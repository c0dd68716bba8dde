"""The OpenAPI 3.1 description of the public verification API."""

from __future__ import annotations

from credentials.ids import LENGTH


def spec(base_url: str, issuer: str) -> dict:
    certificate = {
        "type": "object",
        "required": ["id", "status", "holder_name", "course", "issuer", "awarded_at", "issued_at", "expires_at"],
        "properties": {
            "id": {"type": "string", "example": "7K3Q-9XWM-4D2P-T8VB-1RZC-6HNF-5JAE"},
            "status": {"type": "string", "enum": ["valid", "expired", "revoked"]},
            "holder_name": {"type": "string"},
            "course": {"type": "object", "properties": {"title": {"type": "string"}, "version": {"type": "integer"}}},
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
                            "schema": {"type": "string", "maxLength": 64},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The certificate exists; see `status`.",
                            "content": {"application/json": {"schema": certificate}},
                        },
                        "400": {
                            "description": "Not a certificate ID.",
                            "content": {"application/json": {"schema": problem}},
                        },
                        "404": {
                            "description": "No certificate has this ID.",
                            "content": {"application/json": {"schema": problem}},
                        },
                        "429": {"description": "Too many requests from this client; retry later."},
                    },
                }
            }
        },
    }
