"""What the Open Badges API answers: the Service Description Document, Imsx_StatusInfo error bodies, the
getCredentials page with the spec's paging headers, and the learner's Profile. Pure builders; no commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import current_app, jsonify, url_for
from flask_babel import gettext

from accounts.models import User
from credentials import openbadges, vc
from credentials.models import Certificate
from obapi import server

API_PREFIX = "/ims/ob/v3p0"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

# Imsx_StatusInfo (OB 3.0 §6, schema imsx_statusinfo.json): HTTP status → code minor value
_CODE_MINOR = {
    400: "invalid_data",
    401: "unauthorizedrequest",
    403: "forbidden",
    404: "unknown",
    405: "not_allowed",
    406: "not_acceptable",
    413: "invalid_data",
    429: "server_busy",
    500: "internal_server_error",
    503: "server_busy",
}


def status_info(status: int, description: str, *, minor: str | None = None, headers: dict | None = None):
    """An Imsx_StatusInfo error answer (OB 3.0: every 4xx/5xx of the API carries one)."""
    major = "unsupported" if status == 405 else "failure"
    body = {
        "imsx_codeMajor": major,
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_codeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": minor or _CODE_MINOR.get(status, "invalid_data"),
                }
            ]
        },
    }
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def base_url() -> str:
    return current_app.config["ISSUER_URL"].rstrip("/")


def absolute(endpoint: str, **values) -> str:
    return base_url() + url_for(endpoint, **values)


def scope_descriptions() -> dict[str, str]:
    """The four scopes as the spec names them, each with what it allows here (the SDD's ``scopes``)."""
    return {
        server.CREDENTIAL_READ: "Permission to read the learner's valid course and program credentials "
        "(signed OpenBadgeCredentials).",
        server.CREDENTIAL_UPSERT: "Not offered by this provider: it issues its own credentials and does not "
        "store credentials from elsewhere (POST /credentials answers 405). Registrations asking for it are "
        "registered without it.",
        server.PROFILE_READ: "Permission to read the learner's profile (name and email address).",
        server.PROFILE_UPDATE: "Not offered by this provider: the learner edits their profile on their account "
        "page (PUT /profile answers 405). Registrations asking for it are registered without it.",
    }


def discovery_document() -> dict:
    """The Service Description Document (OB 3.0 §6.3, OpenAPI 3.0): where to register, authorize, get and
    refresh tokens, and the scopes, plus the paths this provider answers."""
    cfg = current_app.config
    privacy = cfg.get("OB_API_PRIVACY_URL") or absolute("obapi.privacy")
    info = {
        "title": f"{cfg['ISSUER_NAME']} Open Badges API",
        "description": "Open Badges 3.0 API (provider): read a learner's credentials and profile once they "
        "connect your app.",
        "version": "3.0",
        "x-imssf-privacyPolicyUrl": privacy,
        "x-imssf-image": base_url() + url_for("static", filename="img/favicon.svg"),
    }
    if cfg.get("OB_API_TERMS_URL"):
        info["termsOfService"] = cfg["OB_API_TERMS_URL"]
    error = {"$ref": "#/components/schemas/Imsx_StatusInfo"}
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": error}}}
        for code, text in (
            (400, "Bad request (a query parameter out of range)"),
            (401, "Missing, unknown, expired or revoked access token"),
            (403, "The token lacks the scope this operation needs"),
            (405, "Method not allowed"),
            (500, "Server error"),
        )
    }
    bearer = lambda scope: [{"OAuth2ACG": [scope]}]  # noqa: E731
    return {
        "openapi": "3.0.1",
        "info": info,
        "servers": [{"url": base_url() + API_PREFIX}],
        "paths": {
            "/credentials": {
                "get": {
                    "operationId": "getCredentials",
                    "security": bearer(server.CREDENTIAL_READ),
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "The learner's valid credentials, oldest award first",
                            "headers": {
                                "X-Total-Count": {"schema": {"type": "integer"}},
                                "Link": {"schema": {"type": "string"}},
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/GetOpenBadgeCredentialsResponse"}
                                }
                            },
                        },
                        **errors,
                    },
                }
            },
            "/profile": {
                "get": {
                    "operationId": "getProfile",
                    "security": bearer(server.PROFILE_READ),
                    "responses": {
                        "200": {
                            "description": "The learner's profile",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}},
                        },
                        "404": {"description": "No such profile", "content": {"application/json": {"schema": error}}},
                        **errors,
                    },
                }
            },
            "/discovery": {
                "get": {
                    "operationId": "getServiceDescription",
                    "responses": {"200": {"description": "This document"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "OAuth2ACG": {
                    "type": "oauth2",
                    "description": "OAuth 2.0 Authorization Code Grant authorization (PKCE with S256 required)",
                    "x-imssf-name": cfg["ISSUER_NAME"],
                    "x-imssf-privacyPolicyUrl": privacy,
                    "x-imssf-registrationUrl": absolute("obapi.register"),
                    **({"x-imssf-termsOfServiceUrl": cfg["OB_API_TERMS_URL"]} if cfg.get("OB_API_TERMS_URL") else {}),
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": absolute("obapi.authorize"),
                            "tokenUrl": absolute("obapi.token"),
                            "refreshUrl": absolute("obapi.token"),
                            "x-revocationUrl": absolute("obapi.revoke"),
                            "scopes": scope_descriptions(),
                        }
                    },
                }
            },
            "schemas": {
                "GetOpenBadgeCredentialsResponse": {
                    "type": "object",
                    "properties": {"credential": {"type": "array", "items": {"type": "object"}}},
                },
                "Profile": {"type": "object", "required": ["id", "type"]},
                "Imsx_StatusInfo": {
                    "type": "object",
                    "required": ["imsx_codeMajor", "imsx_severity"],
                    "properties": {
                        "imsx_codeMajor": {"enum": ["failure", "processing", "success", "unsupported"]},
                        "imsx_severity": {"enum": ["error", "status", "warning"]},
                        "imsx_description": {"type": "string"},
                        "imsx_codeMinor": {"type": "object"},
                    },
                },
            },
        },
    }


