"""Security headers on every response."""

from __future__ import annotations

from flask import Flask, Response, abort, request
from werkzeug.routing import IntegerConverter

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


# built once: setting them is then one dict merge per response, not six header parses
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=63072000; includeSubDomains"
_BY_LOWER_NAME = {name.lower(): (name, value) for name, value in HEADERS.items()}
_ITEMS = list(HEADERS.items())


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def set_headers(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        missing = (
            _ITEMS
            if present.isdisjoint(_BY_LOWER_NAME)
            else [item for name, item in _BY_LOWER_NAME.items() if name not in present]
        )
        headers.extend(missing)
        if request.is_secure and "strict-transport-security" not in present:
            headers["Strict-Transport-Security"] = HSTS
        if request.endpoint != "static" and "cache-control" not in present and _has_session_cookie():
            # pages for a logged-in person must not be kept by shared caches
            headers["Cache-Control"] = "no-store"
        return response


def _has_session_cookie() -> bool:
    from flask import session

    return bool(session.get("_user_id"))


MAX_INT = 2**31 - 1  # PostgreSQL integer columns


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` URL parts that fit a database integer; larger numbers are a 404, not a 500."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


def register_input_guards(app: Flask) -> None:
    """Refuse input no page accepts (NUL bytes, which PostgreSQL cannot store) before any view runs."""
    app.url_map.converters["int"] = BoundedIntConverter

    @app.before_request
    def refuse_nul_bytes():
        if "\x00" in request.path or "%00" in request.query_string.decode("latin-1").lower():
            abort(400)
        if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
            # read the raw body before the form parser consumes it: an API may want the body itself (curl -d
            # sends a JSON credential to /api/v1/verify as this type); the form is then parsed from this copy
            request.get_data(cache=True)
        if (
            request.method == "POST"
            and request.mimetype
            in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            )
            # a multipart part whose name cannot be read arrives with the name None
            and any("\x00" in (text or "") for pair in request.form.items(multi=True) for text in pair)
        ):
            abort(400)
