"""DomainError and the error pages (HTML for people, JSON for API clients)."""

from __future__ import annotations

import contextlib

from flask import Flask, current_app, g, jsonify, make_response, render_template, request
from flask.globals import request_ctx
from flask_babel import gettext
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from core.extensions import db
from core.storage import StorageError


class DomainError(Exception):
    """A rule of the domain was broken; the message is safe to show the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def N_(message: str) -> str:
    """Marks a string for the catalog where it is defined; it is translated (gettext) where it is shown."""
    return message


# (title, message): in JSON the title stays English (clients match on it), the message is in the reader's language
MESSAGES = {
    400: (N_("Bad request"), N_("The request could not be understood. Please go back and try again.")),
    401: (N_("Please log in"), N_("You need to log in to see this page.")),
    403: (N_("Not allowed"), N_("Your account does not have permission to do that.")),
    404: (N_("Page not found"), N_("We could not find that page. Check the address or go back to the home page.")),
    405: (N_("Not allowed"), N_("That action is not available on this page.")),
    413: (N_("Too large"), N_("What you sent is larger than we accept. Please send something smaller.")),
    429: (N_("Too many requests"), N_("You have tried that too many times. Please wait a minute and try again.")),
    500: (
        N_("Something went wrong"),
        N_("Sorry, something went wrong on our side. Nothing was saved; please try again."),
    ),
    503: (N_("Temporarily unavailable"), N_("The service is briefly unavailable. Please try again in a moment.")),
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _render(code: int, detail: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    message = detail or gettext(message)
    # an API with its own error shape under a path prefix (e.g. the Open Badges API's Imsx_StatusInfo), registered
    # by its blueprint in app.extensions["error_renderers"]; None falls back to the usual page or JSON
    for prefix, render in current_app.extensions.get("error_renderers", {}).items():
        if request.path.startswith(prefix) and (answer := render(code, message)) is not None:
            return answer
    if wants_json():
        return jsonify(error=title, message=message, status=code), code
    if request_ctx.url_adapter is None:
        # the Host header is not one of TRUSTED_HOSTS (or not a host at all): Flask built no URL adapter, so the
        # page template cannot build a single link (url_for would raise: a 500). A plain answer says what it is.
        return make_response((f"{gettext(title)}: {message}\n", code, {"Content-Type": "text/plain; charset=utf-8"}))
    return render_template("errors/error.html", code=code, title=gettext(title), message=message), code


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _render(400, gettext("Your form expired or was sent from another site. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        if error.code >= 500:
            db.session.rollback()
        return _render(error.code)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(error: Exception):
        """The database is down, restarting or out of connections: a calm 503, and nothing half-written (the
        transaction is rolled back; the pool replaces dead connections once it is back: database.ping_when_idle)."""
        current_app.logger.error("database unavailable: %s", str(error).splitlines()[0] if str(error) else error)
        with contextlib.suppress(Exception):  # the connection may be gone already; the pool discards it
            db.session.rollback()
        db.session.remove()
        # the page must not touch the database again: render it for an anonymous visitor
        g._login_user = AnonymousUserMixin()
        response = make_response(
            _render(
                503,
                gettext(
                    "We cannot reach our database right now. Nothing you sent was saved. Please try again in a minute."
                ),
            )
        )
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(StorageError)
    def storage_unavailable(error: StorageError):
        """File storage (a folder or an S3 bucket, core/storage.py) failed: a calm 503 and nothing recorded."""
        current_app.logger.error("storage unavailable: %s", error)
        db.session.rollback()
        response = make_response(
            _render(
                503,
                gettext(
                    "We cannot reach our file storage right now. Nothing you sent was saved. "
                    "Please try again in a minute."
                ),
            )
        )
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError):
        db.session.rollback()
        return _render(500)


def form_error(form, error: DomainError) -> None:
    """Show a service's DomainError next to the field it concerns (or at the top of the form)."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message] if isinstance(field.errors, list) else [error.message]
    else:
        form.form_errors.append(error.message)