class QueryProblem(ValueError):
    """A getCredentials query parameter we cannot read; the message says which and why (400)."""


def _integer(raw: str | None, name: str, *, minimum: int, default: int) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise QueryProblem(gettext("%(name)s must be a whole number.", name=name))
    value = int(raw)
    if value < minimum:
        raise QueryProblem(gettext("%(name)s must be at least %(minimum)d.", name=name, minimum=minimum))
    return value


def page_request(args) -> tuple[int, int, datetime | None]:
    """(limit, offset, since) from the query string; QueryProblem for anything out of shape. A limit above
    MAX_LIMIT is served as MAX_LIMIT (the Link header says what was used)."""
    limit = min(_integer(args.get("limit"), "limit", minimum=1, default=DEFAULT_LIMIT), MAX_LIMIT)
    offset = _integer(args.get("offset"), "offset", minimum=0, default=0)
    since = None
    raw = args.get("since")
    if raw is not None:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00")) if len(raw) <= 40 else None
        except ValueError:
            since = None
        if since is None:
            raise QueryProblem(gettext("since must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z."))
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    return limit, offset, since


def paging_headers(*, total: int, limit: int, offset: int, since: datetime | None) -> dict[str, str]:
    """X-Total-Count and Link (first and last always, next while incomplete, prev past the first), OB 3.0 §6.4."""

    def link(at: int, rel: str) -> str:
        query = {"limit": limit, "offset": at}
        if since is not None:
            query["since"] = openbadges.iso(since)
        return f'<{absolute("obapi.get_credentials")}?{urlencode(query)}>; rel="{rel}"'

    last = max(0, (total - 1) // limit * limit)
    links = []
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    links.append(link(0, "first"))
    if offset > 0:
        links.append(link(max(0, min(offset - limit, last)), "prev"))
    return {"X-Total-Count": str(total), "Link": ", ".join(links)}


def select_page(certificates: list[Certificate], *, limit: int, offset: int, since: datetime | None):
    chosen = [c for c in certificates if since is None or c.issued_at > since]
    return len(chosen), chosen[offset : offset + limit]


def profile_of(user: User) -> dict:
    """The learner as an OB 3.0 Profile: a stable id that reveals nothing (a UUID derived from our issuer DID and
    the account), the name printed on their certificates, and the email address the credentials' identity hashes
    are made from (so the app can match them; the consent page says it is shared)."""
    issuer_did = openbadges.Issuer(base_url(), current_app.config["ISSUER_NAME"]).did
    return {
        "@context": [vc.OB_V3],  # as the spec's getProfile example
        "id": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer_did}#learner-{user.id}")),
        "type": ["Profile"],
        "name": user.legal_name or user.name,
        "email": user.email,
    }
